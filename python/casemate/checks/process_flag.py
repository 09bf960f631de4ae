"""process_flag: a flag on the command line of a running process."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import model_validator

from casemate.checks.argv import ValueType, coerce, setting_from_flags
from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import MISSING, UNARY, Op, compare, describe, show


class ProcessFlagParams(Params):
    process: str
    flags: list[str]
    type: ValueType = "str"
    unset: Any = None
    op: Op
    value: Any = None
    not_running: Literal["not_verifiable", "not_applicable", "fail"] = "not_verifiable"
    # look in every PID namespace (a component in a container, e.g. kube-proxy), not only the
    # host's own (which keeps a Docker host's view free of its containers' daemons)
    any_namespace: bool = False

    @model_validator(mode="after")
    def _value_given(self) -> ProcessFlagParams:
        if self.op not in UNARY and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        if not self.flags:
            raise ValueError("flags: give at least one flag name")
        return self


class ProcessFlag:
    name: ClassVar[str] = "process_flag"
    params: ClassVar[type[ProcessFlagParams]] = ProcessFlagParams

    def wants(self, p: ProcessFlagParams) -> list[Probe]:
        return [Probe("proc_any" if p.any_namespace else "proc", p.process)]

    def judge(self, p: ProcessFlagParams, obs: Observations) -> Verdict:
        probe = self.wants(p)[0]
        expected = f"{p.process} {p.flags[0]} {describe(p.op, p.value)}"
        raw = obs.get(probe)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        if not raw.get("running"):
            return Verdict(
                Status(p.not_running), expected, f"{p.process} is not running", (probe.key,)
            )
        value = setting_from_flags(raw.get("argv", []), p.flags, p.type)
        source = "flag"
        if value is MISSING and p.unset is not None:
            value, source = coerce(p.unset, p.type), "default"
        status = Status.PASS if compare(p.op, value, p.value) else Status.FAIL
        return Verdict(status, expected, f"{show(value)} (from {source})", (probe.key,))
