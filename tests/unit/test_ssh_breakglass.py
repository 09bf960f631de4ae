"""Profile immutable turns SSH off: a host this run reaches over SSH is refused before anything is
touched unless a break-glass path is named, and a path casemate can use is proven first."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate import breakglass, cli
from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.errors import BadInputError
from casemate.inventory import Inventory
from casemate.runner import HostStats, PlaybookOutcome

from .locks import every_host_free

CATALOG = load_catalog(None, builtin_kinds())


def inventory(path: Path, hosts: dict[str, dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"all": {"children": {"docker_hosts": {"hosts": hosts}}}}))
    return path


def inv(hosts: dict[str, dict[str, Any]]) -> Inventory:
    return Inventory(
        source=Path("inv.yml"),
        raw={"_meta": {"hostvars": hosts}, "docker_hosts": {"hosts": sorted(hosts)}},
    )


SSH_HOSTS = {"web-1": {"ansible_host": "10.0.0.1"}, "web-2": {"ansible_connection": "ssh"}}
DOCKER_HOST = {"node-1": {"ansible_connection": "community.docker.docker"}}
GLASS = {"ansible_connection": "community.docker.docker", "ansible_host": "node-1"}


@dataclass
class Done:
    rc: int
    stdout: str
    stderr: str = ""


class Answer:
    def __init__(self, done: Done | Exception) -> None:
        self.done = done
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, inventory: Inventory, host: str) -> Any:
        self.seen.append((host, dict(inventory.hostvars(host))))
        return self

    def run(self, command: str) -> Done:
        if isinstance(self.done, Exception):
            raise self.done
        return self.done


OK = Done(0, "casemate-break-glass\nroot\nnode-1\n")


def test_ssh_hosts_are_refused_without_a_break_glass_path() -> None:
    with pytest.raises(BadInputError) as caught:
        breakglass.assess(inv(SSH_HOSTS), ["web-1", "web-2"], "immutable", None)
    assert str(caught.value) == (
        "profile immutable turns SSH off, but this run reaches web-1, web-2 over SSH; name the "
        "break-glass path with --break-glass console|serial|docker|ssm (nothing was changed)"
    )


def test_paths_per_connection() -> None:
    hosts = {**SSH_HOSTS, **DOCKER_HOST}
    paths = breakglass.assess(inv(hosts), sorted(hosts), "immutable", "console")
    assert [(p.host, p.path, p.declared, p.provable) for p in paths] == [
        ("node-1", "docker", False, True),  # the run's own connection is the way in
        ("web-1", "console", True, False),
        ("web-2", "console", True, False),
    ]
    assert breakglass.assess(inv(SSH_HOSTS), ["web-1"], "immutable", None, ssh_off=False) == []
    assert breakglass.assess(inv(SSH_HOSTS), ["web-1"], "standard", None) == []


@pytest.mark.parametrize(
    ("profile", "flag", "message"),
    [
        ("standard", "console", "--break-glass only means something with --profile immutable"),
        (
            "immutable",
            "telnet",
            "--break-glass must be one of console, serial, docker, ssm, not 'telnet'",
        ),
        (
            "immutable",
            "docker",
            "web-1: --break-glass docker needs the docker connection in the inventory as casemate_break_glass",
        ),
        ("immutable", "ssm", "web-1: --break-glass ssm needs the ssm connection"),
    ],
)
def test_bad_flags(profile: str, flag: str, message: str) -> None:
    with pytest.raises(BadInputError, match=message.replace("|", r"\|")):
        breakglass.assess(inv(SSH_HOSTS), ["web-1"], profile, flag)


def test_docker_path_for_an_ssh_host_is_proven_over_that_connection() -> None:
    hosts = {"web-1": {"ansible_host": "10.0.0.1", breakglass.VAR: GLASS}}
    paths = breakglass.assess(inv(hosts), ["web-1"], "immutable", "docker")
    answer = Answer(OK)
    record = breakglass.prove(inv(hosts), paths, answer)
    assert answer.seen[0][1]["ansible_connection"] == "community.docker.docker"  # not ssh
    assert answer.seen[0][1]["ansible_host"] == "node-1"
    entry = record["web-1"]
    assert entry["proven"] is True
    assert entry["declared_by_operator"] is True
    assert entry["command"] == breakglass.PROOF_COMMAND
    assert entry["stdout"].startswith("casemate-break-glass")


def test_console_is_declared_not_proven() -> None:
    paths = breakglass.assess(inv(SSH_HOSTS), ["web-1"], "immutable", "serial")
    record = breakglass.prove(inv(SSH_HOSTS), paths, Answer(RuntimeError("never called")))
    assert record["web-1"]["proven"] is False
    assert "taken as declared" in record["web-1"]["why"]


@pytest.mark.parametrize(
    ("done", "why"),
    [
        (
            Done(1, "", "Error: No such container: node-1"),
            "exit 1: Error: No such container: node-1",
        ),
        (Done(0, "something else\n"), "exit 0: something else"),
        (
            ConnectionError("docker exec: No such container: node-1"),
            "docker exec: No such container",
        ),
    ],
)
def test_a_broken_path_refuses_the_host(done: Done | Exception, why: str) -> None:
    paths = breakglass.assess(inv(DOCKER_HOST), ["node-1"], "immutable", None)
    with pytest.raises(BadInputError) as caught:
        breakglass.prove(inv(DOCKER_HOST), paths, Answer(done))
    text = str(caught.value)
    assert text.startswith("node-1: the break-glass path (docker) does not work: ")
    assert why in text
    assert text.endswith("refusing to turn SSH off (nothing was changed)")


def test_only_ssh_off_controls_need_a_path() -> None:
    off = select(CATALOG, Selection(level=2, profile="immutable"))
    assert breakglass.turns_ssh_off(off)
    assert not breakglass.turns_ssh_off([e for e in off if not e.id.startswith("cm_host_1_")])
    assert not breakglass.turns_ssh_off(select(CATALOG, Selection(level=2)))


# --- the command line: refused before anything is touched, recorded when it runs --------------------


@pytest.fixture
def no_playbook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> PlaybookOutcome:
        calls.append(kwargs)
        return PlaybookOutcome("successful", 0, {h: HostStats(ok=1) for h in kwargs["hosts"]})

    monkeypatch.setattr("casemate.harden.run_playbook", fake)
    monkeypatch.setenv("CASEMATE_STATE_DIR", str(tmp_path / "state"))
    return calls


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(list(argv))
    return int(done.value.code or 0), capsys.readouterr().err


@pytest.mark.ansible
def test_cli_refuses_ssh_hosts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_playbook: list[dict[str, Any]]
) -> None:
    path = str(inventory(tmp_path / "inv.yml", SSH_HOSTS))
    code, err = call(capsys, "harden", "-i", path, "--profile", "immutable")
    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith(
        "casemate: error: profile immutable turns SSH off, but this run reaches web-1, web-2 over SSH"
    )
    code, err = call(
        capsys, "harden", "-i", path, "--profile", "immutable", "--break-glass", "docker"
    )
    assert (code, err.count("\n")) == (2, 1)
    assert "casemate_break_glass" in err
    code, err = call(capsys, "harden", "-i", path, "--break-glass", "console")
    assert (code, err.count("\n")) == (2, 1)
    assert no_playbook == []  # no host was touched


@pytest.mark.ansible
def test_cli_records_the_break_glass_path(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_playbook: list[dict[str, Any]],
) -> None:
    path = str(inventory(tmp_path / "inv.yml", {**SSH_HOSTS, **DOCKER_HOST}))
    monkeypatch.setattr("casemate.probe.transport.host_transport", Answer(OK))
    monkeypatch.setattr("casemate.hostlock.acquire", every_host_free)  # the lock: test_host_lock
    monkeypatch.setattr("casemate.hostlock.release", lambda *a, **k: {})
    code, _ = call(
        capsys, "harden", "-i", path, "--profile", "immutable", "--break-glass", "console"
    )
    assert code == 0
    (run,) = no_playbook
    assert run["extravars"]["casemate_break_glass"] == "console"
    assert run["extravars"]["casemate_profile"] == "immutable"
    (stored,) = (tmp_path / "state" / "runs").glob("*-harden-*")
    meta = json.loads((stored / "run.json").read_text())
    hosts = meta["break_glass"]["hosts"]
    assert hosts["node-1"]["proven"] is True
    assert hosts["web-1"] == hosts["web-1"] | {"path": "console", "proven": False}
    assert json.loads((stored / "breakglass.json").read_text()) == meta["break_glass"]


@pytest.mark.ansible
def test_cli_refuses_a_host_whose_path_does_not_work(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_playbook: list[dict[str, Any]],
) -> None:
    path = str(inventory(tmp_path / "inv.yml", DOCKER_HOST))
    monkeypatch.setattr("casemate.probe.transport.host_transport", Answer(Done(1, "", "gone")))
    code, err = call(capsys, "harden", "-i", path, "--profile", "immutable")
    assert (code, err.count("\n")) == (2, 1)
    assert "node-1: the break-glass path (docker) does not work: exit 1: gone" in err
    assert no_playbook == []
