"""verify and drift record their run in the default (SQLite) history store without importing
SQLAlchemy (history/local.py): the store they make has the tables SQLAlchemy makes, a run they
record is the rows SQLAlchemy records, they refuse what store.py refuses with the same line, and a
store to migrate is left to store.py."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from casemate.history.columns import SCHEMA_VERSION
from casemate.history.local import FILE_NAME, LocalStore, open_local, open_recorder
from casemate.history.store import HistoryError, Store, open_store

from .test_history_store import at, run

ROOT = Path(__file__).resolve().parents[2]
RECORDED_AT = datetime(2026, 3, 9, 12, 30, 1, 250, tzinfo=UTC)


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (and every table's and index's DDL), as SQLite holds them."""
    conn = sqlite3.connect(path)
    try:
        found: dict[str, list[tuple[object, ...]]] = {
            "sqlite_master": sorted(
                conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"), key=repr
            )
        }
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            found[table] = sorted(conn.execute(f"SELECT * FROM {table}"), key=repr)
        return found
    finally:
        conn.close()


def records() -> list[object]:
    """A verify run (two hosts' verdicts) and a harden run (Ansible's counts per host)."""
    statuses = {("n1", "cis_docker_2_2"): "pass", ("n2", "cis_docker_2_2"): "fail"}
    return [
        run("r1-verify", 1, statuses),
        run("r2-harden", 2, kind="harden", controls=("cis_docker_2_2",), played={"n1": 3}),
        run("r3-verify", 3, {("n1", "cis_docker_2_2"): "pass"}, check_mode=True),
    ]


def test_the_store_made_without_sqlalchemy_has_the_tables_sqlalchemy_makes(
    tmp_path: Path,
) -> None:
    open_store(f"sqlite:///{tmp_path / 'a.sqlite3'}", tmp_path).close()
    made = open_local(tmp_path / "b.sqlite3", "b")
    assert made is not None
    made.close()
    a, b = dump(tmp_path / "a.sqlite3"), dump(tmp_path / "b.sqlite3")
    assert a["sqlite_master"] == b["sqlite_master"]
    assert (
        [r[0] for r in a["casemate_schema"]]
        == [r[0] for r in b["casemate_schema"]]
        == [SCHEMA_VERSION]
    )


def test_a_run_recorded_without_sqlalchemy_is_the_rows_sqlalchemy_records(tmp_path: Path) -> None:
    by_sqlalchemy = open_store(f"sqlite:///{tmp_path / 'a.sqlite3'}", tmp_path)
    by_sqlite3 = open_local(tmp_path / "b.sqlite3", "b")
    assert by_sqlite3 is not None
    for store in (by_sqlalchemy, by_sqlite3):
        for record in records():
            store.record(record, recorded=RECORDED_AT)  # type: ignore[arg-type]
        store.record(records()[0], recorded=RECORDED_AT)  # type: ignore[arg-type]
        store.close()
    a, b = dump(tmp_path / "a.sqlite3"), dump(tmp_path / "b.sqlite3")
    del a["casemate_schema"], b["casemate_schema"]  # each says when it was made
    assert a == b
    assert len(a["results"]) == 3 and len(a["host_runs"]) == 4
    # and read back through SQLAlchemy, the store written by sqlite3 answers the same
    read = [
        open_store(f"sqlite:///{tmp_path / name}", tmp_path) for name in ("a.sqlite3", "b.sqlite3")
    ]
    try:
        answers = [(s.run_ids(), s.observed(), s.played(), s.observed(since=at(2))) for s in read]
    finally:
        for s in read:
            s.close()
    assert answers[0] == answers[1]
    assert answers[1][0] == ["r1-verify", "r2-harden", "r3-verify"]


@pytest.mark.parametrize("schema", ["newer", "not_casemate"])
def test_the_store_refuses_what_store_py_refuses_with_the_same_line(
    tmp_path: Path, schema: str
) -> None:
    path = tmp_path / FILE_NAME
    conn = sqlite3.connect(path)
    if schema == "newer":
        conn.execute(
            "CREATE TABLE casemate_schema (version INTEGER, written_by TEXT, updated TEXT)"
        )
        conn.execute(
            "INSERT INTO casemate_schema VALUES (?, '9.9.9', '2026-01-01')", (SCHEMA_VERSION + 1,)
        )
    else:
        conn.execute("CREATE TABLE runs (id TEXT)")
    conn.commit()
    conn.close()
    url = f"sqlite:///{path}"
    with pytest.raises(HistoryError) as by_sqlalchemy:
        open_store(url, tmp_path)
    with pytest.raises(HistoryError) as by_sqlite3:
        open_recorder(url, tmp_path)
    with pytest.raises(HistoryError) as default:
        open_recorder(None, tmp_path)
    assert str(by_sqlite3.value) == str(by_sqlalchemy.value) == str(default.value)
    assert "\n" not in str(by_sqlite3.value)


