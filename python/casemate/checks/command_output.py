"""command_output: the output of a read-only command, as text or as a field of its JSON output.

A command that failed is not an empty answer: a non-zero exit is the verdict `on_error` (error
unless the catalog documents a limit of the host, e.g. not_verifiable for AppArmor in a container).
A command that asks a daemon names it in `daemon`: with that daemon not running the verdict is an
error saying so, and an answer in which the client says it could not reach the daemon is an error
too (checks/dockerd.py), never a value.

Two host facts come from the host readers, never from the command itself: `machine_fact` (what
the command shows belongs to the machine's kernel, so on a container host, or one that cannot tell,
the verdict is not_verifiable) and `only_where: engine` (judged only where the sysctl role's
evidence finds a container engine).

A command that starts a throw-away container to prove confinement (seccomp, gVisor, AppArmor) is a
`proof`: the list names the files its answer depends on beyond the container engine's own state.
The host keeps what a proof observed while it held and reuses it until anything it depends on
changes (roles/host_common/module_utils/casemate_proof.py); the observation says `cached` and
`proved_at`, and is judged like any command's answer; a verdict on a kept one says when it was
observed."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from casemate.checks.argv import ValueType, coerce
from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import MISSING, UNARY, Op, compare, describe, show
from casemate.checks.dockerd import cli_failure, not_running, process_probe
from casemate.checks.pointer import lookup
from casemate.checks.sysctl import ENGINES_PROBE, engine_evidence


class CommandOutputParams(Params):
    cmd: str
    format: Literal["text", "json"] = "text"
    pointer: str = ""
    type: ValueType = "str"
    op: Op
    value: Any = None
    what: str = ""  # how the report names the observed value, e.g. "storage driver"
    on_error: Literal["error", "not_verifiable"] = "error"  # when the command exits non-zero
    daemon: Literal["dockerd"] | None = None  # the daemon the command asks (through its CLI)
    machine_fact: str | None = None  # why a container host cannot show it (the kernel's state)
    only_where: Literal["engine"] | None = None  # only on hosts with a container engine
    proof: tuple[str, ...] | None = None  # a container proof: the files it depends on (above)

    @model_validator(mode="after")
    def _consistent(self) -> CommandOutputParams:
        if self.op not in UNARY and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        if self.pointer and self.format != "json":
            raise ValueError("pointer needs format: json")
        if self.proof is not None and (
            self.format != "text" or self.type != "str" or self.op not in (Op.EQ, Op.REGEX)
        ):
            raise ValueError("a proof is judged as text, with eq or regex (what the host keeps)")
        return self

    def probe(self) -> Probe:
        """The command's observation: a plain command, or a proof the host may keep."""
        if self.proof is None:
            return Probe("cmd", self.cmd)
        keep = str(self.value) if self.op is Op.REGEX else f"^{re.escape(str(self.value))}$"
        spec = {"cmd": self.cmd, "files": sorted(self.proof), "keep": keep}
        return Probe("proof", json.dumps(spec, sort_keys=True))


class CommandOutput:
    name: ClassVar[str] = "command_output"
    params: ClassVar[type[CommandOutputParams]] = CommandOutputParams

    def wants(self, p: CommandOutputParams) -> list[Probe]:
        return (
            [p.probe()]
            + ([process_probe(p.daemon)] if p.daemon else [])
            + ([ENGINES_PROBE] if p.only_where else [])
        )

    def judge(self, p: CommandOutputParams, obs: Observations) -> Verdict:
        probe = p.probe()
        evidence = tuple(q.key for q in self.wants(p))
        label = p.what or (p.pointer.lstrip("/") if p.pointer else "output")
        expected = f"{label} {describe(p.op, p.value)}"
        if p.only_where and (skip := _no_engine(obs, expected, evidence)) is not None:
            return skip
        raw = obs.get(probe)
        err = error_of(raw) or (not_running(obs, p.daemon) if p.daemon else None)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        if p.machine_fact and obs.container:
            said = f"this host is a {obs.container} container: {p.machine_fact}"
            return Verdict(Status.NOT_VERIFIABLE, expected, said, (*evidence, "facts"))
        if raw.get("rc") != 0:
            said = str(raw.get("stderr", "")).strip()[:200]
            err = f"exit {raw.get('rc')}: {said}" if said else f"`{p.cmd}` exited {raw.get('rc')}"
            return Verdict(Status(p.on_error), expected, err, evidence)
        if p.daemon and (err := cli_failure(raw)):
            return Verdict(Status.ERROR, expected, err, evidence)
        stdout = str(raw.get("stdout", ""))
        value: Any = stdout.strip()
        if p.format == "json":
            try:
                value = lookup(json.loads(stdout), p.pointer)
            except ValueError:
                return Verdict(Status.ERROR, expected, f"`{p.cmd}` did not print JSON", evidence)
        if value is not MISSING:
            value = coerce(value, p.type)
        status = Status.PASS if compare(p.op, value, p.value) else Status.FAIL
        said = f"{label} = {show(value)}"
        if raw.get("cached") is True:  # a kept proof: the report says when it was observed
            said = f"kept proof of {raw.get('proved_at') or 'an unknown time'}: {said}"
        return Verdict(status, expected, said, evidence)


def _no_engine(obs: Observations, expected: str, evidence: tuple[str, ...]) -> Verdict | None:
    """not_applicable where no container engine shows (the sysctl role's evidence), else None."""
    raw = obs.get(ENGINES_PROBE)
    if err := error_of(raw):
        return Verdict(Status.ERROR, expected, err, evidence)
    found, _ = engine_evidence(raw, obs.vars)
    if found:
        return None
    return Verdict(
        Status.NOT_APPLICABLE,
        expected,
        "no container engine on this host (evidence: none)",
        (*evidence, "var:group_names", "var:sysctl_engine_host"),
    )
