"""file_exists: a path is present (or, with `present: false`, absent).

A file that a background job builds (AIDE's database) names that job's unit in `built_by`: while
the file is missing or empty the verdict is fail and says whether the unit is building it now or
nothing is, never pass. `nonempty` counts an empty file as missing (a build that was cut short)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of

_BUILDING = ("active", "activating", "reloading")


class FileExistsParams(Params):
    path: str
    present: bool = True
    nonempty: bool = False  # an empty file counts as missing
    built_by: str | None = None  # the unit that builds a missing file (a database)

    @model_validator(mode="after")
    def _consistent(self) -> FileExistsParams:
        if not self.present and (self.nonempty or self.built_by):
            raise ValueError("nonempty and built_by need present: true")
        return self


class FileExists:
    name: ClassVar[str] = "file_exists"
    params: ClassVar[type[FileExistsParams]] = FileExistsParams

    def wants(self, p: FileExistsParams) -> list[Probe]:
        return [Probe("stat", p.path)] + ([Probe("unit", p.built_by)] if p.built_by else [])

    def judge(self, p: FileExistsParams, obs: Observations) -> Verdict:
        evidence = tuple(q.key for q in self.wants(p))
        raw = obs.get(Probe("stat", p.path))
        expected = f"{p.path} {'present' if p.present else 'absent'}"
        if p.nonempty:
            expected += " and not empty"
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        exists = bool(raw.get("exists"))
        empty = exists and raw.get("type") == "file" and raw.get("size") == 0
        observed = f"{p.path} {'present' if exists else 'absent'}"
        if exists:
            observed += f" ({raw.get('type')}{', empty' if empty else ''})"
        if exists == p.present and not (p.nonempty and empty):
            return Verdict(Status.PASS, expected, observed, evidence)
        if p.built_by:
            building = _building(obs, p.built_by)
            if building.startswith("error: "):
                return Verdict(Status.ERROR, expected, building[7:], evidence)
            observed += f": not yet built, {building}"
        return Verdict(Status.FAIL, expected, observed, evidence)


def _building(obs: Observations, unit: str) -> str:
    """Whether `unit` is building the file now, in words ("error: ..." when systemd cannot say)."""
    raw = obs.get(Probe("unit", unit))
    if err := error_of(raw):
        return f"error: {err}"
    props = raw.get("properties", {})
    state = str(props.get("ActiveState", ""))
    if state in _BUILDING:
        return f"{unit} is building it ({state})"
    if state == "failed":
        return f"and {unit} failed (journalctl -u {unit})"
    return f"and nothing is building it ({unit} {state or 'unknown'})"
