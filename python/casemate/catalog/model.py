"""The control catalog's data model. A control is described here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from casemate.checks.base import Check

Group = Literal["docker_hosts", "k8s_control_plane", "k8s_workers", "etcd"]
GROUPS: tuple[Group, ...] = ("docker_hosts", "k8s_control_plane", "k8s_workers", "etcd")
# How a host is run. `standard`: it keeps SSH, hardened. `immutable`: nobody logs in; SSH is off and
# the host is reached through a break-glass path (console, serial, a Docker or SSM connection).
Profile = Literal["standard", "immutable"]
PROFILES: tuple[Profile, ...] = ("standard", "immutable")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ConditionSpec(_Strict):
    """A check as the catalog writes it: a kind and that kind's parameters."""

    kind: str
    params: dict[str, Any] = Field(default_factory=dict)


class CheckSpec(ConditionSpec):
    # A precondition, any check kind with its parameters: when it is seen not to hold, the control
    # does not concern the host (not_applicable), e.g. swarm settings on a host without a swarm.
    only_if: ConditionSpec | None = None


class Remediation(_Strict):
    role: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    vars: list[str] = Field(default_factory=list)
    # Other roles that do part of the fix and carry the id as their tag too, e.g. the seccomp role
    # deploys the profile docker_daemon makes the daemon default.
    also: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(default_factory=list)
    # The role can fix it, but only when a site sets its variable: the fix risks availability on
    # some clusters (e.g. anonymous health probes). By default the role leaves it as it is, and
    # `manual:` says what to weigh before opting in.
    opt_in: bool = False


class Control(_Strict):
    id: str = Field(pattern=r"^(cis|cm)_[a-z0-9]+(_[0-9]+)+$")
    title: str = Field(min_length=8, max_length=100)
    description: str = Field(min_length=20)
    level: Literal[1, 2]
    automated: bool
    applies_to: list[Group] = Field(min_length=1)
    remediation: Remediation | None = None
    manual: str | None = Field(default=None, min_length=20)
    check: CheckSpec | None = None
    # Judged per workload (container, image) and never remediated: casemate does not change
    # running workloads, it reports each finding with the workload's name.
    report_only: bool = False
    # The profiles the control belongs to; none given means every profile (most controls).
    profiles: list[Profile] = Field(default_factory=lambda: list(PROFILES), min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Control:
        if self.automated and self.check is None:
            raise ValueError("an automated control needs a check")
        if self.report_only and (not self.automated or self.remediation is not None):
            raise ValueError("a report-only control is automated and has no remediation")
        if (not self.automated or self.remediation is None) and not (
            self.manual or self.report_only
        ):
            raise ValueError("a control that is not both checked and remediated needs `manual:`")
        if self.remediation is not None and self.remediation.opt_in and not self.manual:
            raise ValueError("an opt-in remediation needs `manual:` (what to weigh first)")
        return self

    @property
    def mode(self) -> str:
        """automated (checked and remediated), opt-in (checked; remediated when a site asks),
        check-only, report-only, or manual."""
        if not self.automated:
            return "manual"
        if self.report_only:
            return "report-only"
        if self.remediation is None:
            return "check-only"
        return "opt-in" if self.remediation.opt_in else "automated"


class CatalogFile(_Strict):
    # cis-*: the CIS benchmarks; casemate-*: casemate's own controls (ids cm_*), for what the CIS
    # benchmarks leave out (a sandboxed runtime, the host baseline).
    benchmark: Literal["cis-docker", "cis-kubernetes", "casemate-runtime", "casemate-host"]
    version: str = Field(pattern=r"^\d+\.\d+(\.\d+)?$")
    title: str
    id_prefix: str = Field(pattern=r"^(cis|cm)_[a-z0-9]+_$")
    controls: list[Control] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Entry:
    """A loaded control together with the benchmark it belongs to."""

    control: Control
    check: Check | None  # control.check, bound to its kind with its parameters validated
    benchmark: str
    benchmark_version: str
    benchmark_title: str
    id_prefix: str
    source: str

    @property
    def id(self) -> str:
        return self.control.id

    @property
    def ref(self) -> str:
        """The benchmark's own number, derived from the id: cis_docker_2_2 -> 2.2."""
        return self.control.id.removeprefix(self.id_prefix).replace("_", ".")

    @property
    def section(self) -> str:
        return self.ref.split(".", 1)[0]
