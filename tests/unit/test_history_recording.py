"""Every verify and harden run is recorded in the history store, per run and per host x control,
from its run directory; `casemate history import RUN` records the same rows again without a
second copy. Bad store input (malformed URL, unreachable PostgreSQL, a newer schema) is one line
and exit 2 before any host is touched; a history write that fails after a run keeps the run whole
and says how to import it later. Against SQLite and a real PostgreSQL server alike."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from casemate import drift, verify
from casemate.history.record import digest, read_run
from casemate.history.schema import SCHEMA_VERSION, casemate_schema, host_runs, results, runs
from casemate.history.store import open_store

from .history_runs import SECRET, Answering, call
from .pg import Server


def rows(url: str, table: Any) -> list[dict[str, Any]]:
    store = open_store(url, Path("/nonexistent"))
    try:
        with store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]
    finally:
        store.close()


def verify_argv(state: Path, url: str, *more: str) -> list[str]:
    return [
        "--state-dir",
        str(state),
        "--db",
        url,
        "verify",
        "-i",
        "site.yml",
        "--level",
        "2",
        *more,
    ]


def test_a_verify_run_is_recorded_per_run_and_per_host_and_control(
    offline: list[str], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = call(capsys, *verify_argv(tmp_path / "state", db_url))
    assert "history:" not in err
    (run_dir,) = (tmp_path / "state" / "runs").glob("*-verify-*")
    report = json.loads((run_dir / "report.json").read_text())
    meta = json.loads((run_dir / "run.json").read_text())
    assert code == (1 if report["summary"]["fail"] else 0)
    (row,) = rows(db_url, runs)
    assert row["id"] == run_dir.name
    assert row["kind"] == "verify"
    assert row["outcome"] == "succeeded"
    assert row["catalog_digest"] == report["catalog"]["digest"]
    assert row["inventory_digest"] == digest(json.loads((run_dir / "inventory.json").read_text()))
    assert row["casemate_version"] == meta["casemate_version"]
    assert row["ansible_version"] == meta["ansible_version"] and row["ansible_version"]
    assert json.loads(row["command"])[-4:] == ["-i", "site.yml", "--level", "2"]
    assert {(h["host"], h["outcome"]) for h in rows(db_url, host_runs)} == {
        ("n1", "probed"), ("n2", "probed")
    }  # fmt: skip
    stored = {(r["host"], r["control_id"]): r for r in rows(db_url, results)}
    assert len(stored) == len(report["results"])
    seen = {h["name"]: h["observations"] for h in report["hosts"]}
    for r in report["results"]:
        mine = stored[(r["host"], r["control_id"])]
        assert (mine["status"], mine["expected"], mine["observed"]) == (
            r["status"], r["expected"], r["observed"]
        )  # fmt: skip
        assert mine["evidence_digest"] == digest({k: seen[r["host"]][k] for k in r["evidence"]})


def test_the_default_store_is_sqlite_in_the_state_directory_and_private(
    offline: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    call(capsys, "--state-dir", str(state), "verify", "-i", "site.yml")
    db = state / "history.sqlite3"
    assert db.stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700  # still casemate's own state directory
    assert len(rows(f"sqlite:///{db}", runs)) == 1


def test_a_harden_run_is_recorded_per_run_and_per_host(
    offline: list[str], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--state-dir", str(tmp_path / "s"), "--db", db_url, "harden", "-i", "site.yml"]
    code, _, err = call(capsys, *argv, "--controls", "cis_docker_2_2")
    assert code == 0, err
    (row,) = rows(db_url, runs)
    assert (row["kind"], row["outcome"], row["check_mode"]) == ("harden", "succeeded", False)
    assert json.loads(row["controls"]) == ["cis_docker_2_2"]
    hosts = {h["host"]: h for h in rows(db_url, host_runs)}
    assert set(hosts) == {"n1", "n2"}
    assert (hosts["n1"]["outcome"], hosts["n1"]["ok"], hosts["n1"]["changed"]) == (
        "succeeded", 5, 2
    )  # fmt: skip
    assert rows(db_url, results) == []  # harden judges no control: its verify does


def test_importing_a_run_twice_does_not_duplicate_it(
    offline: list[str], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    call(capsys, *verify_argv(state, db_url))
    before = (rows(db_url, runs), sorted(map(str, rows(db_url, results))))
    for _ in range(2):
        code, out, err = call(capsys, "--state-dir", str(state), "--db", db_url, "history",
                              "import", "latest-verify")  # fmt: skip
        assert code == 0, err
        assert out.startswith("recorded verify run ")
    after = (rows(db_url, runs), sorted(map(str, rows(db_url, results))))
    assert [r["id"] for r in after[0]] == [r["id"] for r in before[0]]
    assert after[1] == before[1]


def test_bad_history_store_input_is_one_line_and_exit_2_before_any_host_is_touched(
    offline: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres: Server
) -> None:
    newer = tmp_path / "newer.sqlite3"
    store = open_store(f"sqlite:///{newer}", tmp_path)
    with store.engine.begin() as conn:
        conn.execute(insert(casemate_schema),
                     [{"version": SCHEMA_VERSION + 1, "written_by": "9", "updated": datetime.now(UTC)}])  # fmt: skip
    store.close()
    gone = postgres.url("no_such_database", password=SECRET)
    cases = [
        ("postgresql://u@h:notaport/db", "malformed database URL"),
        ("oracle://u@h/db", "unsupported database 'oracle'"),
        (f"sqlite:///{tmp_path}/no/such/dir/h.sqlite3", "no such directory"),
        (gone, 'database "no_such_database" does not exist'),
        (f"postgresql://u:{SECRET}@/db?host={tmp_path}/nothing-listens", "could not open it"),
        (f"sqlite:///{newer}", f"has schema version {SCHEMA_VERSION + 1}, newer than casemate"),
    ]
    for url, message in cases:
        for command in (["verify", "-i", "site.yml"], ["harden", "-i", "site.yml"]):
            state = tmp_path / "state"
            code, out, err = call(capsys, "--state-dir", str(state), "--db", url, *command)
            assert code == 2, (url, err)
            assert err.count("\n") == 1 and err.startswith("casemate: error: "), err
            assert message in err, err
            assert SECRET not in err + out
            assert offline == []
            assert not (state / "runs").exists()  # no run started


def test_a_history_write_that_fails_keeps_the_run_and_says_how_to_import_it(
    offline: list[str],
    postgres: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store answers when the run starts and is gone when it ends (its database dropped
    mid-run): the run's exit code and record are what they would have been, one line says how
    to import it, and the import works once the store is back."""
    name = postgres.new_database()
    url = postgres.url(name)
    real = verify.run_verify

    def store_goes_away(**kwargs: Any) -> dict[str, Any]:
        doc = real(**kwargs, transport_for=lambda inv, host: Answering())
        postgres.admin(f"DROP DATABASE {name} WITH (FORCE)")
        return doc

    monkeypatch.setattr("casemate.verify.run_verify", store_goes_away)
    state = tmp_path / "state"
    code, out, err = call(capsys, *verify_argv(state, url))
    (run_dir,) = (state / "runs").glob("*-verify-*")
    report = json.loads((run_dir / "report.json").read_text())
    assert code == (1 if report["summary"]["fail"] else 0)  # the run's own code
    meta = json.loads((run_dir / "run.json").read_text())
    assert (meta["state"], meta["outcome"]) == ("finished", "succeeded")
    (line,) = [x for x in err.splitlines() if x.startswith("history:")]
    assert line.startswith(f"history: could not record run {run_dir.name}: ")
    assert line.endswith(f"; import it later with casemate history import {run_dir}")
    assert "report.json: " in out

    postgres.admin(f"CREATE DATABASE {name}")
    code, out, err = call(capsys, "--state-dir", str(state), "--db", url,
                          "history", "import", str(run_dir))  # fmt: skip
    assert code == 0, err
    assert [r["id"] for r in rows(url, runs)] == [run_dir.name]
    assert len(rows(url, results)) == len(report["results"])


