"""file_exists: a path is present (or, with `present: false`, absent)."""

from __future__ import annotations

from typing import ClassVar

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of


class FileExistsParams(Params):
    path: str
    present: bool = True


class FileExists:
    name: ClassVar[str] = "file_exists"
    params: ClassVar[type[FileExistsParams]] = FileExistsParams

    def wants(self, p: FileExistsParams) -> list[Probe]:
        return [Probe("stat", p.path)]

    def judge(self, p: FileExistsParams, obs: Observations) -> Verdict:
        probe = Probe("stat", p.path)
        raw = obs.get(probe)
        expected = f"{p.path} {'present' if p.present else 'absent'}"
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        exists = bool(raw.get("exists"))
        observed = f"{p.path} {'present' if exists else 'absent'}"
        if exists:
            observed += f" ({raw.get('type')})"
        status = Status.PASS if exists == p.present else Status.FAIL
        return Verdict(status, expected, observed, (probe.key,))
