"""SARIF 2.1.0: the catalog controls as rules, failed and errored checks as results, waived ones
as suppressed results (code-scanning dashboards read this)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from casemate import __version__
from casemate.report.jsontext import indented

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
VERSION = "2.1.0"
# Which statuses become results, and at which SARIF level; a waived result is reported at the
# level of a failure, suppressed.
LEVELS = {"fail": "error", "error": "warning"}
WAIVED_LEVEL = "error"


def _utc(stamp: str) -> str:
    """SARIF times are UTC with a Z."""
    return datetime.fromisoformat(stamp).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _waived(r: Mapping[str, Any]) -> bool:
    return r.get("waiver") is not None or r["status"] == "waived"


def _help(r: Mapping[str, Any]) -> str:
    cid, role, mode = r["control_id"], r["remediation"], r["mode"]
    if role and mode == "automated":
        return f"casemate's {role} role fixes it: casemate harden -i INVENTORY --controls {cid}"
    if role and mode == "opt-in":
        return (
            f"casemate's {role} role fixes it once the site opts in (see `casemate catalog show "
            f"{cid}`): casemate harden -i INVENTORY --controls {cid}"
        )
    return f"Not remediated by casemate ({mode}): see `casemate catalog show {cid}`."


def _rule(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": r["control_id"],
        "name": r["control_id"],
        "shortDescription": {"text": r["title"]},
        "fullDescription": {
            "text": f"{r['benchmark']} {r['benchmark_version']} {r['ref']}: {r['title']}"
        },
        "help": {"text": _help(r)},
        "properties": {
            "benchmark": r["benchmark"],
            "benchmark_version": r["benchmark_version"],
            "ref": r["ref"],
            "level": r["level"],
            "mode": r["mode"],
            "tags": [r["benchmark"], f"level-{r['level']}"],
        },
    }


def _result(r: Mapping[str, Any], index: int) -> dict[str, Any]:
    waiver = r.get("waiver")
    fingerprint = hashlib.sha256(f"{r['host']}\0{r['control_id']}".encode()).hexdigest()
    out: dict[str, Any] = {
        "ruleId": r["control_id"],
        "ruleIndex": index,
        "level": WAIVED_LEVEL if _waived(r) else LEVELS[r["status"]],
        "kind": "fail",
        "message": {
            "text": f"{r['host']}: {r['ref']} {r['title']}: expected {r['expected']}; "
            f"observed {r['observed']}"
        },
        "locations": [
            {"logicalLocations": [{"name": r["host"], "kind": "host"}]},
        ],
        "partialFingerprints": {"casemateHostControl/v1": fingerprint},
        "properties": {
            "host": r["host"],
            "status": r["status"],
            "expected": r["expected"],
            "observed": r["observed"],
            "evidence": list(r["evidence"]),
        },
    }
    if _waived(r):
        suppression: dict[str, Any] = {"kind": "external"}
        if waiver:
            suppression["justification"] = str(waiver.get("reason") or "")
            suppression["properties"] = {
                k: waiver[k] for k in ("owner", "ticket", "expires") if waiver.get(k) is not None
            }
        out["suppressions"] = [suppression]
    return out


def render(doc: Mapping[str, Any]) -> str:
    reported = [r for r in doc["results"] if r["status"] in LEVELS or _waived(r)]
    rules: dict[str, int] = {}
    rule_docs: list[dict[str, Any]] = []
    for r in sorted(doc["results"], key=lambda r: r["control_id"]):
        if r["control_id"] not in rules:
            rules[r["control_id"]] = len(rule_docs)
            rule_docs.append(_rule(r))
    unprobed = [h for h in doc["hosts"] if not h["probed"]]
    log = {
        "$schema": SCHEMA,
        "version": VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "casemate",
                        "version": str(doc.get("casemate_version") or __version__),
                        "rules": rule_docs,
                        "properties": {"catalog_digest": doc["catalog"]["digest"]},
                    }
                },
                "automationDetails": {"id": f"casemate/{doc['run_id']}"},
                "invocations": [
                    {
                        "executionSuccessful": not unprobed,
                        "startTimeUtc": _utc(doc["started"]),
                        "endTimeUtc": _utc(doc["finished"]),
                        "toolExecutionNotifications": [
                            {
                                "level": "error",
                                "message": {"text": f"{h['name']}: not probed: {h['error']}"},
                            }
                            for h in unprobed
                        ],
                    }
                ],
                "results": [_result(r, rules[r["control_id"]]) for r in reported],
                "properties": {
                    "run_id": doc["run_id"],
                    "inventory": doc["inventory"],
                    "catalog": doc["catalog"],
                    "selection": doc["selection"],
                },
            }
        ],
    }
    return indented(log) + "\n"
