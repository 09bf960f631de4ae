"""The host lock (hostlock.py, probe/lock.py): the real lock script runs on this machine, on a
directory of the test's, through a transport that is this machine. A second run finds the host busy
and is told who holds it; an expired or unreadable lock is taken over; only its own run removes a
lock; check mode looks without locking; harden leaves a busy host untouched and releases its locks
however the run ends."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate import cli, hostlock
from casemate.history.record import read_run
from casemate.inventory import Inventory
from casemate.runner import HostStats, PlaybookOutcome

from .locks import Ran, ThisMachine


@pytest.fixture
def lock_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "run-casemate"
    monkeypatch.setattr("casemate.hostlock.LOCK_DIR", str(directory))
    return directory


INV = Inventory(
    source=Path("inv.yml"),
    raw={"_meta": {"hostvars": {"n1": {}}}, "docker_hosts": {"hosts": ["n1"]}},
)


def here(inv: Inventory, host: str) -> ThisMachine:
    return ThisMachine()


def acquire(run_id: str, **kw: Any) -> hostlock.Acquired:
    return hostlock.acquire(INV, ["n1"], run_id, transport_for=here, **kw)


def record(lock_dir: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((lock_dir / "lock").read_text())
    return loaded


def test_a_second_run_finds_the_host_busy_and_is_told_who_holds_it(lock_dir: Path) -> None:
    first = acquire("run-a")
    assert first.held == ("n1",) and not first.busy
    held = record(lock_dir)
    assert held["run_id"] == "run-a" and held["controller"] and held["pid"] == os.getpid()
    assert oct((lock_dir / "lock").stat().st_mode & 0o777) == "0o644"

    second = acquire("run-b")
    assert second.held == ()
    holder = second.busy["n1"]
    assert holder.run_id == "run-a"
    assert holder.started == datetime.strptime(held["started"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=UTC
    )
    assert record(lock_dir)["run_id"] == "run-a"  # the busy host's lock is left alone

    assert hostlock.release(INV, ["n1"], "run-b", transport_for=here) == {
        "n1": "the lock is held by run run-a now"
    }
    assert (lock_dir / "lock").exists()
    assert hostlock.release(INV, ["n1"], "run-a", transport_for=here) == {}
    assert not (lock_dir / "lock").exists()
    assert acquire("run-b").held == ("n1",)


def test_the_same_run_renews_its_lock_keeping_its_start(lock_dir: Path) -> None:
    acquire("run-a", ttl=60)
    before = record(lock_dir)
    acquire("run-a", ttl=6000)
    after = record(lock_dir)
    assert after["started"] == before["started"]
    assert after["expires"] > before["expires"]


def test_an_expired_lock_is_taken_over(lock_dir: Path) -> None:
    lock_dir.mkdir()
    stale = {
        "casemate_lock": 1,
        "run_id": "killed-run",
        "controller": "elsewhere",
        "pid": 4242,
        "kind": "harden",
        "started": "2026-01-01T00:00:00Z",
        "expires": "2026-01-01T00:15:00Z",
    }
    (lock_dir / "lock").write_text(json.dumps(stale))
    taken = acquire("run-b")
    assert taken.held == ("n1",)
    assert taken.took_over["n1"].run_id == "killed-run"
    assert record(lock_dir)["run_id"] == "run-b"


def test_an_unreadable_lock_holds_the_host_until_its_mtime_plus_ttl(lock_dir: Path) -> None:
    lock_dir.mkdir()
    (lock_dir / "lock").write_text("{half a record")
    busy = acquire("run-b", ttl=600).busy["n1"]
    assert busy.unreadable and busy.run_id.startswith("unknown")
    assert (lock_dir / "lock").read_text() == "{half a record"
    long_ago = time.time() - 601
    os.utime(lock_dir / "lock", (long_ago, long_ago))
    taken = acquire("run-b", ttl=600)
    assert taken.held == ("n1",) and taken.took_over["n1"].unreadable
    assert record(lock_dir)["run_id"] == "run-b"


def test_check_mode_takes_no_lock_but_sees_a_busy_host(lock_dir: Path) -> None:
    assert acquire("run-a", take=False).held == ("n1",)
    assert not lock_dir.exists()  # a look changes nothing on the host
    acquire("run-a")
    assert acquire("run-b", take=False).busy["n1"].run_id == "run-a"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"run_id": "", "controller": "c", "started": "2026-01-01T00:00:00Z", "expires": "x"},
        {"run_id": "r", "controller": "c", "started": "2026-01-01", "expires": "2026-01-01"},
        {"run_id": "r", "controller": 3, "started": "2026-01-01T00:00:00Z"},
    ],
)
def test_a_malformed_lock_answer_is_refused(raw: Any) -> None:
    with pytest.raises(ValueError, match=r"lock record|time"):
        hostlock.parse_holder(raw)


def test_a_host_that_answers_without_a_lock_failed_and_one_that_never_answered_is_unreachable(
    lock_dir: Path,
) -> None:
    class Said:
        def __init__(self, out: Ran | Exception) -> None:
            self.out = out

        def run(self, command: str) -> Ran:
            if isinstance(self.out, Exception):
                raise self.out
            return self.out

    hosts = {
        "sudo": Said(Ran(1, f"{hostlock.REACHED}\n", "sudo: a password is required\n")),
        "gone": Said(Ran(1, "", "Error: No such container: gone\n")),
        "odd": Said(OSError("docker: not found")),
    }
    inv = Inventory(Path("i.yml"), {"_meta": {"hostvars": {h: {} for h in hosts}}})
    got = hostlock.acquire(inv, sorted(hosts), "r", transport_for=lambda i, h: hosts[h])
    assert got.held == ()
    assert got.failed == {"sudo": "no answer from the lock script (sudo: a password is required)"}
    assert got.unreachable == {
        "gone": "Error: No such container: gone",
        "odd": "docker: not found",
    }


# --- harden -------------------------------------------------------------------------------------


@pytest.mark.ansible
def test_harden_leaves_a_busy_host_untouched_and_says_who_holds_it(
    tmp_path: Path,
    lock_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    played: list[list[str]] = []

    def fake(**kwargs: Any) -> PlaybookOutcome:
        played.append(kwargs["hosts"])
        assert record(lock_dir)["run_id"] == kwargs["artifacts"].parent.name  # held while played
        return PlaybookOutcome("successful", 0, {h: HostStats(ok=1) for h in kwargs["hosts"]})

    monkeypatch.setattr("casemate.harden.run_playbook", fake)
    monkeypatch.setattr("casemate.probe.transport.host_transport", here)
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"docker_hosts": {"hosts": {"n1": {}}}}}}))
    argv = ["--state-dir", str(tmp_path / "s"), "harden", "-i", str(path)]
    argv += ["--controls", "cis_docker_2_2"]

    with pytest.raises(SystemExit) as done:  # the host is free: played, and released after
        cli.main(argv)
    assert (done.value.code, played) == (0, [["n1"]])
    assert not (lock_dir / "lock").exists()
    first = set((tmp_path / "s" / "runs").glob("*-harden-*"))

    other = hostlock.acquire(INV, ["n1"], "the-other-run", transport_for=here)
    assert other.held == ("n1",)
    played.clear()
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert (done.value.code, played) == (4, [])  # busy: nothing failed, nothing played
    # the second run (ids of one second are not ordered: their tails are random)
    runs = sorted(set((tmp_path / "s" / "runs").glob("*-harden-*")) - first)
    assert len(runs) == 1
    meta = json.loads((runs[-1] / "run.json").read_text())
    assert meta["outcome"] == "busy"
    assert meta["busy"]["n1"]["run_id"] == "the-other-run"
    assert meta["stats"]["n1"] == dict.fromkeys(meta["stats"]["n1"], 0)
    assert meta["messages"]["n1"][0].startswith("busy: held by run the-other-run (controller ")
    out = capsys.readouterr()
    assert "BUSY" in out.out
    assert "n1: busy: held by run the-other-run" in out.err
    assert record(lock_dir)["run_id"] == "the-other-run"  # its lock is still the other run's
    recorded = read_run(runs[-1])  # the history keeps the host as busy, not failed
    assert (recorded.outcome, [(h.host, h.outcome) for h in recorded.hosts]) == (
        "busy",
        [("n1", "busy")],
    )

    with pytest.raises(SystemExit) as done:  # check mode sees the busy host too
        cli.main([*argv, "--check"])
    assert (done.value.code, played) == (4, [])


@pytest.mark.ansible
@pytest.mark.parametrize("ending", ["failed", "interrupted"])
def test_harden_releases_its_locks_however_the_run_ends(
    tmp_path: Path, lock_dir: Path, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    def fake(**kwargs: Any) -> PlaybookOutcome:
        assert (lock_dir / "lock").exists()
        if ending == "interrupted":
            raise KeyboardInterrupt
        return PlaybookOutcome("failed", 2, {h: HostStats(failed=1) for h in kwargs["hosts"]})

    monkeypatch.setattr("casemate.harden.run_playbook", fake)
    monkeypatch.setattr("casemate.probe.transport.host_transport", here)
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"docker_hosts": {"hosts": {"n1": {}}}}}}))
    argv = ["--state-dir", str(tmp_path / "s"), "harden", "-i", str(path)]
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "--controls", "cis_docker_2_2"])
    assert done.value.code == (3 if ending == "failed" else 130)
    assert lock_dir.is_dir() and not (lock_dir / "lock").exists()
