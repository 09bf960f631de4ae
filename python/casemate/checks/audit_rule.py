"""audit_rule: a path is watched by an audit rule, in the persistent rule files AND in the rules
the kernel has loaded. Where the loaded rules cannot be read (a container: the kernel refuses audit
there) the verdict is not_verifiable, carrying what the rule files say; never pass."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import model_validator

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of

RULE_FILES = Probe("cmd", "cat /etc/audit/rules.d/*.rules 2>/dev/null; true")
LOADED = Probe("cmd", "auditctl -l 2>&1")


class AuditRuleParams(Params):
    path: str | None = None
    unit: str | None = None  # watch the unit's file (where systemd says it is)
    command: str | None = None  # watch the binary found on PATH
    key: str = "docker"

    @model_validator(mode="after")
    def _one_target(self) -> AuditRuleParams:
        if sum(x is not None for x in (self.path, self.unit, self.command)) != 1:
            raise ValueError("give exactly one of path, unit, command")
        return self


def _target_probe(p: AuditRuleParams) -> Probe:
    if p.path is not None:
        return Probe("stat", p.path)
    if p.unit is not None:
        return Probe("unit", p.unit)
    return Probe("cmd", f"command -v {p.command}")


def _resolve(p: AuditRuleParams, obs: Observations) -> tuple[str | None, str | None]:
    """(path to watch or None when it does not exist here, error)."""
    raw = obs.get(_target_probe(p))
    if error_of(raw):
        return None, error_of(raw)
    if p.path is not None:
        return (p.path if raw.get("exists") else None), None
    if p.unit is not None:
        frag = raw.get("fragment") or {}
        return (str(frag.get("path")) if frag.get("exists") else None), None
    out = str(raw.get("stdout", "")).strip()
    return (out.splitlines()[0] if raw.get("rc") == 0 and out else None), None


def watched(rules: str, path: str) -> bool:
    """Whether a watch rule (-w PATH, or -F path=/dir=PATH) covers exactly `path`."""
    quoted = re.escape(path)
    return bool(
        re.search(rf"(?m)^\s*-w\s+{quoted}(\s|$)", rules)
        or re.search(rf"(?m)^\s*-a\s.*-F\s+(path|dir)={quoted}(\s|$)", rules)
    )


class AuditRule:
    name: ClassVar[str] = "audit_rule"
    params: ClassVar[type[AuditRuleParams]] = AuditRuleParams

    def wants(self, p: AuditRuleParams) -> list[Probe]:
        return [_target_probe(p), RULE_FILES, LOADED]

    def judge(self, p: AuditRuleParams, obs: Observations) -> Verdict:
        evidence = (_target_probe(p).key, RULE_FILES.key, LOADED.key)
        what = p.path or (f"the unit file of {p.unit}" if p.unit else str(p.command))
        expected = f"{what} watched by a loaded audit rule (key {p.key})"
        path, err = _resolve(p, obs)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        if path is None:
            return Verdict(Status.NOT_APPLICABLE, expected, f"{what} does not exist here", evidence)
        files = obs.get(RULE_FILES)
        if error_of(files):
            return Verdict(Status.ERROR, expected, str(error_of(files)), evidence)
        if not watched(str(files.get("stdout", "")), path):
            return Verdict(
                Status.FAIL, expected, f"no rule for {path} in /etc/audit/rules.d", evidence
            )
        if obs.container:
            return Verdict(
                Status.NOT_VERIFIABLE,
                expected,
                f"rule for {path} in /etc/audit/rules.d; the loaded rules cannot be read: "
                f"this host is a {obs.container} container and the kernel refuses audit there",
                evidence,
            )
        loaded = obs.get(LOADED)
        text = str(loaded.get("stdout", ""))
        if error_of(loaded) or loaded.get("rc") != 0:
            said = text.strip().splitlines()[-1] if text.strip() else "auditctl failed"
            return Verdict(
                Status.FAIL, expected, f"rule file has {path}, but auditctl: {said}", evidence
            )
        if not watched(text, path):
            return Verdict(
                Status.FAIL, expected, f"{path} is in the rule files but not loaded", evidence
            )
        return Verdict(Status.PASS, expected, f"{path} watched (loaded)", evidence)
