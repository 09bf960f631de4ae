"""container_field: a field of `docker inspect` must satisfy a comparator in every running
container. Report-only: findings name each container and its value; nothing is changed."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from casemate.checks.argv import ValueType, coerce
from casemate.checks.base import Observations, Params, Probe, Status, Verdict
from casemate.checks.compare import MISSING, UNARY, Op, compare, describe, show
from casemate.checks.dockerd import DOCKERD
from casemate.checks.pointer import lookup
from casemate.checks.workloads import CONTAINERS, container_name, inspected, listing


class ContainerFieldParams(Params):
    pointer: str
    what: str
    type: ValueType = "str"
    op: Op
    value: Any = None

    @model_validator(mode="after")
    def _value_given(self) -> ContainerFieldParams:
        if self.op not in UNARY and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        return self


class ContainerField:
    name: ClassVar[str] = "container_field"
    params: ClassVar[type[ContainerFieldParams]] = ContainerFieldParams

    def wants(self, p: ContainerFieldParams) -> list[Probe]:
        return [CONTAINERS, DOCKERD]

    def judge(self, p: ContainerFieldParams, obs: Observations) -> Verdict:
        evidence = (CONTAINERS.key, DOCKERD.key)
        expected = f"every running container: {p.what} {describe(p.op, p.value)}"
        containers, err = inspected(obs, CONTAINERS)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        if not containers:
            return Verdict(Status.NOT_APPLICABLE, expected, "no running containers", evidence)
        bad = []
        for c in containers:
            value = lookup(c, p.pointer)
            value = value if value is MISSING or value is None else coerce(value, p.type)
            if not compare(p.op, MISSING if value is None else value, p.value):
                bad.append(f"{container_name(c)} {p.what}={show(value)}")
        if bad:
            return Verdict(
                Status.FAIL, expected, listing(bad, len(containers), "containers"), evidence
            )
        return Verdict(Status.PASS, expected, f"all {len(containers)} running containers", evidence)
