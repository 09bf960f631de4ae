"""file_owner: a file belongs to the expected user and group (by name)."""

from __future__ import annotations

from typing import ClassVar

from casemate.checks.base import Observations, Probe, Status, Verdict
from casemate.checks.targets import FileTarget, describe_target, resolve, target_probe


class FileOwnerParams(FileTarget):
    owner: str
    group: str | None = None


class FileOwner:
    name: ClassVar[str] = "file_owner"
    params: ClassVar[type[FileOwnerParams]] = FileOwnerParams

    def wants(self, p: FileOwnerParams) -> list[Probe]:
        return [target_probe(p)]

    def judge(self, p: FileOwnerParams, obs: Observations) -> Verdict:
        evidence = (target_probe(p).key,)
        want = f"{p.owner}:{p.group}" if p.group else p.owner
        expected = f"{describe_target(p)}: owned by {want}"
        stats, err, note = resolve(p, obs)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        if not stats:
            status = Status.NOT_APPLICABLE if p.missing == "not_applicable" else Status.FAIL
            return Verdict(status, expected, note or "no such file", evidence)

        def owned(s: dict[str, object]) -> str:
            return f"{s.get('user')}:{s.get('group')}" if p.group else str(s.get("user"))

        bad = [s for s in stats if owned(dict(s)) != want]
        shown = [f"{s.get('path')} {owned(dict(s))}" for s in (bad or stats)]
        return Verdict(Status.FAIL if bad else Status.PASS, expected, "; ".join(shown), evidence)
