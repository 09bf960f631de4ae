"""daemon_json_key: a Docker daemon setting, read where it takes effect.

The value comes from the dockerd flag if one is given, else the daemon.json key, else the daemon's
built-in default (`unset`). With `runtime`, the running daemon must also report the value (e.g. in
`docker info`), so a file changed without a restart does not pass. With the daemon not running the
verdict is an error (checks/dockerd.py): daemon.json alone is not what it would run with.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import model_validator

from casemate.checks.argv import ValueType, coerce
from casemate.checks.base import Observations, Params, Probe, Status, Verdict
from casemate.checks.compare import MISSING, UNARY, Op, compare, describe, show
from casemate.checks.daemon_view import daemon_probes, daemon_view
from casemate.checks.dockerd import cli_failure
from casemate.checks.pointer import lookup


class Runtime(Params):
    cmd: str
    pointer: str


class DaemonJsonKeyParams(Params):
    key: str
    flags: tuple[str, ...] = ()
    type: ValueType = "str"
    unset: Any = None  # the daemon's own default when nothing sets the key; None: no default
    op: Op
    value: Any = None
    runtime: Runtime | None = None
    config: str = "/etc/docker/daemon.json"
    process: str = "dockerd"

    @model_validator(mode="after")
    def _value_given(self) -> DaemonJsonKeyParams:
        if self.op not in UNARY and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        return self


class DaemonJsonKey:
    name: ClassVar[str] = "daemon_json_key"
    params: ClassVar[type[DaemonJsonKeyParams]] = DaemonJsonKeyParams

    def wants(self, p: DaemonJsonKeyParams) -> list[Probe]:
        probes = daemon_probes(p.config, p.process)
        if p.runtime is not None:
            probes.append(Probe("cmd", p.runtime.cmd))
        return probes

    def judge(self, p: DaemonJsonKeyParams, obs: Observations) -> Verdict:
        evidence = tuple(probe.key for probe in self.wants(p))
        expected = f"{p.key} {describe(p.op, p.value)}"
        view = daemon_view(obs, p.config, p.process)
        if view.error:
            return Verdict(Status.ERROR, expected, view.error, evidence)
        value, source = view.setting(p.key, p.flags, p.type)
        if value is MISSING and p.unset is not None:
            value, source = coerce(p.unset, p.type), "default"
        observed = f"{show(value)} (from {source})" if source != "unset" else "<unset>"
        if not compare(p.op, value, p.value):
            return Verdict(Status.FAIL, expected, observed, evidence)
        if p.runtime is None:
            return Verdict(Status.PASS, expected, observed, evidence)
        return self._judge_runtime(p, obs, expected, observed, evidence)

    def _judge_runtime(
        self,
        p: DaemonJsonKeyParams,
        obs: Observations,
        expected: str,
        observed: str,
        evidence: tuple[str, ...],
    ) -> Verdict:
        assert p.runtime is not None
        why = cli_failure(obs.get(Probe("cmd", p.runtime.cmd)))
        if why:
            return Verdict(
                Status.ERROR, expected, f"{observed}; runtime check failed: {why}", evidence
            )
        raw = obs.get(Probe("cmd", p.runtime.cmd))
        live = _runtime_value(str(raw.get("stdout", "")), p.runtime.pointer, p.type)
        if live is MISSING:
            return Verdict(
                Status.PASS, expected, f"{observed}; not reported by the daemon", evidence
            )
        observed += f"; running daemon: {show(live)}"
        status = Status.PASS if compare(p.op, live, p.value) else Status.FAIL
        if status is Status.FAIL:
            observed += " (configured but not in effect: restart pending?)"
        return Verdict(status, expected, observed, evidence)


def _runtime_value(stdout: str, pointer: str, value_type: ValueType) -> Any:
    try:
        doc = json.loads(stdout)
    except ValueError:
        return MISSING
    found = lookup(doc, pointer)
    return found if found is MISSING else coerce(found, value_type)
