"""JUnit XML: one test case per host x control, so CI systems show compliance like test results."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

_SKIPPED = {"manual", "not_applicable", "not_verifiable", "waived"}


def _waiver_line(r: Mapping[str, Any], w: Mapping[str, Any]) -> str:
    where = " ".join(x for x in (w.get("ticket"), w.get("url")) if x)
    said = f"{w.get('reason')} (owner {w.get('owner')}, until {w.get('expires')}, {where})"
    if r["status"] == "waived":
        return f"waived: {said}; the check said {r.get('judged')}"
    return f"waiver expired {w.get('expires')}: {said}"


def render(doc: Mapping[str, Any]) -> str:
    suites = ET.Element("testsuites", name="casemate", tests=str(len(doc["results"])))
    for host in doc["hosts"]:
        mine = [r for r in doc["results"] if r["host"] == host["name"]]
        counts = host["counts"]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=host["name"],
            tests=str(len(mine)),
            failures=str(counts["fail"]),
            errors=str(counts["error"]),
            skipped=str(sum(counts.get(s, 0) for s in _SKIPPED)),
            timestamp=str(doc["started"]),
        )
        for r in mine:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{host['name']}.{r['benchmark']}",
                name=f"{r['ref']} {r['control_id']} {r['title']}",
            )
            detail = f"expected: {r['expected']}\nobserved: {r['observed']}"
            waiver = r.get("waiver")
            if waiver:
                detail += f"\n{_waiver_line(r, waiver)}"
            if r["status"] == "waived":
                ET.SubElement(case, "skipped", message=_waiver_line(r, waiver or {})[:500])
            elif r["status"] == "fail":
                ET.SubElement(
                    case, "failure", message=r["observed"][:500], type="fail"
                ).text = detail
            elif r["status"] == "error":
                ET.SubElement(
                    case, "error", message=r["observed"][:500], type="error"
                ).text = detail
            elif r["status"] in _SKIPPED:
                ET.SubElement(case, "skipped", message=f"{r['status']}: {r['observed']}"[:500])
            ET.SubElement(case, "system-out").text = detail
    ET.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
    )
