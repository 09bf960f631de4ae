"""services_off: systemd units a host does not need are neither enabled nor running. A unit that is
not installed is fine; one that is installed must be disabled (or masked) and inactive."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of

# UnitFileState values that start a unit at boot (or make it an alias of one that does)
ENABLED = frozenset({"enabled", "enabled-runtime", "linked", "linked-runtime", "alias"})
RUNNING = frozenset({"active", "activating", "reloading", "refreshing"})


class ServicesOffParams(Params):
    units: list[str] = Field(min_length=1)


def unit_name(unit: str) -> str:
    return unit if "." in unit else f"{unit}.service"


class ServicesOff:
    name: ClassVar[str] = "services_off"
    params: ClassVar[type[ServicesOffParams]] = ServicesOffParams

    def wants(self, p: ServicesOffParams) -> list[Probe]:
        return [Probe("unit", unit_name(u)) for u in p.units]

    def judge(self, p: ServicesOffParams, obs: Observations) -> Verdict:
        probes = self.wants(p)
        evidence = tuple(probe.key for probe in probes)
        expected = "disabled and inactive where installed: " + ", ".join(
            unit_name(u) for u in p.units
        )
        bad, off, absent = [], [], []
        for probe in probes:
            raw = obs.get(probe)
            err = error_of(raw)
            if err:
                return Verdict(Status.ERROR, expected, err, evidence)
            props = raw.get("properties", {})
            if props.get("LoadState") in ("not-found", ""):
                absent.append(probe.arg)
                continue
            state = f"{probe.arg} {props.get('UnitFileState') or '-'}, {props.get('ActiveState')}"
            if props.get("UnitFileState") in ENABLED or props.get("ActiveState") in RUNNING:
                bad.append(state)
            else:
                off.append(state)
        if bad:
            return Verdict(Status.FAIL, expected, "; ".join(bad), evidence)
        shown = [*off, f"not installed: {', '.join(absent)}" if absent else ""]
        return Verdict(Status.PASS, expected, "; ".join(s for s in shown if s), evidence)
