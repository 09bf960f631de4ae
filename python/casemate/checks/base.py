"""The check-kind interface: what a kind asks the probe for, and how it judges the answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    MANUAL = "manual"
    NOT_APPLICABLE = "not_applicable"
    NOT_VERIFIABLE = "not_verifiable"
    # Never a check's verdict: a waiver in force covers the control (casemate.waivers.apply); the
    # check's own verdict is kept beside it.
    WAIVED = "waived"


@dataclass(frozen=True, slots=True, order=True)
class Probe:
    """One fact to collect on a host. `kind` names a collector of the remote probe script."""

    kind: str
    arg: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.arg}"


@dataclass(frozen=True, slots=True)
class Observations:
    """Everything the probe collected on one host, keyed by `Probe.key`, plus host facts."""

    host: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)  # the host's inventory variables
    # the host's documents as parsed, by (format, text): dozens of checks read the same static pod
    # manifests and kubelet config; each is parsed once per host (doc_field.parsed), not per check
    documents: dict[tuple[str, str], tuple[Any, str | None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def get(self, probe: Probe) -> Mapping[str, Any]:
        value = self.data.get(probe.key)
        if value is None:
            return {"error": f"the probe returned nothing for {probe.key}"}
        if not isinstance(value, Mapping):
            return {"error": f"malformed observation for {probe.key}"}
        return value

    @property
    def container(self) -> str:
        """The container technology this host runs in ('' when it is not a container)."""
        return str(self.facts.get("container", ""))


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status
    expected: str
    observed: str
    evidence: tuple[str, ...] = ()


class Params(BaseModel):
    """Base for every kind's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


P = TypeVar("P", bound=Params)
P_contra = TypeVar("P_contra", bound=Params, contravariant=True)


class CheckKind(Protocol[P_contra]):
    """A generic way to judge a control. Collecting (`wants`) is split from judging (`judge`)."""

    name: ClassVar[str]

    @property
    def params(self) -> type[Params]:
        """The pydantic model of this kind's catalog parameters (a class attribute in kinds)."""
        ...

    def wants(self, p: P_contra) -> list[Probe]: ...

    def judge(self, p: P_contra, obs: Observations) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class Check:
    """A catalog check bound to its kind, its parameters validated once, when the catalog is
    loaded: judging a host never validates them again. `only_if` is a precondition, itself any
    check: when it is seen not to hold, the control does not concern the host."""

    kind: CheckKind[Any]
    params: Params
    only_if: Check | None = None

    def wants(self) -> list[Probe]:
        """What the check itself asks the probe for (its precondition not included)."""
        return self.kind.wants(self.params)

    def probes(self) -> list[Probe]:
        """Everything to collect for this check: its own wants and its precondition's."""
        return self.wants() + (self.only_if.probes() if self.only_if is not None else [])

    def judge(self, obs: Observations) -> Verdict:
        return self.kind.judge(self.params, obs)


def error_of(raw: Mapping[str, Any]) -> str | None:
    """The collector's error message, if it reported one."""
    err = raw.get("error")
    return str(err) if err else None
