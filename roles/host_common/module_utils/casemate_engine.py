"""casemate host readers: the Docker Engine API over the daemon's unix socket. A sibling of
casemate_host.py (read its docstring): stdlib only, python3 >= 3.6, carried by the probe.

The docker CLI is a Go program: each call costs 20-150 ms of the host's CPU before it asks the
daemon anything, and the daemon answers most questions in well under 10 ms. These readers ask the
daemon directly, as the CLI does, for the questions the probe puts to it.

"Cannot tell" has one rule here: whenever the answer would not be the one the docker CLI gets, the
reader answers None and the caller asks the CLI itself, which then says what it says (its own
errors included). That is: the CLI would ask another daemon (DOCKER_HOST, DOCKER_CONTEXT, a current
context in its config.json, or a config.json it cannot read, which it warns about), there is no
docker CLI at all (asking it fails: the daemon's answer must not stand in for that), the socket
cannot be reached, or the daemon does not answer 200 with JSON (a missing object, no swarm...).

The requests are plain HTTP/1.0 GETs written on the socket here, not http.client: that module
brings the email package and ssl with it, which cost every probe run more CPU than all its other
imports together. HTTP/1.0 is what keeps this small: the daemon then never answers in chunks and
ends every answer by its Content-Length or by closing the connection. An answer that is not such
an HTTP/1.x answer, or is cut short, is no answer.
"""

import json
import os
import socket

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import find_command
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        find_command,
    )

ENGINE_SOCKET = "/var/run/docker.sock"
ENGINE_HOSTS = ("unix://" + ENGINE_SOCKET, "unix:///run/docker.sock")
ENGINE_TIMEOUT = 30


def engine_socket(environ=None, home=None):
    """The socket the docker CLI would ask, when it is the default one and asking it directly
    gives what the CLI gets; else None (see the module's rule)."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST", "") not in ("", *ENGINE_HOSTS):
        return None
    if env.get("DOCKER_CONTEXT", "") not in ("", "default"):
        return None
    if find_command("docker", env.get("PATH", os.defpath)) is None:
        return None
    config_dir = env.get("DOCKER_CONFIG") or os.path.join(
        home or env.get("HOME") or os.path.expanduser("~"), ".docker"
    )
    try:
        with open(os.path.join(config_dir, "config.json")) as handle:
            config = json.load(handle)
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or config.get("currentContext", "") not in ("", "default"):
        return None
    return ENGINE_SOCKET if os.path.exists(ENGINE_SOCKET) else None


class EngineError(OSError):
    """The daemon's answer was not a whole HTTP/1.x answer."""


LINE_LIMIT = 65536


class _Answer(object):
    """An HTTP/1.x answer read from a socket: its status, headers and a body stream."""

    def __init__(self, sock):
        self._file = sock.makefile("rb")
        words = self._file.readline(LINE_LIMIT + 1).split(None, 2)
        if len(words) < 2 or not words[0].startswith(b"HTTP/1.") or not words[1].isdigit():
            raise EngineError("not an HTTP answer")
        self.status = int(words[1])
        headers = {}
        while True:
            line = self._file.readline(LINE_LIMIT + 1)
            if not line.endswith(b"\n"):
                raise EngineError("the answer's headers are cut short")
            if not line.strip():
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "identity").lower() != "identity":
            raise EngineError("a chunked answer to an HTTP/1.0 request")
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            raise EngineError("a bad Content-Length")
        self._left = int(length) if length is not None else None

    def read(self, size=-1):
        """Up to `size` bytes of the body (all of it when size < 0); an answer shorter than its
        Content-Length raises EngineError."""
        if self._left is None:
            return self._file.read() if size < 0 else self._file.read(size)
        want = self._left if size < 0 else min(size, self._left)
        data = self._file.read(want) if want else b""
        if len(data) < want:
            raise EngineError("the answer is cut short")
        self._left -= len(data)
        return data

    def close(self):
        self._file.close()


class _Connection(object):
    """One GET on the daemon's socket (a new connection per request, closed by the caller)."""

    def __init__(self, path, timeout):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._path = path
        self._answer = None

    def get(self, path):
        self._sock.connect(self._path)
        self._sock.sendall(("GET %s HTTP/1.0\r\nHost: docker\r\n\r\n" % path).encode("ascii"))
        self._answer = _Answer(self._sock)
        return self._answer

    def close(self):
        if self._answer is not None:
            self._answer.close()
        self._sock.close()


def engine_open(path, sock, timeout=ENGINE_TIMEOUT):
    """(connection, answer) of GET `path` when the daemon answers 200, else None. The caller
    reads the answer (a stream: `docker save`'s tarball) and closes the connection."""
    conn = _Connection(sock, timeout)
    try:
        resp = conn.get(path)
    except (OSError, ValueError):
        conn.close()
        return None
    if resp.status != 200:
        conn.close()
        return None
    return conn, resp


def engine_refusal(path, sock, timeout=ENGINE_TIMEOUT):
    """(status, message) of GET `path` when the daemon refuses it with an error document (what
    the docker CLI prints as "Error response from daemon: MESSAGE"), else None (a 200, no answer,
    or an answer that is not such a document: ask the CLI)."""
    conn = _Connection(sock, timeout)
    try:
        resp = conn.get(path)
        body = resp.read()
    except (OSError, ValueError):
        return None
    finally:
        conn.close()
    if resp.status < 400:
        return None
    try:
        doc = json.loads(body.decode("utf-8"))
    except ValueError:
        return None
    message = doc.get("message") if isinstance(doc, dict) else None
    if not isinstance(message, str) or not message:
        return None
    return resp.status, message


def engine_get(path, sock, timeout=ENGINE_TIMEOUT):
    """The daemon's JSON answer to GET `path`, or None (no 200 with JSON: ask the CLI)."""
    opened = engine_open(path, sock, timeout)
    if opened is None:
        return None
    conn, resp = opened
    try:
        body = resp.read()
    except OSError:
        return None
    finally:
        conn.close()
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:
        return None
