"""service_state: systemd properties of a unit (ActiveState, UnitFileState, LoadState...).

Properties a container cannot get right whatever is configured (auditd cannot run where the kernel
refuses audit) may be named in `not_in_container`: inside a container they are not judged, and a
unit that passes the rest is not_verifiable with `container_reason`, never pass."""

from __future__ import annotations

from typing import ClassVar

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of


class ServiceStateParams(Params):
    unit: str
    properties: dict[str, str | list[str]]
    not_in_container: tuple[str, ...] = ()  # properties not judged inside a container
    container_reason: str = "it cannot be observed inside a container"


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
        skipped = [k for k in p.not_in_container if k in p.properties] if obs.container else []
        bad = [k for k, v in p.properties.items() if seen[k] not in _wanted(v) and k not in skipped]
        observed = ", ".join(f"{k}={v or '<none>'}" for k, v in seen.items())
        if not bad and skipped:
            return Verdict(
                Status.NOT_VERIFIABLE,
                f"{p.unit}: {expected}",
                f"{observed} ({', '.join(skipped)} not judged: this host is a {obs.container} "
                f"container and {p.container_reason})",
                (probe.key, "facts"),
            )
        return Verdict(
            Status.FAIL if bad else Status.PASS, f"{p.unit}: {expected}", observed, (probe.key,)
        )
