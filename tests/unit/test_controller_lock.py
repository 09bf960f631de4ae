"""The controller lock (runlock.py): two runs of one inventory from one controller never overlap.
A second run exits at once (exit 4, one line naming the holder's pid, run id and start) or waits
with --wait; another inventory is not held up; the lock goes when its run ends."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from casemate import cli, runlock
from casemate.errors import BusyError
from casemate.inventory import Inventory

from .history_runs import site

STATE_ARGS = ("--controls", "cis_docker_2_2", "-i", "site.yml")


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(list(argv))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def test_a_second_lock_on_one_inventory_is_refused_naming_its_holder(tmp_path: Path) -> None:
    first = runlock.acquire(tmp_path, site(), command="harden")
    first.name_run("20261205T140000Z-harden-aaaaaa")
    with pytest.raises(BusyError) as caught:
        runlock.acquire(tmp_path, site(), command="verify")
    said = str(caught.value)
    assert (
        "another casemate run holds inventory site/inventory.yml on this controller: harden run "
        in said
    )
    assert f"20261205T140000Z-harden-aaaaaa (pid {os.getpid()}), started " in said
    assert "--wait SECONDS" in said and caught.value.exit_code == 4
    other = Inventory(Path("other.yml"), {"_meta": {"hostvars": {"x": {}}}, "all": {}})
    runlock.acquire(tmp_path, other, command="verify").release()  # another inventory: free
    first.release()
    runlock.acquire(tmp_path, site(), command="verify").release()  # released: free again
    assert oct((tmp_path / "locks").stat().st_mode & 0o777) == "0o700"


def test_a_second_run_waits_for_the_first_with_wait(tmp_path: Path) -> None:
    first = runlock.acquire(tmp_path, site(), command="harden")
    threading.Timer(0.5, first.release).start()
    second = runlock.acquire(tmp_path, site(), command="verify", wait=600)
    assert second.holder["command"] == "verify"
    second.release()


@pytest.mark.parametrize("command", ["harden", "verify"])
def test_a_run_of_a_held_inventory_touches_no_host_and_exits_4(
    offline: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    state = tmp_path / "s"
    held = runlock.acquire(state, site(), command="harden")
    held.name_run("20261205T140000Z-harden-aaaaaa")
    code, _, err = call(capsys, "--state-dir", str(state), command, *STATE_ARGS)
    assert code == 4
    assert err.count("\n") == 1
    assert err.startswith(
        "casemate: error: another casemate run holds inventory site/inventory.yml"
    )
    assert "run 20261205T140000Z-harden-aaaaaa" in err
    assert offline == []
    assert not (state / "runs").exists()  # no run was started
    held.release()

    code, _, err = call(capsys, "--state-dir", str(state), command, *STATE_ARGS)
    assert code in (0, 1), err  # it ran (verify judges the recorded answer: findings)
    assert offline
    runlock.acquire(state, site(), command="x").release()  # and released its lock at its end


def test_a_run_waits_for_the_holder_with_wait(
    offline: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "s"
    held = runlock.acquire(state, site(), command="harden")
    seen: list[Any] = []

    def release_when_asked() -> None:
        for _ in range(3000):  # until the waiting run has asked once
            if seen:
                break
            time.sleep(0.01)
        held.release()

    real = runlock.acquire

    def watched(*args: Any, **kwargs: Any) -> runlock.ControllerLock:
        seen.append(kwargs.get("wait"))
        return real(*args, **kwargs)

    thread = threading.Thread(target=release_when_asked)
    thread.start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("casemate.runlock.acquire", watched)
            code, _, err = call(capsys, "--state-dir", str(state), "verify", *STATE_ARGS,
                                "--wait", "600")  # fmt: skip
    finally:
        thread.join()
    assert (code in (0, 1), seen) == (True, [600.0]), err  # it ran once the holder let go


def test_a_negative_wait_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = call(capsys, "--state-dir", str(tmp_path), "verify", "-i", "x.yml",
                        "--wait", "-1")  # fmt: skip
    assert code == 2
    assert err == "casemate: error: --wait must be 0 or more seconds, not -1\n"
