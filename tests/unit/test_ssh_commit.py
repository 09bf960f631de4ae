"""The sshd role's commit-confirmed module (roles/sshd/library/sshd_commit.py) and the conditions
of its task files, on crafted input: what the host-side rollback does with a dead sshd, which
sockets prove that sshd listens again, which file sshd -t validates, and when a run counts as
reached over SSH. The full flow runs on real nodes (tests/lab/test_ssh_lab.py)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2
import pytest
import yaml

from casemate.locations import content_root

ROLE = content_root() / "roles" / "sshd"


def load(name: str) -> ModuleType:
    path = ROLE / "library" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"casemate_test_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


C = load("sshd_commit")
F = load("sshd_facts")


# --- the host-side rollback brings a dead sshd back (finding: rollback left sshd dead) -----------


def run_rollback(tmp_path: Path, active: bool, was_active: bool) -> list[str]:
    """Run rollback.sh against a fake systemctl that logs its calls; `active` is what
    `systemctl is-active` answers."""
    change = tmp_path / "change"
    (change / "files").mkdir(parents=True)
    target = tmp_path / "sshd_config"
    target.write_text("new\n")
    (change / "files" / "0").write_text("old\n")
    manifest = {"files": [{"path": str(target), "existed": True, "saved": "0"}]}
    systemd = tmp_path / "systemd"
    systemd.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    fake = bin_dir / "systemctl"
    fake.write_text(
        f'#!/bin/sh\necho "$*" >> {log}\n'
        f'[ "$1" = is-active ] && exit {0 if active else 3}\nexit 0\n'
    )
    fake.chmod(0o755)
    script = C.rollback_script(str(change), manifest, "ssh.service", was_active, "/usr/sbin/sshd")
    script = script.replace("/run/systemd/system", str(systemd))
    done = subprocess.run(
        ["/bin/sh", "-c", script, "rollback", "timer"],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert target.read_text() == "old\n"
    return log.read_text().splitlines()


def test_rollback_starts_an_sshd_that_died_at_the_reload(tmp_path: Path) -> None:
    calls = run_rollback(tmp_path, active=False, was_active=True)
    assert calls == [
        "is-active --quiet ssh.service",
        "reset-failed ssh.service",
        "start ssh.service",
    ]


def test_rollback_reloads_a_running_sshd_and_leaves_a_stopped_one_stopped(tmp_path: Path) -> None:
    assert run_rollback(tmp_path / "a", active=True, was_active=True) == [
        "is-active --quiet ssh.service",
        "reload ssh.service",
    ]
    assert run_rollback(tmp_path / "b", active=False, was_active=False) == [
        "is-active --quiet ssh.service"
    ]


def test_rollback_without_systemd_starts_sshd_when_its_pid_is_dead() -> None:
    manifest: dict[str, Any] = {"files": []}
    script = C.rollback_script("/x", manifest, "ssh.service", True, "/usr/sbin/sshd")
    assert 'elif [ -f /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null; then' in script
    assert "else\n    /usr/sbin/sshd\nfi" in script


# --- which sockets show that sshd listens again ----------------------------------------------------


def test_listen_ports_come_from_listenaddress() -> None:
    assert F.listen_ports({"port": ["22"], "listenaddress": ["0.0.0.0:22", "[::]:22"]}) == [22]
    assert F.listen_ports({"port": ["22"], "listenaddress": ["10.0.0.1:2222"]}) == [2222]
    assert F.listen_ports({"port": ["22", "2200"]}) == [22, 2200]
    assert F.listen_ports({}) == [22]


def test_only_sockets_sshd_itself_holds_count() -> None:
    with socket.socket() as mine:
        mine.bind(("127.0.0.1", 0))
        mine.listen()
        port = mine.getsockname()[1]
        held = C.sshd_sockets(os.getpid(), [port])
        assert len(held) == 1
        assert held <= C.listen_inodes([port])
        # the same port, but another process: pid 1 does not hold this socket
        assert C.sshd_sockets(1, [port]) == set()
        assert C.sshd_sockets(0, [port]) == set()


class FakeModule:
    def __init__(self, answers: dict[str, tuple[int, str, str]]) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        return self.answers.get(" ".join(argv[-2:]), (0, "", ""))


def test_wait_reports_an_sshd_that_stopped_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(C, "service_active", lambda module, service: False)
    said = C.wait_listening(FakeModule({}), "ssh.service", [22], set(), 15)
    assert said == "ssh.service stopped at the reload"


def test_a_reload_that_fails_because_sshd_died_says_sshd_stopped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Debian 13 (OpenSSH 10): systemd fails the reload job when sshd exits during it, so systemctl
    answers with its generic words; the reason given is the one Debian 12's path gives."""
    generic = "Job for ssh.service failed because the control process exited with error code.\n"
    monkeypatch.setattr(C, "service_active", lambda module, service: False)
    said = C.reload_failed(FakeModule({}), "ssh.service", generic)
    assert said == "ssh.service stopped at the reload"
    monkeypatch.setattr(C, "service_active", lambda module, service: True)
    said = C.reload_failed(FakeModule({}), "ssh.service", "Unit ssh.service not loaded.\n")
    assert said == "reloading ssh.service failed: Unit ssh.service not loaded."


