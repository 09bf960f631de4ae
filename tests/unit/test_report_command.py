"""`casemate report RUN --format FMT [-o FILE]` and `casemate verify --report-dir DIR --format ...`:
every format from a stored run, files 0600, the HTML compared with the previous run of the same
inventory; a bad format or option is one line and exit 2 before any host is touched."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from casemate.report import formats

from .test_cli import INV, call, call_out
from .test_report_formats import SARIF_SCHEMA
from .test_verify_record import verify


@pytest.fixture
def untouched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a host would have been touched")

    for target in ("ansible_runner.run", "casemate.runner.run_playbook", "casemate.verify.collect"):
        monkeypatch.setattr(target, boom)
    monkeypatch.setenv("CASEMATE_STATE_DIR", str(tmp_path / "state"))


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "-i", INV, "--format", "html"], "--format needs --report-dir"),
        (
            ["verify", "-i", INV, "--report-dir", "out", "--format", "html,pdf"],
            "unknown report format 'pdf' (one of json, junit, html, oscal, sarif, csv)",
        ),
        (["verify", "-i", INV, "--report-dir", "out", "--format", ","], "--format: name at least"),
        (["report", "latest", "--format", "pdf"], "--format must be one of table, json, junit"),
        (["report", "latest", "-o", "x.txt"], "-o needs a --format other than table"),
    ],
)
def test_bad_report_options_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, err = call(capsys, *argv)
    assert code == 2
    assert err.startswith("casemate: error: ") and message in err
    assert err.count("\n") == 1


UNWRITABLE = [
    ("/proc/casemate-reports", "cannot make the directory (No such file or directory)"),
    ("/dev/null/reports", "cannot make the directory (Not a directory)"),
]


@pytest.mark.usefixtures("untouched")
@pytest.mark.parametrize(("where", "why"), UNWRITABLE, ids=["proc", "under-a-file"])
def test_a_report_dir_that_cannot_be_written_is_bad_input_before_any_host(
    capsys: pytest.CaptureFixture[str], where: str, why: str
) -> None:
    """Not a traceback after every host was probed: one line, exit 2, nothing run."""
    code, err = call(capsys, "verify", "-i", INV, "--report-dir", where)
    assert (code, err.count("\n")) == (2, 1), err
    assert err == f"casemate: error: --report-dir {where}: {why}\n"


@pytest.mark.parametrize(("where", "why"), UNWRITABLE, ids=["proc", "under-a-file"])
@pytest.mark.parametrize(
    "argv",
    [
        ["report", "RUN", "--report-dir", "WHERE"],
        ["report", "RUN", "--format", "csv", "-o", "WHERE/report.csv"],
        ["evidence", "export", "RUN", "-o", "WHERE/evidence.tar.gz"],
        ["evidence", "keygen", "--out-dir", "WHERE"],
    ],
    ids=["report-dir", "report-o", "export-o", "keygen"],
)
def test_an_output_that_cannot_be_written_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    stored: tuple[Path, Path, Path],
    argv: list[str],
    where: str,
    why: str,
) -> None:
    state, _, second = stored
    given = [a.replace("RUN", second.name).replace("WHERE", where) for a in argv]
    code, err = call(capsys, "--state-dir", str(state), *given)
    assert (code, err.count("\n")) == (2, 1), err
    assert err.startswith("casemate: error: ") and f"{where}: {why}" in err, err


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two verify runs of one inventory in a state dir (read only by the tests)."""
    root = tmp_path_factory.mktemp("runs")
    first, _ = verify(root, ["n1", "n3"])  # n3 cannot be reached: its controls error
    second, _ = verify(root, ["n1"])
    return root / "state", first, second


def report(capsys: pytest.CaptureFixture[str], state: Path, *argv: str) -> tuple[int, str]:
    code, out, err = call_out(capsys, "--state-dir", str(state), "report", *argv)
    assert err == "", err
    return code, out


def test_report_writes_a_format_to_a_file_0600_with_the_changes_since_the_previous_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stored: tuple[Path, Path, Path]
) -> None:
    state, first, second = stored
    out = tmp_path / "new" / "report.html"
    code, printed = report(capsys, state, second.name, "--format", "html", "-o", str(out))
    assert code in (0, 1) and printed == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    assert f'<code id="previous-run">{first.name}</code>' in text
    assert f'<dd id="run-id">{second.name}</dd>' in text
    # the first run has no earlier one
    report(capsys, state, first.name, "--format", "html", "-o", str(out))
    assert "No earlier finished verify run" in out.read_text()


@pytest.mark.parametrize("fmt", formats.NAMES)
def test_report_prints_each_format(
    capsys: pytest.CaptureFixture[str], stored: tuple[Path, Path, Path], fmt: str
) -> None:
    state, first, _ = stored
    code, printed = report(capsys, state, first.name, "--format", fmt)
    assert code == 3  # n3 was not probed in that run
    doc = json.loads((first / "report.json").read_text())
    if fmt == "json":
        assert json.loads(printed) == doc
    if fmt == "sarif":
        log: dict[str, Any] = json.loads(printed)
        jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
        assert log["runs"][0]["invocations"][0]["executionSuccessful"] is False
    if fmt == "oscal":
        assert json.loads(printed)["assessment-results"]["metadata"]["oscal-version"] == "1.1.3"
    assert printed == formats.get(fmt).render(doc, None) or fmt == "html"


def test_report_dir_gets_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stored: tuple[Path, Path, Path]
) -> None:
    state, _, second = stored
    out = tmp_path / "reports"
    report(capsys, state, second.name, "--report-dir", str(out))
    assert sorted(p.name for p in out.iterdir()) == sorted(f.filename for f in formats.FORMATS)
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}
