"""group_members: every member of a group is on an allow-list kept in the inventory."""

from __future__ import annotations

from typing import ClassVar

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of


class GroupMembersParams(Params):
    group: str
    allowed_var: str  # inventory variable holding the allowed user names


class GroupMembers:
    name: ClassVar[str] = "group_members"
    params: ClassVar[type[GroupMembersParams]] = GroupMembersParams

    def wants(self, p: GroupMembersParams) -> list[Probe]:
        return [Probe("cmd", f"getent group {p.group}")]

    def judge(self, p: GroupMembersParams, obs: Observations) -> Verdict:
        probe = Probe("cmd", f"getent group {p.group}")
        evidence = (probe.key, f"var:{p.allowed_var}")
        expected = f"members of {p.group} all listed in {p.allowed_var}"
        raw = obs.get(probe)
        if error_of(raw):
            return Verdict(Status.ERROR, expected, str(error_of(raw)), evidence)
        said = str(raw.get("stderr", "")).strip()
        if raw.get("rc") == 2 and not said:  # getent: no such group (and nothing went wrong)
            return Verdict(Status.NOT_APPLICABLE, expected, f"no group {p.group}", evidence)
        if raw.get("rc") != 0:
            why = f"getent exited {raw.get('rc')}" + (f": {said[:200]}" if said else "")
            return Verdict(Status.ERROR, expected, why, evidence)
        fields = str(raw.get("stdout", "")).strip().split(":")
        members = sorted(m for m in (fields[3] if len(fields) > 3 else "").split(",") if m)
        shown = ", ".join(members) or "none"
        allowed = obs.vars.get(p.allowed_var)
        if allowed is None:
            if not members:
                return Verdict(Status.PASS, expected, "no members", evidence)
            return Verdict(
                Status.MANUAL,
                expected,
                f"members: {shown} (set {p.allowed_var} to judge)",
                evidence,
            )
        if not isinstance(allowed, list):
            return Verdict(Status.ERROR, expected, f"{p.allowed_var} is not a list", evidence)
        extra = [m for m in members if m not in {str(a) for a in allowed}]
        if extra:
            return Verdict(
                Status.FAIL, expected, f"not on the allow-list: {', '.join(extra)}", evidence
            )
        return Verdict(Status.PASS, expected, f"members: {shown}", evidence)