def test_wait_under_socket_activation_needs_only_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(C, "service_active", lambda module, service: True)
    monkeypatch.setattr(C, "sshd_sockets", lambda pid, ports: set())  # systemd holds them
    assert (
        C.wait_listening(FakeModule({}), "ssh.service", [22], {"1"}, 15, socket_active=True) == ""
    )


def test_sshd_t_validates_the_managed_file() -> None:
    argv = C.validate_argv("/srv/ssh/sshd_config")
    assert argv[1:] == ["-t", "-f", "/srv/ssh/sshd_config"]


def test_write_makes_a_missing_dropin_directory(tmp_path: Path) -> None:
    path = tmp_path / "sshd_config.d" / "00-casemate-hardening.conf"
    C.write(str(path), "PermitRootLogin no\n", "0600")
    assert path.read_text() == "PermitRootLogin no\n"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


# --- reached over SSH: the process tree or the connection plugin ----------------------------------


def expression(tasks_file: str, name_start: str, field: str) -> list[str]:
    tasks = yaml.safe_load((ROLE / "tasks" / tasks_file).read_text())
    flat = [t for task in tasks for t in [task, *task.get("block", [])]]
    (task,) = [t for t in flat if t["name"].startswith(name_start)]
    value = task["ansible.builtin.assert"]["that"] if field == "that" else task[field]
    return value if isinstance(value, list) else [value]


def holds(conditions: list[str], **context: Any) -> bool:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return all(bool(env.compile_expression(c)(**context)) for c in conditions)


def found(connection: str, via_ssh: bool) -> dict[str, Any]:
    """What sshd_facts reports for a host (its own decision, as the module computes it)."""
    return {
        "session": {"via_ssh": via_ssh},
        "connection": connection,
        "ssh_connection": connection in F.SSH_CONNECTIONS,
        "reached_over_ssh": via_ssh or connection in F.SSH_CONNECTIONS,
    }


def test_ssh_off_is_refused_over_ssh_even_when_the_process_tree_hides_it() -> None:
    that = expression("off.yml", "Preflight | Refuse to turn SSH off", "that")
    # become through machinectl/run0 or an unreadable /proc: no sshd among the parents
    assert not holds(that, sshd_found=found("ssh", via_ssh=False), sshd_break_glass="")
    assert not holds(that, sshd_found=found("ssh", via_ssh=True), sshd_break_glass="")
    assert holds(that, sshd_found=found("ssh", via_ssh=False), sshd_break_glass="console")
    assert holds(that, sshd_found=found("community.docker.docker", False), sshd_break_glass="")


def test_fresh_login_runs_for_every_ssh_connection() -> None:
    when = expression("apply.yml", "Confirm with a fresh SSH login", "when")
    assert holds(when, sshd_found=found("ssh", via_ssh=False), ansible_check_mode=False)
    assert holds(when, sshd_found=found("paramiko", via_ssh=True), ansible_check_mode=False)
    assert not holds(when, sshd_found=found("community.docker.docker", False), ansible_check_mode=False)  # fmt: skip
    assert not holds(when, sshd_found=found("ssh", via_ssh=True), ansible_check_mode=True)
