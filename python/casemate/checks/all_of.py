"""all_of: several checks that must all hold, judged as one control (e.g. a certificate flag and
its key flag, or a flag in a manifest and the live behaviour it should cause)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from casemate.checks.base import CheckKind, Observations, Params, Probe, Status, Verdict

# The combined status is the first of these that any part has; not_applicable only when all are.
_ORDER = (Status.ERROR, Status.FAIL, Status.NOT_VERIFIABLE, Status.MANUAL, Status.PASS)


class Part(Params):
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)


def _kinds() -> Mapping[str, CheckKind[Any]]:
    from casemate.checks import builtin_kinds  # noqa: PLC0415 - the registry imports this module

    return builtin_kinds()


class AllOfParams(Params):
    checks: list[Part] = Field(min_length=2)
    # each part bound to its kind with its parameters validated, once, when these are validated
    _parts: tuple[tuple[CheckKind[Any], Params], ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _parts_valid(self) -> AllOfParams:
        kinds = _kinds()
        parts: list[tuple[CheckKind[Any], Params]] = []
        for i, part in enumerate(self.checks):
            kind = kinds.get(part.kind)
            if kind is None or part.kind == "all_of":
                raise ValueError(f"checks.{i}.kind: unknown or nested kind '{part.kind}'")
            try:
                parts.append((kind, kind.params.model_validate(part.params)))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(x) for x in first["loc"])
                raise ValueError(f"checks.{i}.params.{where}: {first['msg']}") from None
        self._parts = tuple(parts)
        return self

    def parts(self) -> tuple[tuple[CheckKind[Any], Params], ...]:
        return self._parts


class AllOf:
    name: ClassVar[str] = "all_of"
    params: ClassVar[type[AllOfParams]] = AllOfParams

    def wants(self, p: AllOfParams) -> list[Probe]:
        return [probe for kind, params in p.parts() for probe in kind.wants(params)]

    def judge(self, p: AllOfParams, obs: Observations) -> Verdict:
        verdicts = [kind.judge(params, obs) for kind, params in p.parts()]
        statuses = {v.status for v in verdicts}
        status = next((s for s in _ORDER if s in statuses), Status.NOT_APPLICABLE)
        shown = (
            [v for v in verdicts if v.status is status] if status is not Status.PASS else verdicts
        )
        evidence = tuple(dict.fromkeys(k for v in verdicts for k in v.evidence))
        return Verdict(
            status,
            " and ".join(v.expected for v in verdicts),
            "; ".join(v.observed for v in shown),
            evidence,
        )
