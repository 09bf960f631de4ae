"""Never two runs on one node at once (docs/schedule.md): a harden holds /run/casemate/lock on the
node while it plays; a second harden started meanwhile from the same controller exits at once
naming it (the controller lock), and one from another controller reports the node busy, naming
the first run's id and start, and runs nothing there; a lock left by a killed run (expired) is
taken over; the lock is gone after a run that succeeded, failed or was interrupted, and an
interrupted run leaves no Ansible process of its own behind on the controller."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import CASEMATE, Lab, lab_name, last_run, open_lab


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("lock"), 1) as lab:
        yield lab


def lock_on(bed: Lab, node: str) -> dict[str, Any] | None:
    text = bed.sh(node, "cat /run/casemate/lock 2>/dev/null || true")
    return json.loads(text) if text.strip() else None


def harden_in_background(bed: Lab, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CASEMATE, "--state-dir", str(bed.state), "harden", "-i", str(bed.inventory), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches it
    )


def wait_for_lock(bed: Lab, node: str, proc: subprocess.Popen[str]) -> dict[str, Any]:
    for _ in range(1200):
        held = lock_on(bed, node)
        if held is not None:
            return held
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the first harden never took the node's lock")


def test_a_second_harden_finds_the_node_busy_and_changes_nothing(bed: Lab, tmp_path: Path) -> None:
    """The second harden comes from another controller (a state directory of its own: the
    controller lock, per state directory, does not hold it back): only the host lock can."""
    (node,) = bed.nodes
    first = harden_in_background(bed)
    held = wait_for_lock(bed, node, first)
    first_run = held["run_id"]
    assert (held["kind"], held["pid"]) == ("harden", first.pid)

    same = bed.casemate("harden", "-i", str(bed.inventory), check=4)  # this controller: held
    assert same.stderr.startswith("casemate: error: another casemate run holds inventory ")
    assert f"harden run {first_run} (pid {first.pid})" in same.stderr

    other = Lab(tmp_path / "other-controller", bed.inventory, bed.nodes)
    second = other.casemate("harden", "-i", str(bed.inventory), check=4)
    meta = json.loads((last_run(other.state, "harden") / "run.json").read_text())
    assert meta["outcome"] == "busy"
    assert meta["busy"][node]["run_id"] == first_run
    assert meta["busy"][node]["started"].replace("+00:00", "Z") == held["started"]
    assert meta["stats"][node] == dict.fromkeys(meta["stats"][node], 0)
    assert not list((last_run(other.state, "harden") / "ansible").glob("**/job_events/*.json"))
    assert f"{node}: busy: held by run {first_run}" in second.stderr
    assert "BUSY" in second.stdout
    assert lock_on(bed, node) is not None  # the first run's lock is untouched

    _, err = first.communicate(timeout=900)
    assert first.returncode == 0, err
    assert lock_on(bed, node) is None  # released at the end of the run
    # the node's lock is the same for any selection: one control's dry run takes it as a whole one
    again = bed.casemate(
        "harden", "-i", str(bed.inventory), "--controls", "cis_docker_2_2", "--check", check=0
    )
    assert "busy" not in again.stderr


def test_a_lock_left_by_a_killed_run_is_taken_over_once_expired(bed: Lab) -> None:
    (node,) = bed.nodes
    stale = {
        "casemate_lock": 1,
        "run_id": "20260101T000000Z-harden-killed",
        "controller": "gone-controller",
        "pid": 1,
        "kind": "harden",
        "started": "2026-01-01T00:00:00Z",
        "expires": "2026-01-01T00:15:00Z",
    }
    bed.sh(node, "mkdir -p /run/casemate && cat > /run/casemate/lock", stdin=json.dumps(stale))
    done = bed.casemate("harden", "-i", str(bed.inventory), "--controls", "cis_docker_2_2", check=0)
    assert "took over the expired lock of run 20260101T000000Z-harden-killed" in done.stderr
    meta = json.loads((last_run(bed.state, "harden") / "run.json").read_text())
    assert meta["host_lock"]["took_over"][node]["run_id"] == stale["run_id"]
    assert lock_on(bed, node) is None

    live = stale | {"expires": "2999-01-01T00:00:00Z"}  # not expired: the node stays busy
    bed.sh(node, "cat > /run/casemate/lock", stdin=json.dumps(live))
    bed.casemate("harden", "-i", str(bed.inventory), "--controls", "cis_docker_2_2", check=4)
    assert lock_on(bed, node) == live
    bed.sh(node, "rm /run/casemate/lock")


def test_the_lock_is_gone_after_a_failed_and_after_an_interrupted_run(
    bed: Lab, tmp_path: Path
) -> None:
    (node,) = bed.nodes
    broken = bed.inventory_with(tmp_path / "inv.yml", {node: {"docker_daemon_icc": "maybe"}})
    failed = bed.casemate("harden", "-i", str(broken), "--controls", "cis_docker_2_2", check=3)
    assert "FAILED" in failed.stdout
    assert lock_on(bed, node) is None

    began = len(list((bed.state / "runs").glob("*-harden-*")))
    proc = harden_in_background(bed)
    wait_for_lock(bed, node, proc)
    for _ in range(600):  # interrupt it while Ansible plays on the node
        runs = sorted((bed.state / "runs").glob("*-harden-*"))
        if len(runs) > began and len(list(runs[-1].glob("ansible/artifacts/*/job_events/*"))) > 20:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    meta = json.loads((last_run(bed.state, "harden") / "run.json").read_text())
    assert meta["outcome"] == "canceled"
    assert lock_on(bed, node) is None
    # Ansible's task workers run in sessions of their own: the one mid-task outlived the play
    # and waited for its answer forever, until casemate ended it (runner.end_leftovers)
    assert processes_of(last_run(bed.state, "harden").name) == []


def processes_of(run_id: str) -> list[str]:
    """The command lines of this controller's processes that belong to run `run_id`'s play (the
    play's marker, CASEMATE_PLAY=<the run's artifacts directory>, in their environment)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:  # not a process, or gone
            continue
        marker = next((v for v in environ if v.startswith(b"CASEMATE_PLAY=")), b"")
        if run_id.encode() in marker:
            found.append(f"{entry.name}: {cmdline[:100]!r}")
    return found
