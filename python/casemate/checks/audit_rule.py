"""audit_rule: a path is watched by an audit rule, in the persistent rule files AND in the rules
the kernel has loaded. Both are read by the auditd_rules role's own reader (readers.audit_watched:
roles/host_common/module_utils/casemate_audit.py), so verify judges a rule as the role wrote it.
Where the loaded rules cannot be read (a container: the kernel refuses audit there) the verdict is
not_verifiable, carrying what the rule files say; never pass.

A binary (`command`) is watched at every path a checker may read for it (casemate_audit's
binary_paths): each path it is called by, the file a symlinked one resolves to, and the paths the
benchmark documents (`documented`, e.g. /usr/bin/dockerd where Debian installs /usr/sbin/dockerd),
so the verdict does not depend on which path a checker picks."""

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
    command: str | None = None  # watch the binary at every path it is reached by (see above)
    documented: tuple[
        str, ...
    ] = ()  # with `command`: the benchmark's own paths for it, watched too
    key: str = "docker"  # the key casemate's rules carry (shown; any key counts)
    permissions: str | None = None  # what the rule must watch, e.g. "wa" (None: any watch)

    @model_validator(mode="after")
    def _one_target(self) -> AuditRuleParams:
        if sum(x is not None for x in (self.path, self.unit, self.command)) != 1:
            raise ValueError("give exactly one of path, unit, command")
        if self.documented and self.command is None:
            raise ValueError("documented goes with command")
        if any(";" in d or not d.startswith("/") for d in self.documented):
            raise ValueError("documented paths are absolute, without ';'")
        return self


def _target_probe(p: AuditRuleParams) -> Probe:
    if p.path is not None:
        return Probe("stat", p.path)
    if p.unit is not None:
        return Probe("unit", p.unit)
    return Probe("binary", ";".join([str(p.command), *p.documented]))


def _resolve(p: AuditRuleParams, obs: Observations) -> tuple[list[str], str | None]:
    """(paths to watch, empty when none exists here; error)."""
    raw = obs.get(_target_probe(p))
    if error_of(raw):
        return [], error_of(raw)
    if p.path is not None:
        return ([p.path] if raw.get("exists") else []), None
    if p.unit is not None:
        frag = raw.get("fragment") or {}
        return ([str(frag.get("path"))] if frag.get("exists") else []), None
    return [str(x) for x in raw.get("paths") or []], None


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
        paths, err = _resolve(p, obs)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        if not paths:
            return Verdict(Status.NOT_APPLICABLE, expected, f"{what} does not exist here", evidence)
        if p.command is not None:
            expected = (
                f"{what} watched{perms} at {', '.join(paths)} by a loaded audit rule (key {p.key})"
            )
        shown = ", ".join(paths)
        files = obs.get(RULE_FILES)
        err = error_of(files) or next(
            (error_of(f) for f in files.get("files") or [] if error_of(f)), None
        )
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        text = "\n".join(str(f.get("content", "")) for f in files.get("files") or [])
        lacking = [(path, _lacking(text, path, p.permissions)) for path in paths
                   if not audit_watched(text, path, p.permissions)]  # fmt: skip
        if lacking:
            observed = "; ".join(
                f"no rule for {path} in /etc/audit/rules.d"
                if why == "not watched"
                else f"{path} in /etc/audit/rules.d is {why}"
                for path, why in lacking
            )
            return Verdict(Status.FAIL, expected, observed, evidence)
        if obs.container:
            return Verdict(
                Status.NOT_VERIFIABLE,
                expected,
                f"rule for {shown} in /etc/audit/rules.d; the loaded rules cannot be read: "
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
                f"rule file has {shown}, but the loaded rules cannot be read: auditctl -l: {said}",
                evidence,
            )
        unloaded = [path for path in paths if not audit_watched(text, path, p.permissions)]
        if unloaded:
            return Verdict(
                Status.FAIL,
                expected,
                f"{', '.join(unloaded)} {'is' if len(unloaded) == 1 else 'are'} in the rule files "
                "but not loaded",
                evidence,
            )
        return Verdict(Status.PASS, expected, f"{shown} watched (loaded)", evidence)
