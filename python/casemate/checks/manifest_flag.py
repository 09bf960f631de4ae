"""manifest_flag: a flag of a Kubernetes static pod (kubeadm's control plane and etcd).

The flag is read from the container's `command` + `args` in the manifest the kubelet runs. Where the
component's process runs on the host (in any PID namespace: static pods run in containers), its
live command line is read too and must agree, so a manifest edited but not yet picked up does not
pass. Where no such process runs, the verdict says that it was judged from the manifest alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from casemate.checks.argv import ValueType, coerce, setting_from_flags
from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import MISSING, UNARY, Op, compare, describe, show
from casemate.checks.doc_field import parsed


class ManifestFlagParams(Params):
    manifest: str
    flags: list[str]
    container: str | None = None  # default: the pod's first container
    process: str | None = None  # the component's process name, for the live check
    type: ValueType = "str"
    unset: Any = None  # the component's built-in default when the flag is absent
    op: Op
    value: Any = None
    missing: Literal["not_applicable", "fail"] = "fail"

    @model_validator(mode="after")
    def _consistent(self) -> ManifestFlagParams:
        if self.op not in UNARY and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        if not self.flags:
            raise ValueError("flags: give at least one flag name")
        return self


def pod_argv(doc: Any, container: str | None) -> list[str] | str:
    """The container's command + args, or a reason why there is none."""
    if not isinstance(doc, Mapping) or doc.get("kind") != "Pod":
        return "not a Pod manifest"
    spec = doc.get("spec")
    containers = spec.get("containers") if isinstance(spec, Mapping) else None
    if not isinstance(containers, list) or not containers:
        return "the pod has no containers"
    chosen = next(
        (c for c in containers if isinstance(c, Mapping) and c.get("name") == container),
        None if container else containers[0],
    )
    if not isinstance(chosen, Mapping):
        return f"no container named {container}"
    parts: list[Any] = [*(chosen.get("command") or []), *(chosen.get("args") or [])]
    if not all(isinstance(p, str) for p in parts):
        return "command/args are not a list of strings"
    return [str(p) for p in parts]


def _value(argv: Sequence[str], p: ManifestFlagParams) -> tuple[Any, str]:
    value = setting_from_flags(argv, p.flags, p.type)
    if value is MISSING and p.unset is not None:
        return coerce(p.unset, p.type), "default"
    return value, "flag"


class ManifestFlag:
    name: ClassVar[str] = "manifest_flag"
    params: ClassVar[type[ManifestFlagParams]] = ManifestFlagParams

    def wants(self, p: ManifestFlagParams) -> list[Probe]:
        probes = [Probe("read", p.manifest)]
        if p.process:
            probes.append(Probe("proc_any", p.process))
        return probes

    def judge(self, p: ManifestFlagParams, obs: Observations) -> Verdict:
        evidence = tuple(probe.key for probe in self.wants(p))
        expected = f"{p.flags[0]} {describe(p.op, p.value)}"
        raw = obs.get(Probe("read", p.manifest))
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        if not raw.get("exists"):
            status = Status.NOT_APPLICABLE if p.missing == "not_applicable" else Status.FAIL
            return Verdict(status, expected, f"{p.manifest} does not exist", evidence)
        try:
            argv = pod_argv(parsed(obs, str(raw.get("content", "")), "yaml"), p.container)
        except ValueError as exc:
            return Verdict(Status.ERROR, expected, f"{p.manifest} does not parse: {exc}", evidence)
        if isinstance(argv, str):
            return Verdict(Status.ERROR, expected, f"{p.manifest}: {argv}", evidence)
        value, source = _value(argv, p)
        ok = compare(p.op, value, p.value)
        seen = f"{show(value)} (from {'manifest' if source == 'flag' else 'default'})"
        if not p.process:
            return Verdict(Status.PASS if ok else Status.FAIL, expected, seen, evidence)
        proc = obs.get(Probe("proc_any", p.process))
        if error_of(proc):
            return Verdict(Status.ERROR, expected, f"{seen}; {error_of(proc)}", evidence)
        if not proc.get("running"):
            seen = seen[:-1] + f"; no {p.process} process runs here)"
            return Verdict(Status.PASS if ok else Status.FAIL, expected, seen, evidence)
        live, live_source = _value([str(a) for a in proc.get("argv", [])], p)
        live_ok = compare(p.op, live, p.value)
        shown = f"{show(live)} (from the running {p.process}'s {live_source})"
        if live_ok and not ok:
            return Verdict(
                Status.FAIL, expected, f"{shown}, but the manifest says {seen}", evidence
            )
        if ok and not live_ok:
            return Verdict(Status.FAIL, expected, f"{seen}, but not in effect: {shown}", evidence)
        return Verdict(Status.PASS if ok else Status.FAIL, expected, shown, evidence)
