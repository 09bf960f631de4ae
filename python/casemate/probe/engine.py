"""The Docker connection without the docker CLI: a command run in a container through the Docker
Engine API on the daemon's Unix socket (create an exec, start it attached, read its exit code).

Starting the `docker` client costs the controller 10-30 ms of CPU per command (a Go program);
three small HTTP requests on the socket cost under a millisecond (docs/benchmarks.md). The
command, user and privilege escalation are those the `docker exec` client would be given
(testinfra's docker backend: `/bin/sh -c`, `-u ansible_user`, `sudo /bin/sh -c` with become), and
the result is the same: the exit status, stdout and stderr, and for a container that does not
exist or is not running, exit status 1 and the daemon's message."""

from __future__ import annotations

import json
import shlex
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

TIMEOUT_S = 600.0  # one probe: container proofs included, never minutes
STDOUT, STDERR = 1, 2


@dataclass(frozen=True, slots=True)
class EngineResult:
    rc: int
    stdout: str
    stderr: str


class EngineAnswerError(ConnectionError):
    """The daemon's answer was not a whole HTTP/1.x answer."""


def _ask(socket_path: str, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    """(status, body) of one HTTP/1.0 request on a connection of its own. HTTP/1.0, written here
    rather than with http.client (which brings ssl and email with it: more import time than the
    whole request): the daemon then ends every answer by its Content-Length or by closing the
    connection, an attached exec's stream included, and never answers in chunks."""
    data = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.0\r\nHost: docker\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT_S)
        sock.connect(socket_path)
        sock.sendall(head.encode() + b"\r\n" + data)
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    return _parsed(b"".join(chunks))


def _parsed(answer: bytes) -> tuple[int, bytes]:
    head, sep, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    words = lines[0].split(None, 2)
    if not sep or len(words) < 2 or not words[0].startswith(b"HTTP/1.") or not words[1].isdigit():
        raise EngineAnswerError("the daemon's answer is not an HTTP answer")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.decode("latin-1").partition(":") for line in lines[1:])
    }
    if headers.get("transfer-encoding", "identity").lower() != "identity":
        raise EngineAnswerError("a chunked answer to an HTTP/1.0 request")
    length = headers.get("content-length")
    if length is not None:
        if not length.isdigit() or len(body) < int(length):
            raise EngineAnswerError("the daemon's answer is cut short")
        body = body[: int(length)]
    return int(words[1]), body


def local_socket() -> str | None:
    """The daemon's socket when the docker client (which Ansible's docker connection runs) would
    ask the default local daemon, else None: another daemon (`DOCKER_HOST`, `DOCKER_CONTEXT`, a
    current context in its config.json), no docker client, no socket. The rule is the probe's own
    (casemate_engine.engine_socket), read from the same file: one reader of which daemon the
    client asks."""
    from casemate.readers import library_module  # noqa: PLC0415 - only for a docker host

    found = library_module("casemate_engine").engine_socket()
    return str(found) if found else None


def demux(raw: bytes) -> tuple[bytes, bytes]:
    """stdout and stderr of an attached exec without a TTY: frames of an 8-byte header (stream,
    three zero bytes, big-endian length) and the payload."""
    out, err = bytearray(), bytearray()
    at = 0
    while at + 8 <= len(raw):
        stream, size = struct.unpack_from(">BxxxL", raw, at)
        payload = raw[at + 8 : at + 8 + size]
        (err if stream == STDERR else out).extend(payload)
        at += 8 + size
    return bytes(out), bytes(err)


class EngineTransport:
    """Runs a shell command in `container` as `docker exec [-u user] container /bin/sh -c` would,
    through `sudo` with privilege escalation."""

    def __init__(
        self,
        container: str,
        *,
        socket_path: str,
        user: str | None = None,
        sudo: bool = False,
        sudo_user: str | None = None,
    ) -> None:
        self.container = container
        self.user = user
        self.sudo = sudo
        self.sudo_user = sudo_user
        self.socket_path = socket_path

    def argv(self, command: str) -> list[str]:
        if not self.sudo:
            return ["/bin/sh", "-c", command]
        if self.sudo_user is None:
            return ["/bin/sh", "-c", f"sudo /bin/sh -c {shlex.quote(command)}"]
        who = shlex.quote(self.sudo_user)
        return ["/bin/sh", "-c", f"sudo -u {who} /bin/sh -c {shlex.quote(command)}"]

    def run(self, command: str) -> EngineResult:
        """The command's result. A daemon that cannot be reached raises ConnectionError; a
        container it does not know, or one that is not running, gives exit status 1 and the
        daemon's message, as the docker client does."""
        try:
            return self._run(command)
        except EngineAnswerError:
            raise
        except OSError as exc:
            raise ConnectionError(f"docker engine at {self.socket_path}: {exc}") from exc

    def _run(self, command: str) -> EngineResult:
        spec: dict[str, Any] = {
            "AttachStdout": True,
            "AttachStderr": True,
            "Cmd": self.argv(command),
        }
        if self.user is not None:
            spec["User"] = self.user
        status, body = _ask(
            self.socket_path, "POST", f"/containers/{quote(self.container, safe='')}/exec", spec
        )
        if status != 201:
            return EngineResult(1, "", f"Error response from daemon: {_message(body)}\n")
        exec_id = quote(str(json.loads(body)["Id"]), safe="")
        status, raw = _ask(
            self.socket_path, "POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False}
        )
        if status != 200:
            return EngineResult(1, "", f"Error response from daemon: {_message(raw)}\n")
        out, err = demux(raw)
        rc = self._exit_code(exec_id)
        return EngineResult(rc, out.decode(errors="replace"), err.decode(errors="replace"))

    def _exit_code(self, exec_id: str) -> int:
        # the stream ends when the process does; the daemon may record its exit a moment later
        for delay in (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0):
            time.sleep(delay)
            status, body = _ask(self.socket_path, "GET", f"/exec/{exec_id}/json")
            if status != 200:
                raise ConnectionError(f"exec {exec_id}: {_message(body)}")
            state = json.loads(body)
            if not state.get("Running") and state.get("ExitCode") is not None:
                return int(state["ExitCode"])
        raise ConnectionError(f"exec {exec_id} did not report its exit status")


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace").strip() or "no answer"