def test_a_store_to_migrate_is_opened_by_store_py(tmp_path: Path) -> None:
    open_store(None, tmp_path).close()
    conn = sqlite3.connect(tmp_path / FILE_NAME)
    conn.execute("DELETE FROM casemate_schema")  # version 0: older than the code
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError) as by_sqlalchemy:
        open_store(None, tmp_path)
    with pytest.raises(HistoryError) as by_recorder:
        open_recorder(None, tmp_path)
    assert str(by_recorder.value) == str(by_sqlalchemy.value)
    assert "no migration from schema version 0" in str(by_recorder.value)


def test_a_postgresql_or_unusual_url_is_opened_by_store_py(tmp_path: Path) -> None:
    plain = open_recorder(None, tmp_path)
    assert isinstance(plain, LocalStore)
    plain.close()
    with pytest.raises(
        HistoryError, match=r"^history store postgresql\+psycopg://casemate@127\.0\.0\.1:1/x"
    ):
        open_recorder("postgresql://casemate@127.0.0.1:1/x?connect_timeout=1", tmp_path)
    aside = open_recorder(f"sqlite:///{tmp_path / FILE_NAME}?timeout=3", tmp_path)
    assert isinstance(aside, Store)
    aside.close()


VERIFY = """
import functools, sys
sys.path.insert(0, sys.argv[1])
from tests.unit.history_runs import Answering, site
from tests.unit.locks import every_host_free
import casemate.hostlock, casemate.runner, casemate.verify
from casemate import cli
casemate.runner.resolve_inventory = lambda path, state: site()
casemate.verify.run_verify = functools.partial(
    casemate.verify.run_verify, transport_for=lambda inventory, host: Answering()
)
casemate.hostlock.acquire = every_host_free
casemate.hostlock.release = lambda *a, **k: {}
sys.argv = ["casemate", *sys.argv[2:]]
try:
    cli.main(sys.argv[1:])
except SystemExit as done:
    assert done.code in (0, 1, None), done.code
print("LOADED:" + ",".join(sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy"})))
"""


def _run_without_sqlalchemy(argv: list[str]) -> None:
    """casemate with `argv` in a fresh interpreter (no CASEMATE_DB): it succeeds and never
    imports SQLAlchemy."""
    env = {k: v for k, v in os.environ.items() if k != "CASEMATE_DB"}
    done = subprocess.run(
        [sys.executable, "-c", VERIFY, str(ROOT), *argv],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "LOADED:"


def test_verify_records_its_run_without_importing_sqlalchemy(tmp_path: Path) -> None:
    state = tmp_path / "state"
    argv = ["--state-dir", str(state), "verify", "-i", "site.yml", "--level", "2"]
    _run_without_sqlalchemy(argv)
    (run_dir,) = (state / "runs").glob("*-verify-*")
    report = json.loads((run_dir / "report.json").read_text())
    store = open_store(None, state)
    try:
        assert store.run_ids() == [run_dir.name]
        assert len(store.observed()) == len(report["results"]) > 0
    finally:
        store.close()


def test_harden_records_its_runs_without_importing_sqlalchemy(tmp_path: Path) -> None:
    """`harden --only-drifted` on hosts where nothing drifted: the verify before and the harden
    run (which starts no ansible-playbook) are both recorded, and SQLAlchemy is never loaded."""
    state = tmp_path / "state"
    argv = ["--state-dir", str(state), "harden", "-i", "site.yml", "--only-drifted"]
    argv += ["--controls", "cis_docker_2_2"]
    _run_without_sqlalchemy(argv)
    (harden_dir,) = (state / "runs").glob("*-harden-*")
    (verify_dir,) = (state / "runs").glob("*-verify-*")
    assert json.loads((harden_dir / "run.json").read_text())["playbook_runs"] == 0
    store = open_store(None, state)
    try:
        assert sorted(store.run_ids()) == sorted([verify_dir.name, harden_dir.name])
    finally:
        store.close()
