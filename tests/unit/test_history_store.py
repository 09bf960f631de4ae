"""The history store, against SQLite and a real PostgreSQL server alike: created at the schema
version, migrated when older, refused when newer; a run recorded twice is kept once; and the
timeline and regression queries on a recorded store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, inspect, select, text

from casemate.history import store as store_module
from casemate.history import timeline
from casemate.history.record import HostRun, ResultRow, RunRecord
from casemate.history.schema import SCHEMA_VERSION, casemate_schema, host_runs, results, runs
from casemate.history.store import HistoryError, Store, open_store

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(day: int) -> datetime:
    return T0 + timedelta(days=day)


def run(
    run_id: str,
    day: int,
    statuses: dict[tuple[str, str], str] | None = None,
    *,
    kind: str = "verify",
    controls: tuple[str, ...] = (),
    played: dict[str, int] | None = None,
    check_mode: bool = False,
) -> RunRecord:
    statuses = statuses or {}
    hosts = sorted({h for h, _ in statuses} | set(played or {}))
    return RunRecord(
        id=run_id,
        kind=kind,
        started=at(day),
        finished=at(day) + timedelta(minutes=1),
        outcome="succeeded",
        command=("casemate", kind),
        inventory="site.yml",
        inventory_digest="sha256:i",
        catalog_digest="sha256:c",
        casemate_version="0.1.0",
        ansible_version="2.18.0",
        level=1,
        profile="standard",
        check_mode=check_mode,
        controls=controls or tuple(sorted({c for _, c in statuses})),
        run_dir=f"/state/runs/{run_id}",
        hosts=tuple(
            HostRun(
                h,
                "succeeded" if played else "probed",
                None,
                {"changed": (played or {}).get(h, 0)} if played else None,
            )
            for h in hosts
        ),
        results=tuple(
            ResultRow(h, c, s, "expected", f"observed {s}", f"sha256:{s}")
            for (h, c), s in sorted(statuses.items())
        ),
    )


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Store:
    opened = open_store(db_url, tmp_path / "state")
    yield opened  # type: ignore[misc]
    opened.close()


def count(s: Store, table: object) -> int:
    with s.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


def test_a_new_store_is_created_at_the_schema_version(store: Store) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    with store.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
    assert tables >= {"casemate_schema", "runs", "host_runs", "results"}


def test_a_store_newer_than_the_code_is_refused(db_url: str, tmp_path: Path) -> None:
    open_store(db_url, tmp_path).close()
    s = open_store(db_url, tmp_path)
    with s.engine.begin() as conn:
        conn.execute(
            insert(casemate_schema),
            [{"version": SCHEMA_VERSION + 1, "written_by": "9.9.9", "updated": T0}],
        )
    s.close()
    with pytest.raises(HistoryError) as refused:
        open_store(db_url, tmp_path)
    message = str(refused.value)
    assert f"has schema version {SCHEMA_VERSION + 1}, newer than casemate" in message
    assert "upgrade casemate" in message
    assert "\n" not in message


def test_an_older_store_is_migrated_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(db_url, tmp_path).close()  # at version SCHEMA_VERSION
    steps: list[int] = []

    def add_note(conn: object) -> None:
        steps.append(SCHEMA_VERSION)
        conn.execute(text("ALTER TABLE runs ADD COLUMN note TEXT"))  # type: ignore[attr-defined]

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setitem(store_module.MIGRATIONS, SCHEMA_VERSION, add_note)
    migrated = open_store(db_url, tmp_path)
    assert migrated.schema_version() == SCHEMA_VERSION + 1
    with migrated.engine.connect() as conn:
        assert "note" in {c["name"] for c in inspect(conn).get_columns("runs")}
    migrated.close()
    open_store(db_url, tmp_path).close()  # already migrated: the step does not run again
    assert steps == [SCHEMA_VERSION]


def test_a_table_named_runs_that_is_not_casemate_s_is_refused(db_url: str, tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(store_module.parse_url(db_url))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE runs (id INTEGER)"))
    engine.dispose()
    with pytest.raises(HistoryError, match="not a casemate history store"):
        open_store(db_url, tmp_path)


def test_recording_a_run_twice_keeps_one_copy(store: Store) -> None:
    first = run("r1", 0, {("n1", "c1"): "fail", ("n1", "c2"): "pass"})
    store.record(first)
    store.record(first)
    assert store.run_ids() == ["r1"]
    assert (count(store, runs), count(store, host_runs), count(store, results)) == (1, 1, 2)
    fixed = run("r1", 0, {("n1", "c1"): "pass", ("n1", "c2"): "pass"})
    store.record(fixed)  # recorded again after the run dir changed: the new record wins
    assert {o.status for o in store.observed(host="n1")} == {"pass"}
    assert count(store, results) == 2


def recorded(store: Store) -> None:
    """n1/c1 fails, is hardened and passes, then regresses; n1/c2 always passes; n2/c1 fails
    twice and then passes, with only a check-mode harden in between (which changed nothing)."""
    store.record(run("v1", 0, {("n1", "c1"): "fail", ("n1", "c2"): "pass", ("n2", "c1"): "fail"}))
    store.record(run("h1", 1, kind="harden", controls=("c1",), played={"n1": 3}))
    store.record(run("v2", 2, {("n1", "c1"): "pass", ("n1", "c2"): "pass", ("n2", "c1"): "fail"}))
    store.record(run("h0", 3, kind="harden", controls=("c1",), played={"n2": 0}, check_mode=True))
    store.record(run("v3", 5, {("n1", "c1"): "fail", ("n1", "c2"): "pass", ("n2", "c1"): "pass"}))


def test_a_control_s_timeline_says_when_it_failed_and_which_run_fixed_it(store: Store) -> None:
    recorded(store)
    found = timeline.timelines(store.observed(host="n1", control="c1"), store.played(host="n1"))
    assert len(found) == 1
    line = found[0]
    assert [(c.run_id, c.was, c.now) for c in line.changes] == [
        ("v1", None, "fail"),
        ("v2", "fail", "pass"),
        ("v3", "pass", "fail"),
    ]
    assert line.first_failed is not None and line.first_failed.run_id == "v1"
    assert line.first_failed.at == at(0)
    assert [(f.failed_in.run_id, f.passed_in.run_id, f.hardened_by) for f in line.fixes] == [
        ("v1", "v2", "h1")
    ]
    assert line.now.run_id == "v3" and line.now.status == "fail"


def test_a_check_mode_harden_fixes_nothing(store: Store) -> None:
    recorded(store)
    (line,) = timeline.timelines(store.observed(host="n2"), store.played(host="n2"))
    assert [(c.run_id, c.now) for c in line.changes] == [("v1", "fail"), ("v3", "pass")]
    assert [(f.failed_in.run_id, f.passed_in.run_id, f.hardened_by) for f in line.fixes] == [
        ("v1", "v3", None)
    ]


def test_regressions_since_a_date(store: Store) -> None:
    recorded(store)
    found = timeline.regressions(store.observed(since=at(3)), since=at(3))
    assert [(r.host, r.control_id, r.passed_in.run_id, r.failed_in.run_id) for r in found] == [
        ("n1", "c1", "v2", "v3")
    ]
    assert timeline.regressions(store.observed(since=at(6)), since=at(6)) == []


def test_since_keeps_the_status_before_it(store: Store) -> None:
    recorded(store)
    rows = store.observed(host="n1", since=at(3))
    # v3 since the date, and for each control the last result before it (v2)
    assert sorted((o.run_id, o.control_id) for o in rows) == [
        ("v2", "c1"), ("v2", "c2"), ("v3", "c1"), ("v3", "c2")
    ]  # fmt: skip
    lines = {t.control_id: t for t in timeline.timelines(rows, since=at(3))}
    assert [(c.run_id, c.was, c.now) for c in lines["c1"].changes] == [("v3", "pass", "fail")]
    assert lines["c2"].changes == ()  # passing all along: no change since the date
    assert store.last_statuses(["n1"], before=at(5)) == {("n1", "c1"): "pass", ("n1", "c2"): "pass"}


def test_times_come_back_in_utc(store: Store) -> None:
    store.record(run("v1", 0, {("n1", "c1"): "pass"}))
    (o,) = store.observed()
    assert o.at == T0 and o.at.tzinfo is not None
