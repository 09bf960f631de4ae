"""service_state: systemd properties of a unit (ActiveState, UnitFileState, LoadState...)."""

from __future__ import annotations

from typing import ClassVar

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of


class ServiceStateParams(Params):
    unit: str
    properties: dict[str, str | list[str]]


def _wanted(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


class ServiceState:
    name: ClassVar[str] = "service_state"
    params: ClassVar[type[ServiceStateParams]] = ServiceStateParams

    def wants(self, p: ServiceStateParams) -> list[Probe]:
        return [Probe("unit", p.unit)]

    def judge(self, p: ServiceStateParams, obs: Observations) -> Verdict:
        probe = Probe("unit", p.unit)
        expected = ", ".join(f"{k}={'|'.join(_wanted(v))}" for k, v in p.properties.items())
        raw = obs.get(probe)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        props = raw.get("properties", {})
        seen = {k: str(props.get(k, "")) for k in p.properties}
        bad = [k for k, v in p.properties.items() if seen[k] not in _wanted(v)]
        observed = ", ".join(f"{k}={v or '<none>'}" for k, v in seen.items())
        return Verdict(
            Status.FAIL if bad else Status.PASS, f"{p.unit}: {expected}", observed, (probe.key,)
        )
