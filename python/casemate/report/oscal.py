"""OSCAL 1.1 Assessment Results (JSON), built and validated with compliance-trestle's models.

Each host x control is an observation (its subject the host, its evidence the observation keys);
each failed or errored one is also a finding that targets the control id. Nothing in it comes from
the clock or a random source: every UUID is a version-5 UUID under casemate's fixed namespace of the
run id and the object's path (`RUN_ID/observation/HOST/CONTROL`), and every time is one of the run's
own (started, finished), so one run renders to the same bytes whenever it is rendered.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from casemate import __version__
from casemate.report.jsontext import canonical, indented

# The trestle models `build` imports when it first runs (report/formats.py: preload)
MODELS = ("trestle.oscal.assessment_results", "trestle.oscal.common")
OSCAL_VERSION = "1.1.3"  # what compliance-trestle 3.x models; the 1.1 line
NS = "https://casemate.dev/ns/oscal"  # a name for casemate's own props, never fetched
FINDING_STATUSES = frozenset({"fail", "error"})
# casemate's namespace for OSCAL UUIDs: uuid5(NAMESPACE_URL, "https://casemate.dev/ns/oscal/uuid"),
# written out so that it can never change with the code around it
NAMESPACE = uuid.UUID("b5449216-263a-57ad-bbd2-1d227c039e27")


def object_uuid(run_id: str, *path: str) -> str:
    """The UUID of one object of a run's assessment results: uuid5 of `RUN_ID/PATH...`."""
    return str(uuid.uuid5(NAMESPACE, "/".join([run_id, *path])))


def _id(doc: Mapping[str, Any], *parts: str) -> str:
    return object_uuid(str(doc["run_id"]), *parts)


def _prop(name: str, value: object) -> dict[str, Any]:
    # OSCAL values are non-empty and do not start or end with whitespace
    text = " ".join(str(value).split()) or "-"
    return {"name": name, "ns": NS, "value": text}


def _waived(r: Mapping[str, Any]) -> bool:
    return r.get("waiver") is not None or r["status"] == "waived"


def _observation(
    doc: Mapping[str, Any], r: Mapping[str, Any], tool: str, host: str
) -> dict[str, Any]:
    props = [
        _prop("control-id", r["control_id"]),
        _prop("benchmark", f"{r['benchmark']} {r['benchmark_version']}"),
        _prop("ref", r["ref"]),
        _prop("level", r["level"]),
        _prop("status", r["status"]),
    ]
    waiver = r.get("waiver") or {}
    props += [_prop(f"waiver-{k}", v) for k, v in sorted(waiver.items()) if v is not None]
    obs: dict[str, Any] = {
        "uuid": _id(doc, "observation", r["host"], r["control_id"]),
        "title": f"{r['host']}: {r['ref']} {r['title']}",
        "description": f"expected: {r['expected'] or '-'}\nobserved: {r['observed'] or '-'}",
        "props": props,
        "methods": ["TEST" if r["automated"] else "EXAMINE"],
        "types": ["finding" if r["status"] in FINDING_STATUSES else "control-objective"],
        "origins": [{"actors": [{"type": "tool", "actor-uuid": tool}]}],
        "subjects": [{"subject-uuid": host, "type": "inventory-item", "title": r["host"]}],
    }
    if r["evidence"]:
        obs["relevant-evidence"] = [
            {
                "href": "report.json",
                "description": f"raw observation {key!r} of {r['host']} (report.json: hosts[]"
                f".observations)",
            }
            for key in r["evidence"]
        ]
    obs["collected"] = doc["finished"]
    return obs


def _finding(doc: Mapping[str, Any], r: Mapping[str, Any], observation: str) -> dict[str, Any]:
    waiver = r.get("waiver") or {}
    finding: dict[str, Any] = {
        "uuid": _id(doc, "finding", r["host"], r["control_id"]),
        "title": f"{r['control_id']} on {r['host']}: {r['status']}",
        "description": f"{r['ref']} {r['title']}: expected {r['expected'] or '-'}; observed "
        f"{r['observed'] or '-'}",
        "props": [_prop("status", r["status"])],
        "target": {
            "type": "objective-id",
            "target-id": r["control_id"],
            "title": r["title"],
            "status": {
                "state": "not-satisfied",
                "reason": "fail" if r["status"] == "fail" else "other",
            },
        },
        "related-observations": [{"observation-uuid": observation}],
    }
    if waiver:
        finding["remarks"] = (
            f"waived: {waiver.get('reason')} (owner {waiver.get('owner')}, ticket "
            f"{waiver.get('ticket')}, expires {waiver.get('expires')})"
        )
    return finding