def test_the_db_password_is_never_shown_or_recorded(
    offline: list[str], postgres: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres.url(postgres.new_database(), password=SECRET)  # trust: any password is let in
    state = tmp_path / "state"
    _, out, err = call(capsys, *verify_argv(state, url))
    _, out2, err2 = call(capsys, "--state-dir", str(state), "--db", url, "history", "import",
                         "latest")  # fmt: skip
    assert "postgresql+psycopg://casemate:***@" in out2
    assert SECRET not in out + err + out2 + err2
    (run_dir,) = (state / "runs").glob("*-verify-*")
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(), path
    assert SECRET not in json.dumps([rows(url, t) for t in (runs, host_runs, results)], default=str)


def test_a_run_directory_without_a_run_record_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "runs" / "20260101T000000Z-verify-abcdef").mkdir(parents=True)
    code, _, err = call(capsys, "--state-dir", str(tmp_path), "history", "import", "2026")
    assert code == 2
    assert err.startswith("casemate: error: no run matching '2026'")
    with pytest.raises(Exception, match="not a casemate run directory"):
        read_run(tmp_path / "runs" / "20260101T000000Z-verify-abcdef")


class Interrupting:
    """A host whose probe answer never comes: the user presses Ctrl-C."""

    def run(self, command: str) -> Any:
        raise KeyboardInterrupt


