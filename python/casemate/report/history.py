"""`casemate history`: control timelines and regressions, as a table or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from casemate.history.store import Observed
from casemate.history.timeline import Regression, Timeline


def _moment(o: Observed) -> dict[str, str]:
    return {"run_id": o.run_id, "kind": o.kind, "at": o.at.isoformat()}


def _stamp(o: Observed) -> str:
    return f"{o.at:%Y-%m-%d %H:%M:%S} {o.run_id}"


def timelines_doc(found: Sequence[Timeline]) -> list[dict[str, Any]]:
    return [
        {
            "host": t.host,
            "control_id": t.control_id,
            "status": t.now.status,
            "expected": t.now.expected,
            "observed": t.now.observed,
            "evidence_digest": t.now.evidence_digest,
            "last_run": _moment(t.now),
            "first_failed": _moment(t.first_failed) if t.first_failed else None,
            "fixes": [
                {
                    "failed_since": _moment(f.failed_in),
                    "seen_passing": _moment(f.passed_in),
                    "hardened_by": f.hardened_by,
                }
                for f in t.fixes
            ],
            "changes": [
                {
                    "run_id": c.run_id,
                    "kind": c.kind,
                    "at": c.at.isoformat(),
                    "from": c.was,
                    "to": c.now,
                }
                for c in t.changes
            ],
        }
        for t in found
    ]


def regressions_doc(found: Sequence[Regression]) -> list[dict[str, Any]]:
    return [
        {
            "host": r.host,
            "control_id": r.control_id,
            "passed": _moment(r.passed_in),
            "failed": _moment(r.failed_in),
            "status": r.now,
        }
        for r in found
    ]


def as_json(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True)


def timelines_table(found: Sequence[Timeline]) -> Group | Text:
    """One row per status change, each host x control's first failure and fixes beside it."""
    if not found:
        return Text("no recorded result matches")
    table = Table(title="casemate history", title_justify="left")
    for col in ("host", "control", "when (UTC)", "run", "change", "note"):
        table.add_column(col, overflow="fold")
    for t in found:
        fixed = {f.passed_in.run_id: f for f in t.fixes}
        for c in t.changes:
            notes = []
            if t.first_failed is not None and c.run_id == t.first_failed.run_id:
                notes.append("first failed")
            if c.run_id in fixed:
                by = fixed[c.run_id].hardened_by
                notes.append(f"fixed by harden {by}" if by else "fixed")
            change = c.now if c.was is None else f"{c.was} -> {c.now}"
            table.add_row(
                t.host,
                t.control_id,
                f"{c.at:%Y-%m-%d %H:%M:%S}",
                c.run_id,
                change,
                ", ".join(notes),
            )
    return Group(table)


def regressions_table(found: Sequence[Regression]) -> Group | Text:
    if not found:
        return Text("no regression: no control went from pass to fail")
    table = Table(title="regressions (pass -> fail)", title_justify="left")
    for col in ("host", "control", "last passed", "failed", "status now"):
        table.add_column(col, overflow="fold")
    for r in found:
        table.add_row(r.host, r.control_id, _stamp(r.passed_in), _stamp(r.failed_in), r.now)
    return Group(table)
