"""The terminal summary: counts per host, then every failing or erroring automated control."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

_COLUMNS = [
    ("pass", "green"),
    ("fail", "red"),
    ("error", "magenta"),
    ("manual", "cyan"),
    ("not_applicable", "dim"),
    ("not_verifiable", "yellow"),
    ("waived", "blue"),
]


def waiver_text(w: Mapping[str, Any]) -> str:
    """A waiver in one line: its owner, end date, ticket or URL, and reason."""
    where = " ".join(x for x in (w.get("ticket"), w.get("url")) if x)
    return f"{w['owner']}, until {w['expires']}, {where}: {w['reason']}"


def render(doc: Mapping[str, Any], *, limit: int = 60) -> Group:
    counts = Table(title="casemate verify", title_justify="left")
    counts.add_column("host")
    for name, style in _COLUMNS:
        counts.add_column(name.replace("_", " "), justify="right", style=style)
    for host in doc["hosts"]:
        label = host["name"] if host["probed"] else f"{host['name']} (NOT PROBED)"
        # reports made before waivers existed have no `waived` count
        counts.add_row(label, *(str(host["counts"].get(n, 0)) for n, _ in _COLUMNS))
    parts: list[Any] = [counts]
    unreached = [h for h in doc["hosts"] if not h["probed"]]
    for host in unreached:
        parts.append(Text(f"{host['name']}: {host['error']}", style="bold red"))
    bad = [r for r in doc["results"] if r["status"] in ("fail", "error")]
    if bad:
        table = Table(title="findings", title_justify="left")
        for col in ("host", "control", "status", "expected", "observed"):
            table.add_column(col, overflow="fold")
        for r in bad[:limit]:
            status = r["status"]
            if r.get("waiver"):  # an expired waiver is shown beside the verdict it no longer hides
                status += f" (waiver expired {r['waiver']['expires']})"
            table.add_row(
                r["host"], f"{r['ref']} {r['title']}", status, r["expected"], r["observed"]
            )
        parts.append(table)
        if len(bad) > limit:
            parts.append(Text(f"... and {len(bad) - limit} more in report.json"))
    parts.extend(_waived(doc, limit))
    return Group(*parts)


def _waived(doc: Mapping[str, Any], limit: int) -> list[Any]:
    """The waived controls with the check's own verdict and the waiver, and what was applied."""
    applied = doc.get("waivers")
    if not applied:
        return []
    parts: list[Any] = []
    waived = [r for r in doc["results"] if r["status"] == "waived"]
    if waived:
        table = Table(title="waived (not counted as findings)", title_justify="left")
        for col in ("host", "control", "judged", "waiver"):
            table.add_column(col, overflow="fold")
        for r in waived[:limit]:
            table.add_row(
                r["host"], f"{r['ref']} {r['title']}", r["judged"], waiver_text(r["waiver"])
            )
        parts.append(table)
    when = (
        "re-judged when this report was rendered, not at the run"
        if applied["when"] == "report"
        else "applied at the run"
    )
    parts.append(Text(f"waivers: {applied['file']} on {applied['applied_on']} ({when})"))
    parts.extend(Text(f"warning: {w}", style="yellow") for w in applied["warnings"])
    return parts
