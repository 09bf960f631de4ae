"""A canceled play leaves no process behind: ansible-runner kills ansible-playbook's process
group, but Ansible's task workers each run in a session of their own and outlive it, a worker in
the middle of a task waiting for its answer forever (seen after every Ctrl-C of a harden in the
lab). runner.end_leftovers ends the processes that carry the play's marker, and no other."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from casemate import runner
from casemate.runner import PLAY_MARKER, end_leftovers

STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(120)\n"
)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def start(procs: list[subprocess.Popen[str]], marker: str, code: str) -> subprocess.Popen[str]:
    """A process in a session of its own (as Ansible's workers are) with the play's marker."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=os.environ | {PLAY_MARKER: marker},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    procs.append(proc)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def test_the_processes_of_a_canceled_play_are_ended_and_no_other(
    started: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    play = str(tmp_path / "run-1" / "ansible")
    waiting = start(started, play, "print('ready', flush=True); import time; time.sleep(120)")
    stubborn = start(started, play, STUBBORN)  # ignores SIGTERM: SIGKILL after the grace
    other_run = start(
        started, play + "-2", "print('ready', flush=True); import time; time.sleep(120)"
    )
    ended = end_leftovers(play, grace=0.5)
    assert sorted(ended) == sorted([waiting.pid, stubborn.pid])
    assert waiting.wait(5) != 0 and stubborn.wait(5) != 0
    assert other_run.poll() is None  # another play's marker, though this one's is its prefix


def test_a_play_that_left_nothing_ends_nothing(tmp_path: Path) -> None:
    assert end_leftovers(str(tmp_path / "ansible"), grace=0.1) == []


def test_a_play_that_raised_has_its_leftovers_ended_and_one_that_succeeded_not(
    started: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    """run_playbook's guard around ansible-runner: a play that raised (not only one that returned
    canceled or failed) has its processes ended; a play that succeeded is left alone (its
    ansible-playbook waited for every worker)."""
    raised, succeeded = str(tmp_path / "raised"), str(tmp_path / "succeeded")
    left = start(started, raised, "print('ready', flush=True); import time; time.sleep(120)")
    kept = start(started, succeeded, "print('ready', flush=True); import time; time.sleep(120)")
    with pytest.raises(KeyboardInterrupt), runner._ending_leftovers(raised):
        raise KeyboardInterrupt
    with runner._ending_leftovers(succeeded) as play:
        play.succeeded = True
    assert left.wait(5) != 0
    assert kept.poll() is None
