"""mount_options: a mount point carries the given options (nosuid, nodev, noexec...), as the running
kernel shows them in /proc/self/mountinfo. A path that is not a mount point of its own does not
concern the host (or fails, with `missing: fail`)."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of

MOUNTINFO = Probe("read", "/proc/self/mountinfo")


class MountOptionsParams(Params):
    mount_point: str
    options: list[str] = Field(min_length=1)
    missing: Literal["not_applicable", "fail"] = "not_applicable"


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_of(mountinfo: str, mount_point: str) -> tuple[str, list[str]] | None:
    """(fstype, options) of the mount that is on top at `mount_point`, or None."""
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 7 or "-" not in fields[6:]:
            continue
        if _unescape(fields[4]) != mount_point:
            continue
        rest = fields[fields.index("-", 6) + 1 :]
        fstype = rest[0] if rest else "?"
        supers = rest[2].split(",") if len(rest) > 2 else []
        found = (fstype, [*fields[5].split(","), *supers])
    return found


class MountOptions:
    name: ClassVar[str] = "mount_options"
    params: ClassVar[type[MountOptionsParams]] = MountOptionsParams

    def wants(self, p: MountOptionsParams) -> list[Probe]:
        return [MOUNTINFO]

    def judge(self, p: MountOptionsParams, obs: Observations) -> Verdict:
        evidence = (MOUNTINFO.key,)
        expected = f"{p.mount_point} mounted {','.join(p.options)}"
        raw = obs.get(MOUNTINFO)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        if not raw.get("exists"):
            return Verdict(Status.ERROR, expected, "/proc/self/mountinfo is missing", evidence)
        mount = mount_of(str(raw.get("content", "")), p.mount_point)
        if mount is None:
            status = Status.NOT_APPLICABLE if p.missing == "not_applicable" else Status.FAIL
            return Verdict(status, expected, f"{p.mount_point} is not a separate mount", evidence)
        fstype, options = mount
        lacking = [o for o in p.options if o not in options]
        observed = f"{p.mount_point} ({fstype}) {','.join(dict.fromkeys(options))}"
        if lacking:
            return Verdict(
                Status.FAIL, expected, f"{observed}; lacks {','.join(lacking)}", evidence
            )
        return Verdict(Status.PASS, expected, observed, evidence)
