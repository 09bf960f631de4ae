"""Build and validate report.json, the stored record of a verification run."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casemate import __version__, private, waivers
from casemate.checks.base import Status
from casemate.gate import Gate
from casemate.locations import package_file
from casemate.report import junit

if TYPE_CHECKING:  # verify builds reports: no import cycle at run time
    from casemate.catalog.select import Selection
    from casemate.verify import HostVerification, Result

SCHEMA_ID = "casemate-report/1"
STATUSES = [s.value for s in Status]


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(package_file("report", "report.schema.json").read_text())
    return loaded


def validate(doc: Mapping[str, Any]) -> None:
    """Raise jsonschema.ValidationError when `doc` does not follow the report schema (a stored
    report read back; the documents `build` makes are held to the schema by the unit tests)."""
    import jsonschema  # noqa: PLC0415 - costs 0.1 s; only `report` reads a stored document back

    validator = jsonschema.validators.validator_for(schema())
    validator(schema()).validate(dict(doc))  # the first error; the schema itself is casemate's


def statuses(doc: Mapping[str, Any]) -> list[str]:
    """Every status a document can show, in the model's order: the ones casemate knows, then any
    other the document holds (a report written by a newer casemate)."""
    seen = [*doc.get("summary", {}), *(str(r["status"]) for r in doc.get("results", ()))]
    return [*STATUSES, *sorted(set(seen) - set(STATUSES))]


def _counts(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    seen = Counter(str(r["status"]) for r in results)
    return {s: seen.get(s, 0) for s in STATUSES}


def result_doc(r: Result) -> dict[str, Any]:
    e = r.entry
    return {
        "host": r.host,
        "control_id": e.id,
        "benchmark": e.benchmark,
        "benchmark_version": e.benchmark_version,
        "ref": e.ref,
        "title": e.control.title,
        "level": e.control.level,
        "automated": e.control.automated,
        "mode": e.control.mode,
        "profiles": list(e.control.profiles),
        "remediation": e.control.remediation.role if e.control.remediation else None,
        "status": r.verdict.status.value,
        "expected": r.verdict.expected,
        "observed": r.verdict.observed,
        "evidence": sorted(r.evidence),
    }


def build(
    *,
    run_id: str,
    started: str,
    finished: str,
    inventory: str,
    catalog_digest: str,
    benchmarks: Mapping[str, str],
    selection: Selection,
    hosts: list[HostVerification],
) -> dict[str, Any]:
    results = [result_doc(r) for h in hosts for r in h.results]
    host_docs = []
    for h in hosts:
        mine = [d for d in results if d["host"] == h.host]
        host_docs.append(
            {
                "name": h.host,
                "groups": list(h.groups),
                "probed": h.outcome.observations is not None,
                "error": h.outcome.error,
                "facts": dict(h.outcome.observations.facts) if h.outcome.observations else {},
                "probe_elapsed_ms": h.outcome.raw.get("elapsed_ms"),
                "counts": _counts(mine),
                # every raw observation a verdict of this host used, stored once however many
                # results point at it (a `docker inspect` of all containers serves 30 controls)
                "observations": {k: v for r in h.results for k, v in r.evidence.items()},
            }
        )
    return {
        "schema": SCHEMA_ID,
        "casemate_version": __version__,
        "run_id": run_id,
        "started": started,
        "finished": finished,
        "inventory": inventory,
        "catalog": {"digest": catalog_digest, "benchmarks": dict(benchmarks)},
        "selection": selection.record(),
        "summary": _counts(results),
        "hosts": host_docs,
        "results": results,
    }


def with_waivers(
    doc: Mapping[str, Any], found: waivers.WaiverSet, today: date, *, when: str
) -> dict[str, Any]:
    """The report with its results judged against the waivers on `today` (waivers.apply), its
    counts made again, and what was applied recorded under `waivers`: the file, the day, `when`
    (`verify`, or `report`: a stored run re-judged when it was rendered) and the warnings."""
    groups = {h["name"]: h["groups"] for h in doc["hosts"]}
    results, warnings = waivers.apply(doc["results"], groups, found, today)
    hosts = [
        dict(h) | {"counts": _counts(r for r in results if r["host"] == h["name"])}
        for h in doc["hosts"]
    ]
    return dict(doc) | {
        "results": results,
        "hosts": hosts,
        "summary": _counts(results),
        "waivers": {
            "file": str(found.path),
            "applied_on": today.isoformat(),
            "when": when,
            "entries": len(found.waivers),
            "warnings": warnings,
        },
    }


def exit_code(doc: Mapping[str, Any]) -> int:
    """0 compliant; 1 an automated control failed or errored; 3 a host could not be probed. A
    waived control never counts. The default gate (gate.py has the narrower ones)."""
    return Gate().exit_code(doc)


def write_reports(directory: Path, doc: Mapping[str, Any]) -> tuple[Path, Path]:
    """report.json and junit.xml, 0600 (a directory made for them 0700; an existing one keeps its
    mode). `doc` is already redacted. One line of JSON: the C encoder writes it (an indented one
    goes through the pure-Python encoder, the largest per-host cost of a verify)."""
    report = private.write(directory / "report.json", json.dumps(doc, sort_keys=True) + "\n")
    xml = private.write(directory / "junit.xml", junit.render(doc))
    return report, xml
