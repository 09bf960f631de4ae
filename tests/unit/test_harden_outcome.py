"""What a harden run came to is never reported better than it was: a canceled, failed or unfinished
run says so and `casemate report` exits 3 for it; hosts that cannot be reached are found before the
play, reported with what their connection said, and no task runs against them; a host's failure
stays on one line in a log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate import cli
from casemate.harden import run_outcome
from casemate.inventory import Inventory
from casemate.probe import reach
from casemate.runner import HostStats, PlaybookOutcome

from .locks import ThisMachine

FINISHED = {"state": "finished", "runner": {"status": "successful", "rc": 0}}
CLEAN = {"ok": 3, "changed": 1, "failed": 0, "unreachable": 0, "skipped": 0, "rescued": 0}


@pytest.mark.parametrize(
    ("meta", "outcome"),
    [
        (FINISHED | {"stats": {"a": CLEAN}}, "succeeded"),
        (FINISHED | {"stats": {"a": CLEAN, "b": CLEAN | {"failed": 1}}}, "failed"),
        (FINISHED | {"stats": {"a": CLEAN | {"unreachable": 1}}}, "failed"),
        (FINISHED | {"runner": {"status": "failed", "rc": 2}, "stats": {"a": CLEAN}}, "failed"),
        (FINISHED | {"runner": {"status": "canceled", "rc": 254}, "stats": {}}, "canceled"),
        (FINISHED | {"runner": {"status": "timeout", "rc": 254}, "stats": {}}, "failed"),
        ({"state": "running", "stats": {}}, "unfinished"),
        ({}, "unfinished"),
        (FINISHED | {"outcome": "canceled"}, "canceled"),
    ],
)
def test_a_run_comes_to_exactly_what_its_record_says(meta: dict[str, Any], outcome: str) -> None:
    assert run_outcome(meta) == outcome


def stored_run(state: Path, meta: dict[str, Any], events: list[dict[str, Any]] = ()) -> Path:  # type: ignore[assignment]
    run = state / "runs" / "20261205T000000Z-harden-abcdef"
    run.mkdir(parents=True)
    base = {"kind": "harden", "hosts": ["node-1", "node-2"], "strategy": "linear"}
    (run / "run.json").write_text(json.dumps(base | meta))
    job = run / "ansible" / "artifacts" / "1234" / "job_events"
    job.mkdir(parents=True)
    for n, event in enumerate(events, start=1):
        (job / f"{n}-{n:08x}.json").write_text(json.dumps(event))
    return run


def event(kind: str, host: str, changed: bool = False) -> dict[str, Any]:
    return {"event": kind, "event_data": {"host": host, "task": "t", "res": {"changed": changed}}}


def report(capsys: pytest.CaptureFixture[str], state: Path) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(["--state-dir", str(state), "report", "latest-harden"])
    return int(done.value.code or 0), capsys.readouterr().out


def test_a_canceled_run_is_reported_canceled_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = {"node-1": CLEAN, "node-2": CLEAN | {"ok": 0, "changed": 0}}
    meta = FINISHED | {"runner": {"status": "canceled", "rc": 254}, "stats": stats}
    stored_run(tmp_path, meta)
    code, out = report(capsys, tmp_path)
    assert code == 3
    assert "CANCELED before it finished" in out
    assert "succeeded" not in out


def test_an_unfinished_run_shows_what_its_stored_events_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = [
        event("runner_on_ok", "node-1"),
        event("runner_on_ok", "node-1", changed=True),
        event("runner_on_failed", "node-2"),
        {"event": "playbook_on_task_start", "event_data": {"task": "t"}},
    ]
    stored_run(tmp_path, {"state": "running"}, events)
    code, out = report(capsys, tmp_path)
    assert code == 3
    assert "UNFINISHED" in out
    cells = [line.replace("│", " ").split() for line in out.splitlines() if "node-" in line]
    rows = {c[0]: c[1:5] for c in cells}
    assert rows == {"node-1": ["2", "1", "0", "0"], "node-2": ["0", "0", "1", "0"]}


def test_a_clean_run_is_reported_succeeded_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stored_run(tmp_path, FINISHED | {"stats": {"node-1": CLEAN, "node-2": CLEAN}})
    code, out = report(capsys, tmp_path)
    assert (code, "succeeded" in out) == (0, True)


def test_a_host_failure_stays_on_one_line_in_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cause = "rolled back: " + " ".join(f"word{n}" for n in range(60))  # ~420 characters
    meta = FINISHED | {
        "stats": {"node-1": CLEAN, "node-2": CLEAN | {"failed": 1}},
        "messages": {"node-2": [f"Apply daemon.json: {cause}\n  second line"]},
    }
    stored_run(tmp_path, meta)
    code, out = report(capsys, tmp_path)
    assert code == 3
    (line,) = [x for x in out.splitlines() if x.startswith("node-2:")]
    assert line == f"node-2: Apply daemon.json: {cause} second line"


# --- reachability before the play -------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    rc: int
    stdout: str = ""
    stderr: str = ""


class Node:
    """A host as the reachability check sees it: a command runs there, or the connection fails."""

    def __init__(self, answer: Done | Exception) -> None:
        self.answer = answer
        self.commands: list[str] = []

    def run(self, command: str) -> Done:
        self.commands.append(command)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def inventory(hosts: dict[str, dict[str, Any]]) -> Inventory:
    return Inventory(
        source=Path("inv.yml"),
        raw={"_meta": {"hostvars": hosts}, "docker_hosts": {"hosts": sorted(hosts)}},
    )


def test_unreachable_hosts_are_named_with_what_their_connection_said() -> None:
    nodes = {
        "up": Node(Done(0)),
        "gone": Node(Done(1, stderr="Error response from daemon: No such container: gone\n")),
        "refused": Node(
            RuntimeError(Done(255, stderr="ssh: connect to host 127.0.0.1 port 1: refused\r\n"))
        ),
        "odd": Node(OSError("docker: not found")),
    }
    seen: dict[str, Any] = {}

    def transport_for(inv: Inventory, host: str) -> Node:
        seen[host] = inv.hostvars(host).get("ansible_become")
        return nodes[host]

    hosts = sorted(nodes)
    inv = inventory({h: {"ansible_become": True} for h in hosts})
    assert reach.unreachable(inv, hosts, transport_for) == {
        "gone": "Error response from daemon: No such container: gone",
        "refused": "ssh: connect to host 127.0.0.1 port 1: refused",
        "odd": "docker: not found",
    }
    assert all(n.commands == ["true"] for n in nodes.values())  # one trivial command each
    assert seen == dict.fromkeys(hosts, False)  # reaching a host needs no sudo


def test_a_host_whose_connection_casemate_cannot_open_is_left_to_ansible() -> None:
    inv = inventory({"winrm-1": {"ansible_connection": "winrm"}})
    assert reach.unreachable(inv, ["winrm-1"]) == {}


@pytest.mark.ansible
def test_no_task_runs_against_an_unreachable_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    played: list[list[str]] = []

    def fake(**kwargs: Any) -> PlaybookOutcome:
        played.append(kwargs["hosts"])
        return PlaybookOutcome("successful", 0, {h: HostStats(ok=1) for h in kwargs["hosts"]})

    monkeypatch.setattr("casemate.harden.run_playbook", fake)
    monkeypatch.setattr("casemate.hostlock.LOCK_DIR", str(tmp_path / "lock"))
    monkeypatch.setattr(
        "casemate.probe.transport.host_transport",
        lambda inv, host: ThisMachine() if host == "live" else Node(Done(1, stderr="no such host")),
    )
    path = tmp_path / "inv.yml"
    hosts = {"live": {}, "dead-1": {}, "dead-2": {}}
    path.write_text(yaml.safe_dump({"all": {"children": {"docker_hosts": {"hosts": hosts}}}}))
    argv = ["--state-dir", str(tmp_path / "s"), "harden", "-i", str(path), "--controls"]
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "cis_docker_2_2"])
    assert done.value.code == 3
    assert played == [["live"]]
    (run,) = (tmp_path / "s" / "runs").glob("*-harden-*")
    meta = json.loads((run / "run.json").read_text())
    assert meta["unreachable_before_play"] == {"dead-1": "no such host", "dead-2": "no such host"}
    assert meta["stats"]["dead-1"]["unreachable"] == 1
    assert meta["stats"]["live"]["unreachable"] == 0
    assert meta["messages"]["dead-2"] == ["Preflight | connection: no such host"]
    assert meta["outcome"] == "failed"
    assert "unreachable dead-1: no such host" in capsys.readouterr().err

    played.clear()
    monkeypatch.setattr("casemate.probe.transport.host_transport", lambda inv, host: Node(Done(1)))
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "cis_docker_2_2"])
    assert (done.value.code, played) == (3, [])  # nobody to play: Ansible is not started


def test_casemate_connects_through_the_control_socket_ansible_uses() -> None:
    """A site (or a test) keeping a master connection open for Ansible: casemate's own reach
    check and probe must use it too, not open a connection Ansible would not open."""
    from casemate.probe.transport import host_transport, ssh_options

    hostvars = {
        "ansible_host": "127.0.0.1",
        "ansible_user": "cmadmin",
        "ansible_ssh_extra_args": "-o StrictHostKeyChecking=no",
        "ansible_control_path_dir": "/run/cm cp",
        "ansible_control_path": "%(directory)s/master-%%h",
    }
    assert ssh_options(hostvars) == "-o ControlPath='/run/cm cp/master-%h'"
    assert ssh_options({"ansible_host": "x"}) == ""
    raw = {"_meta": {"hostvars": {"n1": hostvars}}, "all": {"children": ["docker_hosts"]}}
    raw["docker_hosts"] = {"hosts": ["n1"]}
    transport: Any = host_transport(Inventory(Path("inv.yml"), raw), "n1")
    args = transport.backend.ssh_extra_args
    assert args.startswith("-o StrictHostKeyChecking=no")
    assert args.endswith("-o ControlPath='/run/cm cp/master-%h'")
