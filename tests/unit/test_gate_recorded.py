"""The `--fail-on` gate is part of the record: verify writes the gate it applied and the exit status
it gave (with why) into run.json and the report, `casemate report` into the reports it renders
(`when: report`), and an evidence bundle carries it, so an auditor reading the run needs nothing
else to tell why the exit code was what it was."""

from __future__ import annotations

import functools
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from casemate import verify as verifying
from casemate.report import document

from .history_runs import call
from .test_verify import Down

# level 2, on the recorded answer: cis_docker_2_12 (level 2) fails, cis_docker_2_2 passes
CONTROLS = "cis_docker_2_12,cis_docker_2_2"


def verify(
    capsys: pytest.CaptureFixture[str], state: Path, *more: str
) -> tuple[int, str, dict[str, Any], dict[str, Any]]:
    argv = ["--state-dir", str(state), "verify", "-i", "site.yml", "--level", "2"]
    code, _, err = call(capsys, *argv, "--controls", CONTROLS, *more)
    run = max((state / "runs").glob("*-verify-*"), key=lambda p: p.stat().st_mtime_ns)
    meta = json.loads((run / "run.json").read_text())
    report = json.loads((run / "report.json").read_text())
    return code, err, meta, report


@pytest.mark.parametrize(
    ("fail_on", "code", "findings", "not_counted", "why"),
    [
        ("any", 1, 2, 0, "2 finding(s) the gate counts, of 1 control(s)"),
        ("level1", 0, 0, 2, "no finding the gate counts"),
        ("benchmark:cis-docker", 1, 2, 0, "2 finding(s) the gate counts, of 1 control(s)"),
    ],
)
def test_verify_records_the_gate_and_the_exit_status_it_gave(
    offline: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    fail_on: str,
    code: int,
    findings: int,
    not_counted: int,
    why: str,
) -> None:
    exited, _, meta, report = verify(capsys, tmp_path / "state", "--fail-on", fail_on)
    assert exited == code
    gate = meta["gate"]
    assert gate == report["gate"]  # run.json and the report say the same
    document.validate(report)
    assert gate["fail_on"] == fail_on and gate["when"] == "verify"
    assert gate["exit_code"] == code
    assert (gate["findings"], gate["findings_not_counted"]) == (findings, not_counted)
    assert gate["controls"] == (["cis_docker_2_12"] if findings else [])
    assert gate["why"] == why
    assert gate["level1"] == (fail_on == "level1")
    assert gate["benchmarks"] == (["cis-docker"] if fail_on.startswith("benchmark:") else [])


def test_an_unprobed_host_is_recorded_as_the_reason_for_exit_3(
    offline: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "casemate.verify.run_verify",
        functools.partial(verifying.run_verify, transport_for=lambda inv, host: Down()),
    )
    exited, _, meta, report = verify(capsys, tmp_path / "state", "--fail-on", "level1")
    assert exited == 3
    assert meta["gate"]["exit_code"] == 3 == report["gate"]["exit_code"]
    assert meta["gate"]["why"] == "2 host(s) could not be probed: n1, n2"


def test_report_records_the_gate_it_applied_in_what_it_renders(
    offline: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert verify(capsys, state)[0] == 1
    stored = next((state / "runs").glob("*-verify-*"))
    before = (stored / "run.json").read_bytes()
    base = ["--state-dir", str(state), "report", "latest-verify"]
    code, out, err = call(capsys, *base, "--fail-on", "level1", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    document.validate(doc)
    assert doc["gate"]["fail_on"] == "level1" and doc["gate"]["when"] == "report"
    assert doc["gate"]["exit_code"] == 0 and doc["gate"]["findings_not_counted"] == 2
    assert "--fail-on level1: 0 finding(s) count" in err
    code, _, _ = call(capsys, *base, "--report-dir", str(tmp_path / "out"))
    assert code == 1
    written = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (written["gate"]["fail_on"], written["gate"]["exit_code"]) == ("any", 1)
    assert (
        written["gate"]["when"] == "verify"
    )  # the same gate gave the same: verify's record stands
    assert written == json.loads((stored / "report.json").read_text())
    assert (stored / "run.json").read_bytes() == before  # the run's own record is never rewritten


def test_the_evidence_bundle_carries_the_gate(
    offline: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    _, _, meta, _ = verify(capsys, state, "--fail-on", "level1")
    out = tmp_path / "e.tar.gz"
    code, _, err = call(
        capsys, "--state-dir", str(state), "evidence", "export", "latest-verify", "-o", str(out)
    )
    assert code == 0, err
    with tarfile.open(out) as tar:
        manifest = tar.extractfile("manifest.json")
        assert manifest is not None
        predicate = json.loads(manifest.read())["predicate"]
        report = tar.extractfile("reports/report.json")
        assert report is not None
        bundled = json.loads(report.read())
    assert predicate["run"]["gate"] == meta["gate"] == bundled["gate"]
    assert predicate["run"]["gate"]["fail_on"] == "level1"
