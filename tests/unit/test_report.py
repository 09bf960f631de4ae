"""report.json follows its schema, junit.xml parses, and exit codes follow the findings."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection
from casemate.checks import builtin_kinds
from casemate.checks.base import Status, Verdict
from casemate.probe.collect import ProbeOutcome
from casemate.report import diff, document, junit, table
from casemate.verify import HostVerification, Result

from .obs import obs

KINDS = builtin_kinds()


def host(name: str, statuses: list[Status], *, probed: bool = True) -> HostVerification:
    catalog = load_catalog(None, KINDS)
    entries = [e for e in catalog.entries if e.control.automated][: len(statuses)]
    outcome = ProbeOutcome(
        obs({}) if probed else None,
        {"elapsed_ms": 12} if probed else {},
        None if probed else "cannot reach x",
    )
    results = tuple(
        Result(
            name,
            e,
            Verdict(s, "expected <&> text", f"observed {s}", ("stat:/x",)),
            {"stat:/x": {"exists": False}},
        )
        for e, s in zip(entries, statuses, strict=True)
    )
    return HostVerification(name, ("docker_hosts",), outcome, results)


def build(hosts: list[HostVerification]) -> dict[str, object]:
    return document.build(
        run_id="20261124T000000Z-verify-abc123",
        started="2026-11-24T00:00:00+00:00",
        finished="2026-11-24T00:00:05+00:00",
        inventory="inv.yml",
        catalog_digest="0" * 64,
        benchmarks={"cis-docker": "1.6.0"},
        selection=Selection(level=1),
        hosts=hosts,
    )


def test_document_validates_and_counts() -> None:
    doc = build(
        [host("a", [Status.PASS, Status.FAIL, Status.NOT_VERIFIABLE]), host("b", [Status.PASS])]
    )
    document.validate(doc)
    assert doc["summary"] == {
        "pass": 2,
        "fail": 1,
        "error": 0,
        "manual": 0,
        "not_applicable": 0,
        "not_verifiable": 1,
        "waived": 0,
    }
    first = doc["results"][0]  # type: ignore[index]
    assert set(first) >= {"host", "control_id", "status", "expected", "observed", "evidence"}
    # evidence names observations; each raw observation is stored once per host
    host_a = doc["hosts"][0]  # type: ignore[index]
    assert first["evidence"] == ["stat:/x"]
    assert host_a["observations"] == {"stat:/x": {"exists": False}}


def test_the_schema_is_a_valid_schema() -> None:
    jsonschema.validators.validator_for(document.schema()).check_schema(document.schema())


def test_schema_rejects_unknown_status() -> None:
    doc = build([host("a", [Status.PASS])])
    doc["results"][0]["status"] = "waived-ish"  # type: ignore[index]
    with pytest.raises(jsonschema.ValidationError):
        document.validate(doc)


@pytest.mark.parametrize(
    ("statuses", "probed", "code"),
    [
        ([Status.PASS, Status.NOT_APPLICABLE, Status.NOT_VERIFIABLE], True, 0),
        ([Status.PASS, Status.FAIL], True, 1),
        ([Status.ERROR], True, 1),
        ([Status.ERROR], False, 3),
    ],
)
def test_exit_code(statuses: list[Status], probed: bool, code: int) -> None:
    assert document.exit_code(build([host("a", statuses, probed=probed)])) == code


def test_junit_one_case_per_host_and_control() -> None:
    doc = build([host("a", [Status.PASS, Status.FAIL, Status.MANUAL]), host("b", [Status.ERROR])])
    root = ET.fromstring(junit.render(doc))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["a", "b"]
    cases = root.findall(".//testcase")
    assert len(cases) == 4
    assert suites[0].get("failures") == "1"
    assert len(root.findall(".//failure")) == 1
    assert len(root.findall(".//error")) == 1
    assert len(root.findall(".//skipped")) == 1
    assert "expected <&> text" in (cases[1].find("failure").text or "")  # type: ignore[union-attr]


def test_table_renders() -> None:
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(
        table.render(build([host("a", [Status.FAIL]), host("b", [Status.PASS], probed=False)]))
    )
    text = console.export_text()
    assert "findings" in text
    assert "NOT PROBED" in text


def test_harden_diffs_are_read_from_stored_events(tmp_path: Path) -> None:
    events = tmp_path / "artifacts" / "abc" / "job_events"
    events.mkdir(parents=True)

    def event(n: int, res: dict[str, object]) -> None:
        data = {
            "event": "runner_on_ok",
            "event_data": {"host": "n1", "task": f"task {n}", "res": res},
        }
        (events / f"{n}-x.json").write_text(json.dumps(data))

    event(
        10,
        {
            "diff": [
                {
                    "before": "{}\n",
                    "after": '{\n  "icc": false\n}\n',
                    "before_header": "/etc/docker/daemon.json",
                }
            ]
        },
    )
    event(
        2,
        {
            "diff": {
                "before": {"path": "/b", "state": "absent"},
                "after": {"path": "/b", "state": "directory"},
            }
        },
    )
    event(3, {"diff": [{"before": "same", "after": "same"}]})
    event(4, {"changed": False})
    found = diff.render(tmp_path / "artifacts")
    assert [h for h, _ in found] == ["n1: /b: state: absent -> directory", "n1: task 10"]
    assert '+  "icc": false' in found[1][1]
