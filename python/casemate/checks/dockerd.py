"""Whether the Docker daemon could be asked: the rule every Docker-dependent kind applies first.

A daemon that is not running cannot show what it would run with (a systemd drop-in may add flags
that override daemon.json), what it runs or what it stores, so a control that depends on it is an
error naming that reason, never judged from daemon.json alone and never "no containers". A docker
command that could not reach a running daemon is an error too: the CLI says so on stderr (often
with exit status 0 behind a pipe) or, for `docker info`, in the ServerErrors of its JSON answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from casemate.checks.base import Observations, Probe, error_of

DOCKERD = Probe("proc", "dockerd")
# What the docker CLI prints when it cannot reach the daemon (unix socket, TCP, or no permission).
_UNREACHABLE = re.compile(
    r"Cannot connect to the Docker daemon|error during connect"
    r"|permission denied while trying to connect to the Docker daemon"
)


def process_probe(process: str = "dockerd") -> Probe:
    return Probe("proc", process)


def not_running(
    obs: Observations, process: str = "dockerd", what: str = "cannot tell what it would run with"
) -> str | None:
    """Why the daemon cannot be asked (its process lookup failed, or it does not run), or None."""
    raw = obs.get(process_probe(process))
    err = error_of(raw)
    if err:
        return f"cannot tell whether {process} runs: {err}"
    if raw.get("running") is not True:
        return f"{process} is not running: {what}"
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:200] if lines else ""


def _server_errors(stdout: str) -> list[str]:
    """The ServerErrors of a `docker info --format '{{json .}}'` answer (empty for others)."""
    if not stdout.lstrip().startswith("{"):
        return []
    try:
        doc = json.loads(stdout)
    except ValueError:
        return []
    errors = doc.get("ServerErrors") if isinstance(doc, dict) else None
    return [str(e) for e in errors] if isinstance(errors, list) else []


def cli_failure(raw: Mapping[str, Any], *, quiet: bool = False) -> str | None:
    """Why a docker command's answer is no answer, or None. `quiet`: the command prints nothing on
    stderr when it works (the listing pipelines), so anything there is a failure."""
    err = error_of(raw)
    if err:
        return err
    stdout, stderr = str(raw.get("stdout", "")), str(raw.get("stderr", ""))
    if raw.get("rc") != 0:
        said = _first_line(stderr) or _first_line(stdout)
        return f"docker exited {raw.get('rc')}" + (f": {said}" if said else "")
    server = _server_errors(stdout)
    if server:
        return server[0][:200]
    unreachable = [
        line.strip() for line in (stderr + "\n" + stdout).splitlines() if _UNREACHABLE.search(line)
    ]
    if unreachable:
        return unreachable[0][:200]
    if quiet and stderr.strip():
        return f"docker said: {_first_line(stderr)}"
    return None
