"""What changed between two verify runs of the same inventory, per host x control.

The comparison is pure (two report documents in, a `Changes` out); finding the earlier run is a
separate step that only reads the run directories beside the current one. Drift and history
views can reuse both: `compare` on any two stored reports, `earlier_reports` for the series.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The statuses that are findings (the ones verify's exit code counts).
FAILING = frozenset({"fail", "error"})


@dataclass(frozen=True, slots=True)
class Change:
    host: str
    control_id: str
    ref: str
    benchmark: str
    title: str
    before: str | None  # None: not checked on this host in that run
    after: str | None


@dataclass(frozen=True, slots=True)
class Changes:
    previous_run: str
    previous_started: str
    new_failures: tuple[Change, ...]  # fail/error now, and not failing (or not checked) before
    fixed: tuple[Change, ...]  # failing before, pass now
    new_waivers: tuple[Change, ...]  # waived now, not waived before
    other: tuple[Change, ...]  # every other status change, including controls no longer checked

    @property
    def total(self) -> int:
        return len(self.new_failures) + len(self.fixed) + len(self.new_waivers) + len(self.other)


def waived(result: Mapping[str, Any] | None) -> bool:
    return result is not None and (
        result.get("waiver") is not None or result.get("status") == "waived"
    )


def _key(r: Mapping[str, Any]) -> tuple[str, str]:
    return str(r["host"]), str(r["control_id"])


def compare(previous: Mapping[str, Any], current: Mapping[str, Any]) -> Changes:
    """Each host x control whose status (or waiver) differs between `previous` and `current`,
    sorted into exactly one of the four groups."""
    before = {_key(r): r for r in previous["results"]}
    after = {_key(r): r for r in current["results"]}
    groups: dict[str, list[Change]] = {"new": [], "fixed": [], "waived": [], "other": []}
    for key in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(key), after.get(key)
        was = None if old is None else str(old["status"])
        now = None if new is None else str(new["status"])
        if was == now and waived(old) == waived(new):
            continue
        shown = new if new is not None else old
        assert shown is not None
        change = Change(
            host=key[0],
            control_id=key[1],
            ref=str(shown["ref"]),
            benchmark=str(shown["benchmark"]),
            title=str(shown["title"]),
            before=was,
            after=now,
        )
        if waived(new) and not waived(old):
            groups["waived"].append(change)
        elif now in FAILING and was not in FAILING:
            groups["new"].append(change)
        elif was in FAILING and now == "pass":
            groups["fixed"].append(change)
        else:
            groups["other"].append(change)
    return Changes(
        previous_run=str(previous["run_id"]),
        previous_started=str(previous["started"]),
        new_failures=tuple(groups["new"]),
        fixed=tuple(groups["fixed"]),
        new_waivers=tuple(groups["waived"]),
        other=tuple(groups["other"]),
    )


def earlier_reports(run_path: Path, doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The reports of the finished verify runs beside `run_path` (the state dir's runs) with the
    same inventory as `doc`, started before it; newest first."""
    found: list[tuple[str, Path]] = []
    for sibling in run_path.parent.iterdir() if run_path.parent.is_dir() else ():
        if sibling == run_path or not (sibling / "report.json").is_file():
            continue
        try:
            meta = json.loads((sibling / "run.json").read_text())
        except (OSError, ValueError):
            continue  # not a run directory casemate can read: not part of the history
        if (
            isinstance(meta, dict)
            and meta.get("kind") == "verify"
            and meta.get("state") == "finished"
            and meta.get("inventory") == doc["inventory"]
            and str(meta.get("started", "")) < str(doc["started"])
        ):
            found.append((str(meta["started"]), sibling))
    for _, path in sorted(found, reverse=True):
        try:
            earlier = json.loads((path / "report.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(earlier, dict) and isinstance(earlier.get("results"), list):
            yield earlier


def since_previous(run_path: Path, doc: Mapping[str, Any]) -> Changes | None:
    """The changes since the previous finished verify run of the same inventory, or None when
    there is none."""
    previous = next(earlier_reports(run_path, doc), None)
    return None if previous is None else compare(previous, doc)
