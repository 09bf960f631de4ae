"""A control's story on a host, from the recorded results: when its status changed and in which
run, when it first failed, when it was fixed (and by which harden run), and the regressions
(pass, then fail). Pure functions over what the store read."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby, pairwise

from casemate.history.store import Observed, Played

PASS = "pass"
FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Change:
    run_id: str
    kind: str
    at: datetime
    was: str | None  # None: the first result in view
    now: str


@dataclass(frozen=True, slots=True)
class Fix:
    failed_in: Observed  # the first run of the failing stretch
    passed_in: Observed  # the first run that saw it pass again
    hardened_by: str | None  # the harden run on the host in between that applied the control


@dataclass(frozen=True, slots=True)
class Timeline:
    host: str
    control_id: str
    now: Observed  # the latest result
    changes: tuple[Change, ...]
    first_failed: Observed | None
    fixes: tuple[Fix, ...]


@dataclass(frozen=True, slots=True)
class Regression:
    host: str
    control_id: str
    passed_in: Observed  # the last run that saw it pass
    failed_in: Observed  # the next run, which saw it fail
    now: str  # its status in the latest run


def _stories(rows: Iterable[Observed]) -> Iterable[list[Observed]]:
    ordered = sorted(rows, key=lambda o: (o.host, o.control_id, o.at, o.run_id))
    for _, story in groupby(ordered, key=lambda o: (o.host, o.control_id)):
        yield list(story)


def hardened_between(
    played: Sequence[Played], host: str, control_id: str, after: datetime, before: datetime
) -> str | None:
    """The last harden run (not a check-mode one) that applied `control_id` on `host` between
    two results."""
    found = None
    for p in played:
        if (
            p.host == host
            and not p.check_mode
            and control_id in p.controls
            and after < p.at < before
            and p.outcome != "unreachable"
        ):
            found = p.run_id
    return found


def timelines(
    rows: Iterable[Observed], played: Sequence[Played] = (), *, since: datetime | None = None
) -> list[Timeline]:
    """Per host x control: the status changes (those since `since` when given; the result before
    it only tells what the status was), the first failure and every fix."""
    out = []
    for story in _stories(rows):
        changes = []
        fixes = []
        first_failed = None
        failing: Observed | None = None
        last: Observed | None = None
        for o in story:
            if last is None or o.status != last.status:
                if since is None or o.at >= since:
                    was = last.status if last is not None else None
                    changes.append(Change(o.run_id, o.kind, o.at, was, o.status))
                if o.status == FAIL and failing is None:
                    failing = o
                    if first_failed is None:
                        first_failed = o
                elif o.status == PASS and failing is not None and last is not None:
                    by = hardened_between(played, o.host, o.control_id, last.at, o.at)
                    if since is None or o.at >= since:
                        fixes.append(Fix(failing, o, by))
                    failing = None
            last = o
        assert last is not None
        out.append(
            Timeline(last.host, last.control_id, last, tuple(changes), first_failed, tuple(fixes))
        )
    return out


def regressions(rows: Iterable[Observed], *, since: datetime | None = None) -> list[Regression]:
    """Every pass followed by a fail (in the next result), the fail seen since `since`."""
    out = []
    for story in _stories(rows):
        now = story[-1].status
        for before, after in pairwise(story):
            seen = since is None or after.at >= since
            if seen and before.status == PASS and after.status == FAIL:
                out.append(Regression(after.host, after.control_id, before, after, now))
    return out
