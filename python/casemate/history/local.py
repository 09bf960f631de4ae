"""The default history store (SQLite in the state directory) opened and written through Python's
own sqlite3, without SQLAlchemy: importing SQLAlchemy costs a verify more controller CPU than
judging a host. Same file, same tables (columns.py), same rows as store.Store writes, same
refusals (a newer schema, a runs table that is not casemate's); reading (`casemate history`,
`--metrics-file`) and PostgreSQL go through store.py. A store that needs migrating is opened by
store.py, which holds the migrations."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from casemate import __version__, private
from casemate.errors import CasemateError
from casemate.history.columns import (
    CASEMATE_SCHEMA,
    HOST_RUNS,
    RESULTS,
    RUNS,
    SCHEMA_VERSION,
    Table,
    sqlite_ddl,
)
from casemate.history.record import RunRecord

FILE_NAME = "history.sqlite3"  # the default store, in the state directory
BUSY_TIMEOUT_S = 5.0  # what SQLAlchemy's SQLite driver waits for another writer too


class HistoryError(CasemateError):
    """The history store cannot be used (malformed URL, unreachable, newer schema, failed write).
    Opening it happens before any host is touched: exit 2, nothing changed."""

    exit_code = 2


class Recorder(Protocol):
    """What a run needs of the history store: record it, then close."""

    def record(self, run: RunRecord, *, recorded: datetime | None = None) -> None: ...

    def close(self) -> None: ...


def default_url(state: Path) -> str:
    return f"sqlite:///{state / FILE_NAME}"


def sqlite_path(raw: str | None, state: Path) -> Path | None:
    """The file of a plain SQLite store URL (`sqlite:///PATH`; None: the default store), or None
    for every other URL (store.parse_url judges those)."""
    if raw is None:
        return state / FILE_NAME
    head = "sqlite:///"
    if not raw.startswith(head) or any(ch in raw for ch in "?#%"):
        return None
    path = raw[len(head) :]
    return Path(path) if path and path != ":memory:" else None


def sqlite_file(path: Path, shown: str) -> None:
    """A new SQLite store is made 0600 (the directory must exist); an existing one is left as
    its owner made it."""
    if path.exists():
        if not path.is_file():
            raise HistoryError(f"--db {shown}: {path} is not a file")
        return
    if not path.parent.is_dir():
        raise HistoryError(f"--db {shown}: no such directory {path.parent}")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, private.FILE_MODE))
    except OSError as exc:
        raise HistoryError(f"--db {shown}: cannot create {path}: {exc.strerror}") from None


def _time(moment: datetime | None) -> str | None:
    """A datetime as SQLAlchemy's SQLite dialect stores it (its fields as given, no zone)."""
    if moment is None:
        return None
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}"
    )


def _insert(table: Table) -> str:
    names = table.names()
    return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def _row(table: Table, values: Mapping[str, Any]) -> tuple[Any, ...]:
    """A row in column order; a column not given is NULL, as SQLAlchemy's insert leaves it."""
    for name, value in values.items():
        if name not in table.names():
            raise HistoryError(f"history store: {table.name} has no column {name}")
        if isinstance(value, datetime):
            values = dict(values) | {name: _time(value)}
        elif isinstance(value, bool):
            values = dict(values) | {name: int(value)}
    return tuple(values.get(name) for name in table.names())


@dataclass(frozen=True, slots=True)
class LocalStore:
    """A SQLite history store at this casemate's schema version, written through sqlite3."""

    conn: sqlite3.Connection
    shown: str

    @contextmanager
    def _begin(self, doing: str) -> Iterator[sqlite3.Connection]:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.rollback()
                raise
            self.conn.commit()
        except sqlite3.Error as exc:
            said = str(exc).strip().splitlines()
            why = said[0] if said else type(exc).__name__
            raise HistoryError(f"history store {self.shown}: could not {doing}: {why}") from None

    def record(self, run: RunRecord, *, recorded: datetime | None = None) -> None:
        """Record one run, replacing what an earlier recording of the same run id left."""
        row = run.row(recorded)
        with self._begin(f"record run {run.id}") as conn:
            for table in (RESULTS, HOST_RUNS):
                conn.execute(f"DELETE FROM {table.name} WHERE run_id = ?", (run.id,))
            conn.execute(f"DELETE FROM {RUNS.name} WHERE id = ?", (run.id,))
            conn.execute(_insert(RUNS), _row(RUNS, row))
            conn.executemany(
                _insert(HOST_RUNS),
                [
                    _row(
                        HOST_RUNS,
                        {"run_id": run.id, "host": h.host, "outcome": h.outcome, "error": h.error}
                        | dict(h.counts or {}),
                    )
                    for h in run.hosts
                ],
            )
            conn.executemany(
                _insert(RESULTS),
                [
                    (
                        run.id,
                        r.host,
                        r.control_id,
                        r.status,
                        r.expected,
                        r.observed,
                        r.evidence_digest,
                    )
                    for r in run.results
                ],
            )

    def close(self) -> None:
        self.conn.close()


def open_local(path: Path, shown: str) -> LocalStore | None:
    """The SQLite store at `path`, created when empty, at this casemate's schema version; refused
    (HistoryError) when newer or not casemate's. None when it is older: store.open_store migrates
    it."""
    sqlite_file(path, shown)
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise HistoryError(f"history store {shown}: could not open it: {exc}") from None
    store = LocalStore(conn, shown)
    try:
        with store._begin("open it") as conn:
            if _ready(conn, shown):
                return store
    except BaseException:
        store.close()
        raise
    store.close()
    return None


def _ready(conn: sqlite3.Connection, shown: str) -> bool:
    """Whether the store is at this casemate's schema version (made now when empty)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if CASEMATE_SCHEMA.name not in tables:
        if RUNS.name in tables:
            raise HistoryError(
                f"history store {shown}: has a runs table but no casemate_schema: "
                "not a casemate history store"
            )
        for statement in sqlite_ddl():
            conn.execute(statement)
        conn.execute(
            _insert(CASEMATE_SCHEMA),
            _row(
                CASEMATE_SCHEMA,
                {
                    "version": SCHEMA_VERSION,
                    "written_by": __version__,
                    "updated": datetime.now(UTC),
                },
            ),
        )
        return True
    (found,) = conn.execute(f"SELECT max(version) FROM {CASEMATE_SCHEMA.name}").fetchone()
    version = int(found or 0)
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"history store {shown} has schema version {version}, newer than casemate "
            f"{__version__} knows ({SCHEMA_VERSION}): upgrade casemate on this controller"
        )
    return version == SCHEMA_VERSION


def open_recorder(raw: str | None, state: Path) -> Recorder:
    """The store a run is recorded in (`raw` a URL; None: SQLite in the state directory), opened
    as store.open_store opens it: through sqlite3 when it is a SQLite file at this schema
    version, else through SQLAlchemy (PostgreSQL, other URL forms, a store to migrate)."""
    if raw is None:
        private.state_dir(state)
    path = sqlite_path(raw, state)
    if path is not None:
        found = open_local(path, raw if raw is not None else default_url(state))
        if found is not None:
            return found
    from casemate.history.store import open_store  # noqa: PLC0415 - loads SQLAlchemy

    return open_store(raw, state)
