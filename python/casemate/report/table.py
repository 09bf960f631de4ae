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
]


def render(doc: Mapping[str, Any], *, limit: int = 60) -> Group:
    counts = Table(title="casemate verify", title_justify="left")
    counts.add_column("host")
    for name, style in _COLUMNS:
        counts.add_column(name.replace("_", " "), justify="right", style=style)
    for host in doc["hosts"]:
        label = host["name"] if host["probed"] else f"{host['name']} (NOT PROBED)"
        counts.add_row(label, *(str(host["counts"][n]) for n, _ in _COLUMNS))
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
            table.add_row(
                r["host"], f"{r['ref']} {r['title']}", r["status"], r["expected"], r["observed"]
            )
        parts.append(table)
        if len(bad) > limit:
            parts.append(Text(f"... and {len(bad) - limit} more in report.json"))
    return Group(*parts)
