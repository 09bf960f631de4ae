"""CSV: one row per host x control, for spreadsheets and ticket imports."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

COLUMNS = (
    "run_id",
    "host",
    "benchmark",
    "benchmark_version",
    "section",
    "ref",
    "control_id",
    "title",
    "level",
    "mode",
    "status",
    "expected",
    "observed",
    "evidence",
    "remediation",
    "waiver_reason",
    "waiver_owner",
    "waiver_ticket",
    "waiver_expires",
)


def row(doc: Mapping[str, Any], r: Mapping[str, Any]) -> dict[str, str]:
    waiver = r.get("waiver") or {}
    return {
        "run_id": str(doc["run_id"]),
        "host": r["host"],
        "benchmark": r["benchmark"],
        "benchmark_version": r["benchmark_version"],
        "section": str(r["ref"]).split(".", 1)[0],
        "ref": r["ref"],
        "control_id": r["control_id"],
        "title": r["title"],
        "level": str(r["level"]),
        "mode": r["mode"],
        "status": r["status"],
        "expected": r["expected"],
        "observed": r["observed"],
        "evidence": "\n".join(r["evidence"]),  # keys may hold spaces (a command)
        "remediation": r["remediation"] or "",
        "waiver_reason": str(waiver.get("reason") or ""),
        "waiver_owner": str(waiver.get("owner") or ""),
        "waiver_ticket": str(waiver.get("ticket") or ""),
        "waiver_expires": str(waiver.get("expires") or ""),
    }


def _cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting with = + - @ (or a tab or carriage return)
    would be taken for a formula, so it gets a leading apostrophe (OWASP's CSV injection advice).
    Observed values come from hosts, and a host must not be able to plant a formula."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def render(doc: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for r in doc["results"]:
        writer.writerow({k: _cell(v) for k, v in row(doc, r).items()})
    return out.getvalue()
