"""`casemate history`: a control's timeline on a host (status changes with run ids and times,
when it first failed, when it was fixed and by which run) and `--regressions` since a date, as a
table or JSON, read from a recorded store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from casemate.history.store import open_store

from .test_history_recording import call
from .test_history_store import at, recorded, run


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
        (["--limit", "-1"], "--limit must be a number of runs (0: every run), not -1"),
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


@pytest.fixture
def long_history(db_url: str, tmp_path: Path) -> list[str]:
    """25 verify runs, two days apart, n1/c1 failing and passing in turn (fail first), and a
    harden run in the window that fixed it once (between v20 and v21)."""
    store = open_store(db_url, tmp_path)
    for n in range(25):
        store.record(run(f"v{n:02}", 2 * n, {("n1", "c1"): "fail" if n % 2 == 0 else "pass"}))
    store.record(run("h20", 41, kind="harden", controls=("c1",), played={"n1": 1}))
    store.close()
    return ["--state-dir", str(tmp_path / "state"), "--db", db_url, "history"]


def test_the_store_reads_only_the_last_runs_it_is_asked_for(db_url: str, tmp_path: Path) -> None:
    """The window is chosen by the database: the rows of older runs never come back."""
    store = open_store(db_url, tmp_path)
    try:
        recorded(store)
        assert {o.run_id for o in store.observed(last_runs=2)} == {"v2", "v3"}
        assert {o.run_id for o in store.observed(host="n2", last_runs=1)} == {"v3"}
        assert store.result_runs() == 3 and store.result_runs(since=at(3)) == 1
        # since a date: the window is of the runs since then; the result before it still comes
        since = store.observed(host="n1", control="c1", since=at(3), last_runs=1)
        assert [(o.run_id, o.status) for o in since] == [("v2", "pass"), ("v3", "fail")]
        assert [p.run_id for p in store.played(since=at(2))] == ["h0"]
    finally:
        store.close()


def test_the_table_shows_the_last_runs_and_says_how_many_there_are(
    long_history: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = call(capsys, *long_history)
    assert code == 0, err
    rows = [line for line in out.splitlines() if " c1 " in line]
    assert len(rows) == 20  # a change in each of the last 20 runs: v05..v24
    assert " v05 " in rows[0] and " v04 " not in out
    assert "fixed by harden h20" in out
    assert err == (
        "history: the results of the last 20 of 25 runs (--limit N for more, --limit 0 for every "
        "run)\n"
    )
    code, out, err = call(capsys, *long_history, "--limit", "0")
    assert (code, err) == (0, "")
    assert len([line for line in out.splitlines() if " c1 " in line]) == 25


def test_json_is_complete_unless_a_limit_is_given(
    long_history: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = call(capsys, *long_history, "--format", "json")
    assert (code, err) == (0, "")
    (line,) = json.loads(out)
    assert len(line["changes"]) == 25 and line["first_failed"]["run_id"] == "v00"
    code, out, err = call(capsys, *long_history, "--format", "json", "--limit", "3")
    assert code == 0 and "the last 3 of 25 runs" in err
    (line,) = json.loads(out)
    assert [c["run_id"] for c in line["changes"]] == ["v22", "v23", "v24"]
