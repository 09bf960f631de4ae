"""HTML: one self-contained page (CSS and JS inline, nothing fetched) rendered with Jinja2 from
templates/report.html.j2. Filters (host, benchmark, section, status, level) are read from and
written to the page's query string, so a filtered view is a link: `report.html?status=fail`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from casemate.locations import package_file
from casemate.report.changes import Changes
from casemate.report.document import statuses
from casemate.report.jsontext import indented

FILTERS = ("host", "benchmark", "section", "status", "level")


def section(r: Mapping[str, Any]) -> str:
    """The filter value of a result's benchmark section: `cis-docker 2`."""
    return f"{r['benchmark']} {str(r['ref']).split('.', 1)[0]}"


def _sort_key(r: Mapping[str, Any]) -> tuple[Any, ...]:
    ref = tuple(int(p) if p.isdigit() else 0 for p in str(r["ref"]).split("."))
    return r["host"], r["benchmark"], ref


def context(doc: Mapping[str, Any], changes: Changes | None) -> dict[str, Any]:
    order = statuses(doc)
    results = sorted(doc["results"], key=_sort_key)
    per: dict[tuple[str, str], Counter[str]] = {}
    for r in results:
        per.setdefault((r["host"], r["benchmark"]), Counter())[r["status"]] += 1
    totals = Counter(str(r["status"]) for r in results)
    # each raw observation once per host; results link to it
    anchors: dict[tuple[str, str], str] = {}
    evidence = []
    for n, h in enumerate(doc["hosts"]):
        items = []
        for m, (key, value) in enumerate(sorted(h["observations"].items())):
            anchor = f"ev-{n}-{m}"
            anchors[(h["name"], key)] = anchor
            items.append({"anchor": anchor, "key": key, "text": indented(value)})
        evidence.append({"host": h["name"], "items": items})
    rows = [
        {
            "r": r,
            "section": section(r),
            "waiver": r.get("waiver"),
            "evidence": [(key, anchors.get((r["host"], key))) for key in r["evidence"]],
        }
        for r in results
    ]
    options = {
        "host": [h["name"] for h in doc["hosts"]],
        "benchmark": sorted({r["benchmark"] for r in results}),
        "section": sorted({section(r) for r in results}, key=lambda s: (s.split()[0], _num(s))),
        "status": [s for s in order if totals[s]],
        "level": sorted({str(r["level"]) for r in results}),
    }
    return {
        "doc": doc,
        "statuses": order,
        "totals": totals,
        "summary": [
            {"host": host, "benchmark": bench, "counts": counts, "total": sum(counts.values())}
            for (host, bench), counts in sorted(per.items())
        ],
        "unprobed": [h for h in doc["hosts"] if not h["probed"]],
        "rows": rows,
        "evidence": evidence,
        "filters": FILTERS,
        "options": options,
        "changes": changes,
        "waived": [row for row in rows if row["waiver"]],
    }


def _num(text: str) -> int:
    last = text.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def render(doc: Mapping[str, Any], changes: Changes | None = None) -> str:
    import jinja2  # noqa: PLC0415 - 0.1 s; only the HTML output needs it

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(package_file("report", "templates")),
        autoescape=True,  # every value from a host is text, never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(context(doc, changes))
