"""Ctrl-C and SIGTERM stop casemate the way it records: SIGTERM raises like Ctrl-C (so a run is
sealed canceled and its host locks released, not killed where it stands), the exit status says
which one it was, and a playbook run does not leave ansible-runner's handlers behind (after
them, Ctrl-C and SIGTERM were silently swallowed for the rest of the process)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from casemate import cli, interrupts
from casemate.runner import run_playbook

from .test_cli import call


def test_sigterm_stops_a_command_with_one_line_and_exit_143(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def terminated_midway(*_: object) -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # never reached: the handler raises at once
        return ""

    monkeypatch.setattr("casemate.report.catalog.entries_text", terminated_midway)
    with interrupts.kept():  # the test process gets its own handler back
        code, err = call(capsys, "catalog", "list")
    assert code == 143
    assert err == "casemate: error: terminated (SIGTERM)\n"


def test_ctrl_c_still_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("casemate.report.catalog.entries_text", interrupted)
    with interrupts.kept():
        code, err = call(capsys, "catalog", "list")
    assert (code, err) == (130, "casemate: error: interrupted\n")


def test_sigterm_raises_terminated_which_every_ctrl_c_path_catches() -> None:
    with interrupts.kept():
        interrupts.on_sigterm()
        with pytest.raises(KeyboardInterrupt) as caught:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert isinstance(caught.value, interrupts.Terminated)


@pytest.mark.ansible
def test_a_playbook_run_leaves_the_signal_handlers_as_it_found_them(tmp_path: Path) -> None:
    content = tmp_path / "content"
    (content / "playbooks").mkdir(parents=True)
    (content / "roles").mkdir()
    (content / "playbooks" / "noop.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.debug: {msg: hello}\n"
    )
    inv = tmp_path / "inv.ini"
    inv.write_text("here ansible_connection=local ansible_python_interpreter=python3\n")
    with interrupts.kept():
        interrupts.on_sigterm()
        before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
        done = run_playbook(
            artifacts=tmp_path / "artifacts",
            content=content,
            playbook="noop.yml",
            inventory=inv,
            hosts=["here"],
            tags=[],
            extravars={},
            check=False,
            diff=False,
            strategy="linear",
            forks=1,
            on_event=lambda _: None,
        )
        after = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    assert done.status == "successful"
    assert after == before
    assert cli.TERMINATED == 128 + signal.SIGTERM
