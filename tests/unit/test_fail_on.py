"""CI gates and waivers at the command line: `--fail-on` chooses which findings make the exit
status 1 (a waived control never does); a bad waiver file or gate is one line and exit 2 before any
host is touched; `report` re-judges a stored run against a waiver file and says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from casemate import cli
from casemate.catalog.select import Selection
from casemate.checks.base import Status, Verdict
from casemate.errors import BadInputError
from casemate.gate import Gate, parse_fail_on
from casemate.probe.collect import ProbeOutcome
from casemate.report import document
from casemate.rundir import new_run
from casemate.verify import HostVerification, Result

from .obs import obs
from .test_waivers import CATALOG, ENTRY

BENCHMARKS = CATALOG.benchmarks()
INV = str(Path(__file__).parent.parent / "fixtures" / "inventories" / "two_nodes.yml")


@pytest.fixture(autouse=True)
def no_host_is_touched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a host would have been touched")

    monkeypatch.setattr("ansible_runner.run", boom)
    monkeypatch.setattr("casemate.harden.run_playbook", boom)
    monkeypatch.setattr("casemate.verify.collect", boom)
    monkeypatch.setattr("casemate.probe.reach.run_everywhere", boom)
    monkeypatch.setenv("CASEMATE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # no casemate-waivers.yml of the checkout is picked up


def doc_of(findings: dict[str, Status]) -> dict[str, Any]:
    """A report whose host has the given verdicts (control id -> status)."""
    results = tuple(
        Result("node-1", e, Verdict(findings[e.id], "x", "y"), {})
        for e in CATALOG.entries
        if e.id in findings
    )
    h = HostVerification("node-1", ("docker_hosts",), ProbeOutcome(obs({}), {}), results)
    return document.build(
        run_id="20261205T000000Z-verify-abc123",
        started="2026-12-05T00:00:00+00:00",
        finished="2026-12-05T00:00:05+00:00",
        inventory="inv.yml",
        catalog_digest="0" * 64,
        benchmarks=BENCHMARKS,
        selection=Selection(level=2),
        hosts=[h],
    )


LEVEL2_DOCKER = "cis_docker_2_13"  # level 2
LEVEL1_DOCKER = "cis_docker_2_2"
LEVEL1_HOST = "cm_host_2_1"


@pytest.mark.parametrize(
    ("spec", "findings", "code"),
    [
        ("any", {LEVEL2_DOCKER: Status.FAIL}, 1),
        ("level1", {LEVEL2_DOCKER: Status.FAIL}, 0),
        ("level1", {LEVEL2_DOCKER: Status.FAIL, LEVEL1_DOCKER: Status.ERROR}, 1),
        ("benchmark:cis-docker", {LEVEL1_HOST: Status.FAIL}, 0),
        ("benchmark:casemate-host", {LEVEL1_HOST: Status.FAIL}, 1),
        ("benchmark:cis-docker,level1", {LEVEL2_DOCKER: Status.FAIL, LEVEL1_HOST: Status.FAIL}, 0),
        ("benchmark:cis-docker,level1", {LEVEL1_DOCKER: Status.FAIL}, 1),
        ("benchmark:cis-docker,benchmark:casemate-host", {LEVEL1_HOST: Status.FAIL}, 1),
        ("any", {LEVEL1_DOCKER: Status.WAIVED}, 0),
        ("any", {LEVEL1_DOCKER: Status.NOT_VERIFIABLE, LEVEL2_DOCKER: Status.MANUAL}, 0),
    ],
)
def test_the_gate_fails_only_on_the_findings_it_names(
    spec: str, findings: dict[str, Status], code: int
) -> None:
    assert parse_fail_on(spec, BENCHMARKS).exit_code(doc_of(findings)) == code


def test_the_default_gate_is_what_verify_always_did() -> None:
    doc = doc_of({LEVEL2_DOCKER: Status.FAIL})
    assert parse_fail_on("any", BENCHMARKS) == Gate()
    assert document.exit_code(doc) == Gate().exit_code(doc) == 1


def test_an_unprobed_host_is_exit_3_whatever_the_gate() -> None:
    doc = doc_of({LEVEL2_DOCKER: Status.FAIL})
    doc["hosts"][0]["probed"] = False
    assert parse_fail_on("benchmark:casemate-host", BENCHMARKS).exit_code(doc) == 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "--fail-on: give any, level1 or benchmark:NAME"),
        ("level3", "--fail-on: unknown term 'level3' (use any, level1 or benchmark:NAME)"),
        ("benchmark:cis-dokcer", "--fail-on: unknown benchmark 'cis-dokcer' (known: "),
    ],
)
def test_a_bad_gate_is_bad_input(spec: str, message: str) -> None:
    with pytest.raises(BadInputError) as err:
        parse_fail_on(spec, BENCHMARKS)
    assert message in str(err.value)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(list(argv))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


BAD_FILES = [
    ("waivers: [\n", "waivers.yml:2: not YAML:"),
    (
        ENTRY.replace("control: cis_docker_2_2", "control: cis_docker_2_22"),
        "waivers.yml:2: entry 1: control: unknown control 'cis_docker_2_22'",
    ),
    (
        ENTRY.replace("2026-12-31", "soon"),
        "waivers.yml:7: entry 1: expires: not a date (YYYY-MM-DD): 'soon'",
    ),
]


@pytest.mark.parametrize("command", ["harden", "verify"])
@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_a_bad_waiver_file_is_one_line_and_exit_2_before_any_host(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str, text: str, message: str
) -> None:
    (tmp_path / "waivers.yml").write_text(text)
    code, _, err = run(capsys, command, "-i", INV, "--waivers", str(tmp_path / "waivers.yml"))
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert err.startswith("casemate: error: ")
    assert message in err


@pytest.mark.parametrize("command", ["harden", "verify"])
def test_the_default_waiver_file_is_read_from_the_working_directory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    (tmp_path / "casemate-waivers.yml").write_text("waivers: [\n")
    code, _, err = run(capsys, command, "-i", INV)
    assert (code, err.count("\n")) == (2, 1)
    assert "casemate-waivers.yml:2: not YAML" in err
    code, _, err = run(capsys, command, "-i", "/no/inventory.yml", "--no-waivers")
    # --no-waivers: the file is not read; what is wrong now is the inventory
    assert err == "casemate: error: inventory /no/inventory.yml: no such file or directory\n"


@pytest.mark.parametrize(
    "args",
    [
        ["--fail-on", "level9"],
        ["--waivers", "/no/such.yml"],
        ["--waivers", "/no/such.yml", "--no-waivers"],
    ],
)
def test_bad_gate_or_waiver_options_on_verify_are_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, _, err = run(capsys, "verify", "-i", INV, *args)
    assert (code, err.count("\n")) == (2, 1), err


def stored_verify(state: Path, findings: dict[str, Status]) -> str:
    stored = new_run(state, "verify")
    stored.write_json("run.json", {"kind": "verify", "state": "finished", "outcome": "succeeded"})
    document.write_reports(stored.path, doc_of(findings))
    return stored.id


def test_report_re_judges_a_stored_run_against_a_waiver_file_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run_id = stored_verify(tmp_path / "state", {LEVEL1_DOCKER: Status.FAIL})
    code, _, _ = run(capsys, "report", run_id)
    assert code == 1
    waiver = tmp_path / "w.yml"
    waiver.write_text(ENTRY.replace("node-1]", "'node-*']").replace("2026-12-31", "2999-01-01"))
    code, out, err = run(capsys, "report", run_id, "--waivers", str(waiver), "--format", "json")
    assert code == 0
    doc = json.loads(out)
    document.validate(doc)
    assert doc["results"][0]["status"] == "waived"
    assert doc["results"][0]["judged"] == "fail"
    assert doc["waivers"]["when"] == "report"
    assert f"waivers: {waiver} (1 entries, 0 expired)" in err
    code, out, _ = run(capsys, "report", run_id, "--waivers", str(waiver))
    assert "(re-judged when this report was rendered, not at the run)" in " ".join(out.split())
    # the stored run itself is unchanged
    stored = json.loads(next((tmp_path / "state" / "runs").glob("*/report.json")).read_text())
    assert stored["results"][0]["status"] == "fail"


def test_report_gates_a_stored_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_id = stored_verify(tmp_path / "state", {LEVEL2_DOCKER: Status.FAIL})
    assert run(capsys, "report", run_id)[0] == 1
    code, _, err = run(capsys, "report", run_id, "--fail-on", "level1")
    assert code == 0
    assert "--fail-on level1: 0 finding(s) count" in err
