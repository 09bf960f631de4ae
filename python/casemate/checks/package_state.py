"""package_state: a package is installed, or is not, as the host's package manager says."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of


class PackageStateParams(Params):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
    installed: bool


class PackageState:
    name: ClassVar[str] = "package_state"
    params: ClassVar[type[PackageStateParams]] = PackageStateParams

    def wants(self, p: PackageStateParams) -> list[Probe]:
        return [Probe("package", p.name)]

    def judge(self, p: PackageStateParams, obs: Observations) -> Verdict:
        probe = Probe("package", p.name)
        expected = f"{p.name} {'installed' if p.installed else 'not installed'}"
        raw = obs.get(probe)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        installed = raw.get("installed")
        if not isinstance(installed, bool):
            return Verdict(Status.ERROR, expected, "the package state is unknown", (probe.key,))
        version = f" {raw.get('version')}" if installed and raw.get("version") else ""
        observed = (
            f"{p.name}{version} installed ({raw.get('manager')})"
            if installed
            else f"{p.name} not installed ({raw.get('manager')})"
        )
        status = Status.PASS if installed == p.installed else Status.FAIL
        return Verdict(status, expected, observed, (probe.key,))
