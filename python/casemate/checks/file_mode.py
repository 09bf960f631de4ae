"""file_mode: a file's permission bits are within a limit (`max_mode`) or exactly `mode`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from casemate.checks.base import Observations, Probe, Verdict
from casemate.checks.compare import mode_within
from casemate.checks.targets import FileTarget, describe_target, judge_files, target_probes

_OCTAL = r"^0?[0-7]{3}$"


class FileModeParams(FileTarget):
    max_mode: str | None = Field(default=None, pattern=_OCTAL)
    mode: str | None = Field(default=None, pattern=_OCTAL)

    @model_validator(mode="after")
    def _one_mode(self) -> FileModeParams:
        if (self.max_mode is None) == (self.mode is None):
            raise ValueError("give exactly one of max_mode, mode")
        return self


def _ok(p: FileModeParams, mode: str) -> bool:
    if p.mode is not None:
        return int(mode, 8) == int(p.mode, 8)
    assert p.max_mode is not None
    return mode_within(mode, p.max_mode)


class FileMode:
    name: ClassVar[str] = "file_mode"
    params: ClassVar[type[FileModeParams]] = FileModeParams

    def wants(self, p: FileModeParams) -> list[Probe]:
        return target_probes(p)

    def judge(self, p: FileModeParams, obs: Observations) -> Verdict:
        limit = f"mode {p.mode} exactly" if p.mode else f"mode {p.max_mode} or stricter"
        return judge_files(
            p,
            obs,
            f"{describe_target(p)}: {limit}",
            ok=lambda s: _ok(p, str(s.get("mode", "7777"))),
            show=lambda s: str(s.get("mode")),
        )
