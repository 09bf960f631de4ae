"""file_owner: a file belongs to the expected user and group (by name)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from casemate.checks.base import Observations, Probe, Verdict
from casemate.checks.targets import FileTarget, describe_target, judge_files, target_probes


class FileOwnerParams(FileTarget):
    owner: str
    group: str | None = None


class FileOwner:
    name: ClassVar[str] = "file_owner"
    params: ClassVar[type[FileOwnerParams]] = FileOwnerParams

    def wants(self, p: FileOwnerParams) -> list[Probe]:
        return target_probes(p)

    def judge(self, p: FileOwnerParams, obs: Observations) -> Verdict:
        want = f"{p.owner}:{p.group}" if p.group else p.owner

        def owned(s: Mapping[str, Any]) -> str:
            return f"{s.get('user')}:{s.get('group')}" if p.group else str(s.get("user"))

        return judge_files(
            p,
            obs,
            f"{describe_target(p)}: owned by {want}",
            ok=lambda s: owned(s) == want,
            show=owned,
        )
