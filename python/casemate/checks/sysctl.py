"""sysctl: a kernel parameter as the running kernel reports it.

Inside a container, kernel.*, fs.* and vm.* belong to the whole machine, not to this host: they
are reported not_verifiable, never pass, because the host cannot own them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import Op, compare, describe

MACHINE_WIDE = ("kernel.", "fs.", "vm.", "user.", "abi.", "dev.")


class SysctlParams(Params):
    name: str
    op: Op = Op.EQ
    value: Any


class Sysctl:
    name: ClassVar[str] = "sysctl"
    params: ClassVar[type[SysctlParams]] = SysctlParams

    def wants(self, p: SysctlParams) -> list[Probe]:
        return [Probe("sysctl", p.name)]

    def judge(self, p: SysctlParams, obs: Observations) -> Verdict:
        probe = Probe("sysctl", p.name)
        expected = f"{p.name} {describe(p.op, p.value)}"
        raw = obs.get(probe)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        if not raw.get("exists"):
            return Verdict(
                Status.NOT_APPLICABLE,
                expected,
                f"{p.name} does not exist on this kernel",
                (probe.key,),
            )
        value = " ".join(str(raw.get("value", "")).split())
        if obs.container and p.name.startswith(MACHINE_WIDE):
            return Verdict(
                Status.NOT_VERIFIABLE,
                expected,
                f"{p.name} = {value} (machine-wide setting; this host is a {obs.container} "
                "container and cannot own it)",
                (probe.key, "facts"),
            )
        wanted = " ".join(str(p.value).split())
        status = Status.PASS if compare(p.op, value, wanted) else Status.FAIL
        return Verdict(status, expected, f"{p.name} = {value}", (probe.key,))
