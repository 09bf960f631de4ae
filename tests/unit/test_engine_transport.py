"""The Engine API transport (probe/engine.py): which hosts it takes, the command it asks the daemon
to run, and how it reads the daemon's answers (the bytes below are what dockerd sends; the lab test
test_engine_transport_lab.py runs it against a real daemon beside the docker client)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from casemate.inventory import Inventory
from casemate.probe.engine import (
    EngineAnswerError,
    EngineTransport,
    _parsed,
    demux,
    local_socket,
)
from casemate.probe.transport import engine_transport, host_transport
from casemate.readers import library_module

# the daemon's socket by the probe's own rule (roles/host_common/module_utils/casemate_engine.py)
ENGINE_SOCKET = library_module("casemate_engine").ENGINE_SOCKET


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_demux_splits_stdout_and_stderr_frames_in_order() -> None:
    raw = frame(1, b"one ") + frame(2, b"oops\n") + frame(1, b"two\n") + frame(1, b"")
    assert demux(raw) == (b"one two\n", b"oops\n")


def test_demux_keeps_payloads_larger_than_one_read_and_drops_a_cut_header() -> None:
    big = bytes(range(256)) * 600
    assert demux(frame(1, big) + b"\x01\x00\x00") == (big, b"")


def test_an_answer_is_read_by_its_content_length_or_to_the_end() -> None:
    assert _parsed(b'HTTP/1.0 201 Created\r\nContent-Length: 9\r\n\r\n{"Id":1}\nextra') == (
        201,
        b'{"Id":1}\n',
    )
    stream = b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"
    assert _parsed(stream + frame(1, b"x")) == (200, frame(1, b"x"))


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5",
    ],
)
def test_an_answer_that_is_not_a_whole_http_answer_is_refused(answer: bytes) -> None:
    with pytest.raises(EngineAnswerError):
        _parsed(answer)


def test_the_command_runs_as_docker_exec_would_run_it_with_or_without_sudo() -> None:
    cmd = "echo 'a b' && id"
    assert EngineTransport("c", socket_path=ENGINE_SOCKET).argv(cmd) == ["/bin/sh", "-c", cmd]
    assert EngineTransport("c", socket_path=ENGINE_SOCKET, sudo=True).argv(cmd) == [
        "/bin/sh",
        "-c",
        "sudo /bin/sh -c 'echo '\"'\"'a b'\"'\"' && id'",
    ]
    assert EngineTransport("c", socket_path=ENGINE_SOCKET, sudo=True, sudo_user="app").argv("id")[
        2
    ] == ("sudo -u app /bin/sh -c id")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ENGINE_SOCKET),
        ({"DOCKER_HOST": "unix:///var/run/docker.sock"}, ENGINE_SOCKET),
        ({"DOCKER_HOST": "unix:///srv/docker.sock"}, None),
        ({"DOCKER_HOST": "tcp://127.0.0.1:2376"}, None),
        ({"DOCKER_HOST": "ssh://admin@builder"}, None),
        ({"DOCKER_CONTEXT": "remote"}, None),
        ({"PATH": "/nonexistent"}, None),  # no docker client: Ansible's connection cannot run
    ],
)
def test_only_the_daemon_the_docker_client_would_ask_by_default_is_asked_directly(
    env: dict[str, str], expected: str | None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The probe's rule (casemate_engine.engine_socket; its own tests are in
    test_engine_answers.py), on this machine's dockerd."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no config.json: the default context
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert local_socket() == expected


def test_a_current_context_in_the_clients_config_leaves_the_host_to_the_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    (tmp_path / "config.json").write_text('{"currentContext": "rootless"}')
    assert local_socket() is None
    assert engine_transport(inventory(ansible_connection="docker"), "n1") is None


def inventory(**hostvars: Any) -> Inventory:
    raw = {"_meta": {"hostvars": {"n1": hostvars}}, "all": {"children": ["docker_hosts"]}}
    raw["docker_hosts"] = {"hosts": ["n1"]}
    return Inventory(Path("inv.yml"), raw)


def test_a_docker_connection_host_is_run_through_the_engine_as_ansible_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "ANSIBLE_BECOME", "ANSIBLE_REMOTE_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    plain: Any = host_transport(inventory(ansible_connection="docker"), "n1")
    assert isinstance(plain, EngineTransport)
    assert (plain.container, plain.user, plain.sudo) == ("n1", None, False)
    named: Any = engine_transport(
        inventory(
            ansible_connection="community.docker.docker",
            ansible_host="box-1",
            ansible_user="app",
            ansible_become="yes",
            ansible_become_user="svc",
        ),
        "n1",
    )
    assert (named.container, named.user, named.sudo, named.sudo_user) == (
        "box-1",
        "app",
        True,
        "svc",
    )
    docker_vars: Any = engine_transport(
        inventory(
            ansible_connection="docker",
            ansible_host="box-1",
            ansible_docker_host="box-2",
            ansible_user="app",
            ansible_docker_user="ops",
            ansible_become=False,
        ),
        "n1",
    )
    assert (docker_vars.container, docker_vars.user, docker_vars.sudo) == ("box-2", "ops", False)
    monkeypatch.setenv("ANSIBLE_BECOME", "false")  # a string, as the environment gives it
    assert not engine_transport(inventory(ansible_connection="docker"), "n1").sudo  # type: ignore[attr-defined]


def test_other_hosts_stay_with_testinfra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    assert engine_transport(inventory(ansible_host="10.0.0.5"), "n1") is None  # ssh
    assert engine_transport(inventory(ansible_connection="local"), "n1") is None
    extra = inventory(ansible_connection="docker", ansible_docker_extra_args="-H tcp://b:2375")
    assert engine_transport(extra, "n1") is None
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
    assert engine_transport(inventory(ansible_connection="docker"), "n1") is None
    assert not isinstance(
        host_transport(inventory(ansible_connection="docker"), "n1"), EngineTransport
    )


def test_a_daemon_that_cannot_be_reached_is_a_connection_error(tmp_path: Path) -> None:
    gone = EngineTransport("n1", socket_path=str(tmp_path / "none.sock"))
    with pytest.raises(ConnectionError, match=r"docker engine at .*none\.sock"):
        gone.run("true")
