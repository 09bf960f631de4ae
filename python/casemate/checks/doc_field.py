"""doc_field: a field of a YAML, JSON or TOML document on the host (manifests, kubelet config,
containerd config...)."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from casemate.checks.argv import ValueType, coerce
from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import MISSING, UNARY, Op, compare, describe, show
from casemate.checks.pointer import lookup


class DocFieldParams(Params):
    path: str
    format: Literal["yaml", "json", "toml"] = "yaml"
    pointer: str
    type: ValueType = "str"
    unset: Any = None
    op: Op
    value: Any = None
    missing: Literal["not_applicable", "fail"] = "fail"

    @model_validator(mode="after")
    def _value_given(self) -> DocFieldParams:
        if self.op not in UNARY and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        return self


def parse(text: str, fmt: str) -> Any:
    """Parse a document; raises ValueError with a short reason."""
    if fmt == "json":
        return json.loads(text)
    if fmt == "toml":
        import tomllib  # noqa: PLC0415 - only a host's TOML document needs it

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(str(exc)) from None
    import yaml  # noqa: PLC0415 - commands that judge no host skip the import

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(getattr(exc, "problem", "not valid YAML"))) from None


def parsed(obs: Observations, text: str, fmt: str) -> Any:
    """parse(text, fmt) of one of the host's documents, parsed once per host and text (kept in
    `obs.documents`; a document that does not parse keeps its reason). Callers only read what it
    returns: the same objects go to every check that reads the document."""
    key = (fmt, text)
    if key not in obs.documents:
        try:
            obs.documents[key] = (parse(text, fmt), None)
        except ValueError as exc:
            obs.documents[key] = (None, str(exc))
    doc, why = obs.documents[key]
    if why is not None:
        raise ValueError(why)
    return doc


class DocField:
    name: ClassVar[str] = "doc_field"
    params: ClassVar[type[DocFieldParams]] = DocFieldParams

    def wants(self, p: DocFieldParams) -> list[Probe]:
        return [Probe("read", p.path)]

    def judge(self, p: DocFieldParams, obs: Observations) -> Verdict:
        probe = Probe("read", p.path)
        expected = f"{p.path} {p.pointer} {describe(p.op, p.value)}"
        raw = obs.get(probe)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        if not raw.get("exists"):
            status = Status.NOT_APPLICABLE if p.missing == "not_applicable" else Status.FAIL
            return Verdict(status, expected, f"{p.path} does not exist", (probe.key,))
        try:
            doc = parsed(obs, str(raw.get("content", "")), p.format)
        except ValueError as exc:
            return Verdict(Status.ERROR, expected, f"{p.path} does not parse: {exc}", (probe.key,))
        value = lookup(doc, p.pointer)
        source = "document"
        if value is MISSING and p.unset is not None:
            value, source = p.unset, "default"
        if value is not MISSING:
            value = coerce(value, p.type)
        status = Status.PASS if compare(p.op, value, p.value) else Status.FAIL
        return Verdict(status, expected, f"{show(value)} (from {source})", (probe.key,))