def _shape(r: Mapping[str, Any]) -> str:
    """A result without its host: two results of one shape make an observation (and a finding)
    that differ only where the host's name is written, in free-text fields (titles,
    descriptions) and in UUIDs (uuid5, valid by construction). One is valid if the other is."""
    return canonical({k: v for k, v in r.items() if k != "host"})


def build(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The assessment results of `doc` (the object under the document's `assessment-results`
    key, its keys in the order of trestle's models), validated with trestle's models: the
    document without its observations and findings, then each observation and finding, once for
    each shape of result (_shape: eight hosts in one state cost one validation of each control's
    observation, not eight). Raises trestle's validation error."""
    from trestle.oscal.assessment_results import (  # noqa: PLC0415 - 0.5 s; OSCAL output only
        AssessmentResults,
    )
    from trestle.oscal.common import Finding, Observation  # noqa: PLC0415 - as above

    tool = _id(doc, "tool")
    hosts = {h["name"]: _id(doc, "host", h["name"]) for h in doc["hosts"]}
    observations, findings = [], []
    shapes: set[str] = set()
    for r in doc["results"]:
        obs = _observation(doc, r, tool, hosts[r["host"]])
        observations.append(obs)
        finding = None
        if r["status"] in FINDING_STATUSES or _waived(r):
            finding = _finding(doc, r, obs["uuid"])
            findings.append(finding)
        shape = _shape(r)
        if shape not in shapes:
            shapes.add(shape)
            Observation.parse_obj(obs)
            if finding is not None:
                Finding.parse_obj(finding)
    controls = sorted({r["control_id"] for r in doc["results"]})
    benchmarks = sorted(doc["catalog"]["benchmarks"].items())
    version = str(doc.get("casemate_version") or __version__)
    result: dict[str, Any] = {
        "uuid": _id(doc, "result"),
        "title": f"casemate verify {doc['run_id']}",
        "description": f"CIS checks of {len(doc['hosts'])} host(s) from inventory "
        f"{doc['inventory']}, one probe round trip per host.",
        "start": doc["started"],
        "end": doc["finished"],
        "props": [
            _prop("run-id", doc["run_id"]),
            _prop("catalog-digest", doc["catalog"]["digest"]),
            *(_prop("benchmark", f"{b} {v}") for b, v in benchmarks),
            _prop("level", doc["selection"]["level"]),
            _prop("profile", doc["selection"]["profile"]),
        ],
        "local-definitions": {
            "components": [
                {
                    "uuid": tool,
                    "type": "software",
                    "title": "casemate",
                    "description": "casemate, the CIS hardening and verification toolkit that "
                    "made these observations.",
                    "props": [_prop("version", version)],
                    "status": {"state": "operational"},
                }
            ],
            "inventory-items": [
                {
                    "uuid": hosts[h["name"]],
                    "description": f"host {h['name']}",
                    "props": [
                        _prop("hostname", h["name"]),
                        *(_prop("group", g) for g in h["groups"]),
                        _prop("probed", str(h["probed"]).lower()),
                    ],
                }
                for h in doc["hosts"]
            ],
        },
        "reviewed-controls": {
            "control-selections": [
                {"include-controls": [{"control-id": c} for c in controls]}
                if controls
                else {"include-all": {}}
            ]
        },
    }
    skeleton: dict[str, Any] = {
        "uuid": _id(doc, "assessment-results"),
        "metadata": {
            "title": f"casemate verification {doc['run_id']}",
            "last-modified": doc["finished"],
            "version": version,
            "oscal-version": OSCAL_VERSION,
            "props": [
                _prop("tool", "casemate"),
                _prop("tool-version", version),
                _prop("catalog-digest", doc["catalog"]["digest"]),
            ],
        },
        "import-ap": {
            "href": "report.json",
            "remarks": "casemate has no OSCAL assessment plan: what was assessed is the "
            "catalog selection recorded in the run's report.json.",
        },
        "results": [result],
    }
    AssessmentResults.parse_obj(skeleton)
    # the parts validated one by one above, where the model has them (after reviewed-controls)
    if observations:
        result["observations"] = observations
    if findings:
        result["findings"] = findings
    return skeleton


def render(doc: Mapping[str, Any]) -> str:
    """The OSCAL JSON document: build's validated object under `assessment-results`, written as
    trestle writes its models (orjson, two-space indent)."""
    return indented({"assessment-results": build(doc)}) + "\n"