def test_an_interrupted_verify_is_recorded_as_canceled(
    offline: list[str],
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C: the run is sealed on disk as canceled, and the history store (opened before the
    run) holds it too, with the same outcome; exit 130."""
    monkeypatch.setattr(
        "casemate.verify.run_verify",
        functools.partial(verify.run_verify, transport_for=lambda inv, host: Interrupting()),
    )
    state = tmp_path / "state"
    code, _, err = call(capsys, *verify_argv(state, db_url))
    assert code == 130 and err.endswith("casemate: error: interrupted\n"), err
    (run_dir,) = (state / "runs").glob("*-verify-*")
    meta = json.loads((run_dir / "run.json").read_text())
    assert (meta["state"], meta["outcome"], meta["interrupted"]) == ("finished", "canceled", True)
    (row,) = rows(db_url, runs)
    assert (row["id"], row["kind"], row["outcome"]) == (run_dir.name, "verify", "canceled")
    assert row["finished"] is not None
    assert "history:" not in err


def test_an_interrupted_drift_is_recorded_as_canceled(
    offline: list[str],
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C during drift's probe: sealed on disk as canceled and held by the store; exit 130."""
    monkeypatch.setattr(
        "casemate.drift.run_drift",
        functools.partial(drift.run_drift, transport_for=lambda inv, host: Interrupting()),
    )
    state = tmp_path / "state"
    argv = ["--state-dir", str(state), "--db", db_url, "drift", "-i", "site.yml"]
    code, _, err = call(capsys, *argv)
    assert code == 130 and err.endswith("casemate: error: interrupted\n"), err
    (run_dir,) = (state / "runs").glob("*-drift-*")
    meta = json.loads((run_dir / "run.json").read_text())
    assert (meta["state"], meta["outcome"], meta["interrupted"]) == ("finished", "canceled", True)
    (row,) = rows(db_url, runs)
    assert (row["id"], row["kind"], row["outcome"]) == (run_dir.name, "drift", "canceled")
    assert "history:" not in err


def test_an_interrupted_harden_is_recorded_as_canceled_with_its_hosts(
    offline: list[str],
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(**kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("casemate.harden.run_playbook", interrupted)
    state = tmp_path / "state"
    argv = ["--state-dir", str(state), "--db", db_url, "harden", "-i", "site.yml"]
    code, _, err = call(capsys, *argv, "--controls", "cis_docker_2_2")
    assert code == 130, err
    (run_dir,) = (state / "runs").glob("*-harden-*")
    meta = json.loads((run_dir / "run.json").read_text())
    assert (meta["state"], meta["outcome"], meta["interrupted"]) == ("finished", "canceled", True)
    (row,) = rows(db_url, runs)
    assert (row["id"], row["kind"], row["outcome"]) == (run_dir.name, "harden", "canceled")
    assert {(h["host"], h["outcome"]) for h in rows(db_url, host_runs)} == {
        ("n1", "canceled"), ("n2", "canceled")
    }  # fmt: skip


def test_interrupted_again_while_recording_leaves_the_import_command(
    offline: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(**kwargs: Any) -> Any:
        raise KeyboardInterrupt

    def impatient(self: Any, run: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt  # the second Ctrl-C, while the store is written

    monkeypatch.setattr("casemate.harden.run_playbook", interrupted)
    monkeypatch.setattr("casemate.history.store.Store.record", impatient)
    # harden records through history/local.py's SQLite store when it can (no SQLAlchemy)
    monkeypatch.setattr("casemate.history.local.LocalStore.record", impatient)
    state = tmp_path / "state"
    argv = ["--state-dir", str(state), "harden", "-i", "site.yml", "--controls", "cis_docker_2_2"]
    code, _, err = call(capsys, *argv)
    assert code == 130
    (run_dir,) = (state / "runs").glob("*-harden-*")
    assert (
        f"history: run {run_dir.name} not recorded; import it later with casemate history "
        f"import {run_dir}\n" in err
    )
    assert err.endswith("casemate: error: interrupted\n")
