"""The probe answers the catalog's docker commands from the daemon's Engine API (casemate_engine.py,
probe/remote.py: ENGINE_ANSWERS) with what the docker CLI prints, and runs the command itself
whenever the daemon's plain answer would not be the CLI's. Run against this machine's own dockerd
and docker CLI; tests/lab/test_engine_answers_lab.py compares every answer on a lab node."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.checks.base import Probe
from casemate.probe.collect import remote_source
from casemate.verify import wanted_probes

from .assembled import probe_module

remote = probe_module()


def _catalog_commands() -> set[str]:
    entries = list(load_catalog(None, builtin_kinds()).entries)
    return {p.arg for p in wanted_probes(entries) if p.kind == "cmd"}


def test_every_command_answered_from_the_daemon_is_one_the_catalog_asks() -> None:
    asked = _catalog_commands()
    assert set(remote.ENGINE_ANSWERS) <= asked, set(remote.ENGINE_ANSWERS) - asked
    assert set(remote.ENGINE_REFUSALS) <= asked, set(remote.ENGINE_REFUSALS) - asked
    assert any(c.startswith(remote.ROOT_DIR_PREFIX) for c in asked)


def test_the_cli_is_asked_when_it_would_ask_another_daemon(tmp_path: Path) -> None:
    path = os.environ.get("PATH", os.defpath)
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    assert remote.engine_socket({"PATH": path}, str(home)) == remote.ENGINE_SOCKET
    default = {"PATH": path, "DOCKER_HOST": "unix:///var/run/docker.sock"}
    assert remote.engine_socket(default, str(home)) == remote.ENGINE_SOCKET
    for other in (
        {"DOCKER_HOST": "tcp://127.0.0.1:2376"},
        {"DOCKER_HOST": "unix:///srv/other.sock"},
        {"DOCKER_CONTEXT": "remote"},
        {"PATH": str(tmp_path)},  # no docker CLI: asking it fails, and that is the answer
    ):
        assert remote.engine_socket({"PATH": path, **other}, str(home)) is None, other
    config = home / ".docker" / "config.json"
    config.write_text(json.dumps({"currentContext": "remote"}))
    assert remote.engine_socket({"PATH": path}, str(home)) is None
    config.write_text("{not json")  # the CLI warns on stderr about it
    assert remote.engine_socket({"PATH": path}, str(home)) is None
    config.write_text(json.dumps({"currentContext": "default", "auths": {}}))
    assert remote.engine_socket({"PATH": path}, str(home)) == remote.ENGINE_SOCKET


def _cli(command: str) -> dict[str, Any]:
    res: dict[str, Any] = remote.run_command(command, shell=True)
    return res


def test_daemon_answers_are_what_the_docker_cli_prints() -> None:
    """This machine's dockerd, asked both ways. Only answers that other engineers' lab nodes on
    the same daemon do not change between the two asks are compared here; the lab test compares
    every one on a node of its own."""
    assert remote.engine_socket() == remote.ENGINE_SOCKET, "this machine's dockerd is not asked"
    for command in (
        "docker version --format '{{.Server.Version}}'",
        "docker network inspect bridge --format '{{json .Options}}'",
        "docker network ls -q --filter driver=overlay | xargs -r docker network inspect"
        " --format '{{.Name}} encrypted={{range $k, $v := .Options}}"
        '{{if eq $k "encrypted"}}yes{{end}}{{end}}\'',
    ):
        answered = remote.engine_answer(command)
        assert answered == {**_cli(command), "api": True}, command
    command = "docker version --format '{{json .}}'"
    answered = remote.engine_answer(command)
    assert json.loads(answered["stdout"])["Server"] == json.loads(_cli(command)["stdout"])["Server"]
    command = "docker info --format '{{json .}}'"
    api, cli = (
        json.loads(remote.engine_answer(command)["stdout"]),
        json.loads(_cli(command)["stdout"]),
    )
    read = ("Driver", "LoggingDriver", "LiveRestoreEnabled", "Runtimes", "SecurityOptions", "Swarm")
    assert {k: api[k] for k in read} == {k: cli[k] for k in read}
    command = remote.ROOT_DIR_PREFIX + 'echo "$d"'
    assert remote.engine_answer(command) == {**_cli(command), "api": True}


@pytest.fixture
def refusing_daemon(tmp_path: Path) -> Iterator[Path]:
    """A unix socket that answers every request 500, as a daemon in trouble does."""
    path = tmp_path / "docker.sock"
    server = _serving(
        path,
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
        b'Content-Length: 22\r\nConnection: close\r\n\r\n{"message":"in pain"}\n',
    )
    yield path
    server.close()


def test_a_command_the_daemon_does_not_answer_plainly_runs_as_written(
    monkeypatch: pytest.MonkeyPatch, refusing_daemon: Path
) -> None:
    command = "docker version --format '{{.Server.Version}}'"
    monkeypatch.setattr(remote, "ENGINE_SOCKET", str(refusing_daemon))
    monkeypatch.setattr(remote, "_ENGINE", {})
    assert remote.engine_answer(command) is None
    ran = remote.c_cmd(command)  # the real CLI, asking this machine's dockerd
    assert "api" not in ran
    assert ran == _cli(command)


def test_a_daemon_the_cli_cannot_reach_gives_the_clis_own_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.setattr(remote, "_ENGINE", {})
    ran = remote.c_cmd("docker info --format '{{json .}}'")
    assert "api" not in ran
    assert "Cannot connect to the Docker daemon" in ran["stdout"] + ran["stderr"]


SWARM_COMMANDS = (
    "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'",
    "if k=$(docker swarm unlock-key -q 2>&1); then echo 'SWMKEY (set)'; else case $k in"
    " *'no unlock key is set'*) echo 'no unlock key';; *) echo \"$k\" >&2; exit 1;; esac; fi",
)


def test_swarm_questions_outside_a_swarm_are_answered_by_the_daemon_as_the_cli_says() -> None:
    """This machine's dockerd is in no swarm: the daemon's refusal, printed as the CLI prints it
    (exit status, stderr), stands in for running the docker CLI."""
    info = remote.engine_get("/info", remote.ENGINE_SOCKET)
    assert info["Swarm"]["LocalNodeState"] == "inactive", "this machine's dockerd is in a swarm"
    for command in SWARM_COMMANDS:
        answered = remote.engine_answer(command)
        assert answered == {**_cli(command), "api": True}, command
        assert answered["rc"] == 1
        assert "not a swarm manager" in answered["stderr"]


@pytest.fixture
def swarm_daemon(tmp_path: Path) -> Iterator[Path]:
    """A unix socket answering as the daemon of a swarm manager: /info says the node is active
    in a swarm, and nothing else is answered plainly."""
    path = tmp_path / "docker.sock"
    info = json.dumps({"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}}).encode()
    refusal = b'{"message":"This node is not a swarm manager."}'

    def answer(request: bytes) -> bytes:
        asked = request.split(b" ", 2)[1]
        status, body = (b"200 OK", info) if asked == b"/info" else (b"503 No", refusal)
        return (
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Connection: close\r\n\r\n" + body
        )

    server = _serving(path, answer)
    yield path
    server.close()


def test_swarm_questions_in_a_swarm_run_the_docker_cli(
    monkeypatch: pytest.MonkeyPatch, swarm_daemon: Path
) -> None:
    """A node the daemon says is in a swarm is asked through the CLI, whatever the daemon would
    refuse: a refusal is taken only where /info says the node is in no swarm."""
    monkeypatch.setattr(remote, "ENGINE_SOCKET", str(swarm_daemon))
    monkeypatch.setattr(remote, "_ENGINE", {})
    assert remote.engine_refusal("/nodes", str(swarm_daemon)) == (
        503,
        "This node is not a swarm manager.",
    )
    for command in SWARM_COMMANDS:
        assert remote.engine_answer(command) is None, command


def _serving(path: Path, answer: bytes | Callable[[bytes], bytes]) -> socket.socket:
    """A unix socket at `path` that gives every request `answer` (or what `answer` makes of the
    request), then closes the connection."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                request = conn.recv(65536)
                conn.sendall(answer(request) if callable(answer) else answer)

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_an_answer_cut_short_or_chunked_is_no_answer(tmp_path: Path) -> None:
    """The engine reader speaks HTTP/1.0: a body shorter than its Content-Length, a chunked body,
    or something that is not HTTP at all is no answer (the CLI is asked), never a partial one."""
    head = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
    cases = {
        "whole": head + b'Content-Length: 11\r\n\r\n{"a": [1]}\n',
        "until closed": head + b'\r\n{"a": [1]}',
        "cut": head + b'Content-Length: 99\r\n\r\n{"a": [1]}',
        "chunked": head + b'Transfer-Encoding: chunked\r\n\r\nb\r\n{"a": [1]}\n\r\n0\r\n\r\n',
        "not http": b"SSH-2.0-OpenSSH_9.2\r\n",
    }
    got = {}
    for name, answer in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.sock"
        server = _serving(path, answer)
        got[name] = remote.engine_get("/info", str(path))
        server.close()
    assert got == {
        "whole": {"a": [1]},
        "until closed": {"a": [1]},
        "cut": None,
        "chunked": None,
        "not http": None,
    }


def test_the_probe_imports_no_http_client_ssl_or_tarfile_it_does_not_use() -> None:
    """A probe that asks for no TLS handshake and no image scan starts without http.client (and
    the email package and ssl it brings), tarfile or datetime: on every host, every run."""
    source = remote_source([Probe("cmd", "docker info --format '{{json .}}'"), Probe("stat", "/")])
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", source],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["probe"] == 1
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not {"http.client", "email.parser", "ssl", "tarfile", "datetime"} & imported
