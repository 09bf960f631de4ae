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
"""

import json
import os
import socket

try:
    import http.client as httplib
except ImportError:  # pragma: no cover - python 2 is not supported
    httplib = None

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


class _UnixConnection(httplib.HTTPConnection if httplib else object):
    def __init__(self, path, timeout):
        httplib.HTTPConnection.__init__(self, "localhost", timeout=timeout)
        self._socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def engine_open(path, sock, timeout=ENGINE_TIMEOUT):
    """(connection, response) of GET `path` when the daemon answers 200, else None. The caller
    reads the response (a stream: `docker save`'s tarball) and closes the connection."""
    conn = _UnixConnection(sock, timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
    except (OSError, httplib.HTTPException):
        conn.close()
        return None
    if resp.status != 200:
        conn.close()
        return None
    return conn, resp


def engine_get(path, sock, timeout=ENGINE_TIMEOUT):
    """The daemon's JSON answer to GET `path`, or None (no 200 with JSON: ask the CLI)."""
    opened = engine_open(path, sock, timeout)
    if opened is None:
        return None
    conn, resp = opened
    try:
        body = resp.read()
    except (OSError, httplib.HTTPException):
        return None
    finally:
        conn.close()
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:
        return None
