"""Build the one remote command that gathers every wanted fact, run it, and parse its answer."""

from __future__ import annotations

import base64
import json
import shlex
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from casemate.checks.base import Observations, Probe
from casemate.locations import package_file
from casemate.readers import LIBRARY, library_path, without_library_imports


class CommandResult(Protocol):
    @property
    def rc(self) -> int: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...


class Transport(Protocol):
    """Runs one shell command on a host (a testinfra Host satisfies this)."""

    def run(self, command: str) -> CommandResult: ...


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    observations: Observations | None
    raw: dict[str, Any]  # the probe's whole answer: kept as evidence
    error: str | None = None


REQUEST_MARKER = "REQUEST = []"
OPTIONS_MARKER = "OPTIONS = {}"


def probe_script() -> str:
    """The probe as a host runs it: the host-reader library the roles import (readers.LIBRARY), then
    probe/remote.py, as one script in one namespace; their library import lines are dropped."""
    parts = [library_path(name).read_text(encoding="utf-8") for name in LIBRARY]
    parts.append(package_file("probe", "remote.py").read_text(encoding="utf-8"))
    script = "\n\n".join(without_library_imports(part) for part in parts)
    if script.count(REQUEST_MARKER) != 1 or script.count(OPTIONS_MARKER) != 1:
        raise RuntimeError("the probe script must hold its REQUEST and OPTIONS markers once")
    return script


def remote_source(probes: Iterable[Probe], *, fresh_proofs: bool = False) -> str:
    """The probe script with its request filled in. `fresh_proofs`: run every container proof
    anew instead of reusing a kept one (casemate_proof.py)."""
    request = [[p.kind, p.arg] for p in sorted(set(probes))]
    options = {"fresh_proofs": True} if fresh_proofs else {}
    return (
        probe_script()
        .replace(REQUEST_MARKER, f"REQUEST = {json.dumps(request)}", 1)
        .replace(OPTIONS_MARKER, f"OPTIONS = {options!r}", 1)  # a Python literal (True)
    )


def remote_command(
    probes: Iterable[Probe], interpreter: str = "python3", *, fresh_proofs: bool = False
) -> str:
    """One shell command: the compressed script travels inside it, so nothing is copied first."""
    source = remote_source(probes, fresh_proofs=fresh_proofs)
    # level 6: within 0.5 % of level 9's size for half its CPU (on every verify, per host kind)
    packed = base64.b64encode(zlib.compress(source.encode(), 6)).decode()
    bootstrap = f"import base64,zlib;exec(zlib.decompress(base64.b64decode('{packed}')))"
    return f"{shlex.quote(interpreter)} -c {shlex.quote(bootstrap)}"


def parse_answer(host: str, stdout: str) -> tuple[Observations, dict[str, Any]]:
    """Turn the probe's JSON answer into Observations. Raises ValueError on a bad answer."""
    start = stdout.find("{")
    if start < 0:
        raise ValueError("the probe printed no JSON")
    raw = json.loads(stdout[start:])
    if not isinstance(raw, dict) or raw.get("probe") != 1 or not isinstance(raw.get("data"), dict):
        raise ValueError("the probe's answer is not a casemate probe document")
    return Observations(host=host, facts=raw.get("facts", {}), data=raw["data"]), raw


def collect(
    host: str,
    transport: Transport,
    probes: Iterable[Probe],
    interpreter: str = "python3",
    *,
    command: str | None = None,
) -> ProbeOutcome:
    """Run the probe once on `host`. Connection problems come back as `error`, never raised.
    `command`: remote_command(probes, interpreter), when the caller has it already (hosts of one
    kind share it)."""
    command = command or remote_command(probes, interpreter)
    try:
        result = transport.run(command)
    except Exception as exc:  # testinfra backends raise many kinds; all mean "could not probe"
        return ProbeOutcome(None, {}, f"cannot reach {host}: {_one_line(str(exc))}")
    if result.rc != 0:
        why = _one_line(result.stderr) or f"exit status {result.rc}"
        return ProbeOutcome(
            None,
            {"rc": result.rc, "stderr": result.stderr[-2000:]},
            f"probe failed on {host}: {why}",
        )
    try:
        observations, raw = parse_answer(host, result.stdout)
    except ValueError as exc:
        return ProbeOutcome(
            None, {"stdout": result.stdout[-2000:]}, f"probe answer from {host}: {exc}"
        )
    return ProbeOutcome(observations, raw)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
