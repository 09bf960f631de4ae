"""`casemate history`: a control's timeline on a host (status changes with run ids and times,
when it first failed, when it was fixed and by which run) and `--regressions` since a date, as a
table or JSON, read from a recorded store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from casemate.history.store import open_store

from .test_history_recording import call
from .test_history_store import recorded


@pytest.fixture
def history(db_url: str, tmp_path: Path) -> list[str]:
    store = open_store(db_url, tmp_path)
    recorded(store)
    store.close()
    return ["--state-dir", str(tmp_path / "state"), "--db", db_url, "history"]


def test_a_control_s_timeline_as_json(
    history: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call(capsys, *history, "--host", "n1", "--control", "c1", "--format", "json")
    assert code == 0, err
    (line,) = json.loads(out)
    assert (line["host"], line["control_id"], line["status"]) == ("n1", "c1", "fail")
    assert [(c["run_id"], c["from"], c["to"]) for c in line["changes"]] == [
        ("v1", None, "fail"), ("v2", "fail", "pass"), ("v3", "pass", "fail")
    ]  # fmt: skip
    assert line["first_failed"] == {
        "run_id": "v1",
        "kind": "verify",
        "at": "2026-03-01T08:00:00+00:00",
    }
    (fix,) = line["fixes"]
    assert (fix["failed_since"]["run_id"], fix["seen_passing"]["run_id"], fix["hardened_by"]) == (
        "v1", "v2", "h1"
    )  # fmt: skip


def test_a_control_s_timeline_as_a_table(
    history: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = call(capsys, *history, "--host", "n1", "--control", "c1")
    assert code == 0
    rows = [line for line in out.splitlines() if " c1 " in line]
    assert len(rows) == 3
    assert "first failed" in rows[0] and "v1" in rows[0]
    assert "fail -> pass" in rows[1] and "fixed by harden h1" in rows[1]
    assert "pass -> fail" in rows[2] and "v3" in rows[2]


def test_regressions_since_a_date(history: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(
        capsys, *history, "--regressions", "--since", "2026-03-04", "--format", "json"
    )
    assert code == 0
    assert [(r["host"], r["control_id"], r["passed"]["run_id"], r["failed"]["run_id"])
            for r in json.loads(out)] == [("n1", "c1", "v2", "v3")]  # fmt: skip
    code, out, _ = call(capsys, *history, "--regressions", "--since", "2026-03-07")
    assert (code, out.strip()) == (0, "no regression: no control went from pass to fail")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last tuesday"], "--since must be a date (2026-01-31)"),
        (["--format", "yaml"], "--format must be one of table, json, not 'yaml'"),
    ],
)
def test_bad_history_options_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = call(capsys, "--state-dir", str(tmp_path), "history", *args)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err


def test_reading_a_history_that_does_not_exist_makes_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = call(capsys, "--state-dir", str(tmp_path / "state"), "history")
    assert code == 2
    assert (
        err
        == f"casemate: error: no history store in {tmp_path / 'state'} yet (no run recorded; or give --db)\n"
    )
    assert not (tmp_path / "state").exists()
