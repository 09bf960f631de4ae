"""audit_rule: a path is watched by an audit rule, in the persistent rule files AND in the rules
the kernel has loaded. Both are read by the auditd_rules role's own reader (readers.audit_watched:
roles/host_common/module_utils/casemate_audit.py), so verify judges a rule as the role wrote it.
Where the loaded rules cannot be read (a container: the kernel refuses audit there) the verdict is
not_verifiable, carrying what the rule files say; never pass."""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.readers import audit_permissions, audit_watched

RULE_FILES = Probe("read_glob", "/etc/audit/rules.d/*.rules")  # what augenrules loads at boot
LOADED = Probe("cmd", "auditctl -l 2>&1")


class AuditRuleParams(Params):
    path: str | None = None
    unit: str | None = None  # watch the unit's file (where systemd says it is)
    command: str | None = None  # watch the binary found on PATH
    key: str = "docker"  # the key casemate's rules carry (shown; any key counts)
    permissions: str | None = None  # what the rule must watch, e.g. "wa" (None: any watch)

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
    said = str(raw.get("stderr", "")).strip()
    if raw.get("rc") != 0 and said:  # `command -v` says nothing when it only finds nothing
        return None, f"command -v {p.command} exited {raw.get('rc')}: {said[:200]}"
    return (out.splitlines()[0] if raw.get("rc") == 0 and out else None), None


def _lacking(rules: str, path: str, permissions: str | None) -> str:
    """Why no rule in `rules` is good enough for `path` (for the verdict)."""
    perms = audit_permissions(rules, path)
    if perms and permissions:
        return f"watched with -p {'/'.join(perms)}, not -p {permissions}"
    return "not watched"


class AuditRule:
    name: ClassVar[str] = "audit_rule"
    params: ClassVar[type[AuditRuleParams]] = AuditRuleParams

    def wants(self, p: AuditRuleParams) -> list[Probe]:
        return [_target_probe(p), RULE_FILES, LOADED]

    def judge(self, p: AuditRuleParams, obs: Observations) -> Verdict:
        evidence = (_target_probe(p).key, RULE_FILES.key, LOADED.key)
        what = p.path or (f"the unit file of {p.unit}" if p.unit else str(p.command))
        perms = f" -p {p.permissions}" if p.permissions else ""
        expected = f"{what} watched{perms} by a loaded audit rule (key {p.key})"
        path, err = _resolve(p, obs)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        if path is None:
            return Verdict(Status.NOT_APPLICABLE, expected, f"{what} does not exist here", evidence)
        files = obs.get(RULE_FILES)
        err = error_of(files) or next(
            (error_of(f) for f in files.get("files") or [] if error_of(f)), None
        )
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        text = "\n".join(str(f.get("content", "")) for f in files.get("files") or [])
        if not audit_watched(text, path, p.permissions):
            why = _lacking(text, path, p.permissions)
            observed = (
                f"no rule for {path} in /etc/audit/rules.d"
                if why == "not watched"
                else f"{path} in /etc/audit/rules.d is {why}"
            )
            return Verdict(Status.FAIL, expected, observed, evidence)
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
        if error_of(loaded) or loaded.get("rc") != 0:  # the loaded rules could not be read
            said = error_of(loaded) or (
                text.strip().splitlines()[-1] if text.strip() else f"exit {loaded.get('rc')}"
            )
            return Verdict(
                Status.ERROR,
                expected,
                f"rule file has {path}, but the loaded rules cannot be read: auditctl -l: {said}",
                evidence,
            )
        if not audit_watched(text, path, p.permissions):
            return Verdict(
                Status.FAIL, expected, f"{path} is in the rule files but not loaded", evidence
            )
        return Verdict(Status.PASS, expected, f"{path} watched (loaded)", evidence)
