"""The history store: opened (and created or migrated) before a run touches any host, written
after it, read by `casemate history`.

One SQLAlchemy Core schema (schema.py, built from columns.py) for both back ends: SQLite in the
state directory by default, PostgreSQL by URL for several controllers; local.py writes a SQLite
store at this schema version without SQLAlchemy. A URL is never shown with its password.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from casemate import __version__, private
from casemate.history.local import FILE_NAME, HistoryError, default_url, sqlite_file
from casemate.history.record import RunRecord
from casemate.history.schema import (
    SCHEMA_VERSION,
    casemate_schema,
    host_runs,
    metadata,
    results,
    runs,
)
from casemate.redact import Redactor

__all__ = ["FILE_NAME", "HistoryError", "Observed", "Played", "Store", "open_store"]

ENV = "CASEMATE_DB"
CONNECT_TIMEOUT_S = 10  # an unreachable PostgreSQL answers within this, before any host is touched
# pg_advisory_xact_lock key: two controllers creating or migrating one store take turns
_LOCK_KEY = 0x63617365  # "case"


# Steps from one schema version to the next, run in order when an older store is opened:
# MIGRATIONS[n] takes a store from version n to n + 1 (none yet: version 1 is the first).
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def shown(url: URL | str) -> str:
    """A URL as every message and record shows it: without its password."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    return Redactor().text(url)


def parse_url(raw: str) -> URL:
    """A database URL casemate can use, or one line saying why not. `postgresql://` (and
    `postgres://`) mean PostgreSQL through psycopg 3, the driver casemate ships with."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:
        raise HistoryError(f"--db {shown(raw)}: malformed database URL ({exc})") from None
    backend, _, driver = url.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if backend == "postgresql":
        if driver not in ("", "psycopg"):
            raise HistoryError(
                f"--db {shown(url)}: use the psycopg driver (postgresql+psycopg://), not '{driver}'"
            )
        if not url.database:
            raise HistoryError(f"--db {shown(url)}: names no database")
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise HistoryError(f"--db {shown(url)}: use sqlite:///PATH, not the '{driver}' driver")
        if not url.database or url.database == ":memory:":
            raise HistoryError(f"--db {shown(url)}: an in-memory store keeps nothing; give a file")
        return url.set(drivername="sqlite")
    raise HistoryError(
        f"--db {shown(url)}: unsupported database '{url.drivername}' (sqlite or postgresql)"
    )


@dataclass(frozen=True, slots=True)
class Observed:
    """One result of one run, as `casemate history` reads it back."""

    run_id: str
    kind: str
    at: datetime  # when the run started (UTC)
    host: str
    control_id: str
    status: str
    expected: str
    observed: str
    evidence_digest: str


@dataclass(frozen=True, slots=True)
class Played:
    """One host in one harden run."""

    run_id: str
    at: datetime
    host: str
    outcome: str
    changed: int
    controls: tuple[str, ...]
    check_mode: bool


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time casemate stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _why(exc: BaseException, url: URL) -> str:
    """The first line of what the driver said, never the password."""
    inner = getattr(exc, "orig", None) or exc
    said = str(inner).strip().splitlines()
    line = said[0] if said else type(inner).__name__
    if url.password:
        line = line.replace(str(url.password), "***")
    return Redactor().text(line)


@dataclass(frozen=True, slots=True)
class Store:
    engine: Engine
    url: URL

    @property
    def shown(self) -> str:
        return shown(self.url)

    @contextmanager
    def _begin(self, doing: str) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise HistoryError(
                f"history store {self.shown}: could not {doing}: {_why(exc, self.url)}"
            ) from None

    def record(self, run: RunRecord, *, recorded: datetime | None = None) -> None:
        """Record one run, replacing what an earlier recording of the same run id left."""
        row = run.row(recorded)
        with self._begin(f"record run {run.id}") as conn:
            for table in (results, host_runs):
                conn.execute(delete(table).where(table.c.run_id == run.id))
            conn.execute(delete(runs).where(runs.c.id == run.id))
            conn.execute(insert(runs), [row])
            if run.hosts:
                conn.execute(
                    insert(host_runs),
                    [
                        {"run_id": run.id, "host": h.host, "outcome": h.outcome, "error": h.error}
                        | dict(h.counts or {})
                        for h in run.hosts
                    ],
                )
            if run.results:
                conn.execute(
                    insert(results),
                    [
                        {
                            "run_id": run.id,
                            "host": r.host,
                            "control_id": r.control_id,
                            "status": r.status,
                            "expected": r.expected,
                            "observed": r.observed,
                            "evidence_digest": r.evidence_digest,
                        }
                        for r in run.results
                    ],
                )

    def run_ids(self) -> list[str]:
        with self._begin("read runs") as conn:
            return list(conn.scalars(select(runs.c.id).order_by(runs.c.started, runs.c.id)))

    def _result_runs(self, wanted: list[Any], since: datetime | None) -> Any:
        """The runs with a result matching `wanted` (since `since`), newest first, as a query."""
        query = select(runs.c.id).where(runs.c.id.in_(select(results.c.run_id).where(*wanted)))
        if since is not None:
            query = query.where(runs.c.started >= since)
        return query.order_by(runs.c.started.desc(), runs.c.id.desc())

    def result_runs(
        self,
        *,
        host: str | None = None,
        control: str | None = None,
        since: datetime | None = None,
    ) -> int:
        """How many runs recorded a result of `host` x `control` (since `since`)."""
        counted = select(func.count()).select_from(
            self._result_runs(_wanted(host, control), since).order_by(None).subquery()
        )
        with self._begin("count runs") as conn:
            return int(conn.scalar(counted) or 0)

    def observed(
        self,
        *,
        host: str | None = None,
        control: str | None = None,
        since: datetime | None = None,
        last_runs: int | None = None,
    ) -> list[Observed]:
        """Every result of `host` x `control` (each when None), oldest first. With `since`: the
        results of runs started since then, and for each host x control the last result before
        (so a change at the first run since is seen as one). With `last_runs`: only those of
        the last so many runs that recorded such a result (chosen by the database: the rows of
        older runs are never read)."""
        joined = results.join(runs, results.c.run_id == runs.c.id)
        wanted = _wanted(host, control)
        in_view = []
        if last_runs is not None:
            window = self._result_runs(wanted, since).limit(last_runs).subquery()
            in_view.append(results.c.run_id.in_(select(window.c.id)))
        columns = (
            results.c.run_id,
            runs.c.kind,
            runs.c.started,
            results.c.host,
            results.c.control_id,
            results.c.status,
            results.c.expected,
            results.c.observed,
            results.c.evidence_digest,
        )
        queries = []
        if since is None:
            queries.append(select(*columns).select_from(joined).where(*wanted, *in_view))
        else:
            recent = runs.c.started >= since
            queries.append(select(*columns).select_from(joined).where(*wanted, *in_view, recent))
            last = (
                select(results.c.host, results.c.control_id, func.max(runs.c.started).label("at"))
                .select_from(joined)
                .where(*wanted, runs.c.started < since)
                .group_by(results.c.host, results.c.control_id)
                .subquery()
            )
            before = joined.join(
                last,
                and_(
                    results.c.host == last.c.host,
                    results.c.control_id == last.c.control_id,
                    runs.c.started == last.c.at,
                ),
            )
            queries.append(select(*columns).select_from(before))
        rows: list[Observed] = []
        with self._begin("read results") as conn:
            for query in queries:
                for r in conn.execute(query):
                    rows.append(Observed(r[0], r[1], utc(r[2]), *r[3:]))
        return sorted(rows, key=lambda o: (o.host, o.control_id, o.at, o.run_id))

    def played(self, *, host: str | None = None, since: datetime | None = None) -> list[Played]:
        """Every host's part in every harden run (started since `since`), oldest first."""
        query = (
            select(
                host_runs.c.run_id,
                runs.c.started,
                host_runs.c.host,
                host_runs.c.outcome,
                host_runs.c.changed,
                runs.c.controls,
                runs.c.check_mode,
            )
            .select_from(host_runs.join(runs, host_runs.c.run_id == runs.c.id))
            .where(runs.c.kind == "harden")
        )
        if host is not None:
            query = query.where(host_runs.c.host == host)
        if since is not None:
            query = query.where(runs.c.started >= since)
        with self._begin("read harden runs") as conn:
            found = [
                Played(r[0], utc(r[1]), r[2], r[3], r[4] or 0, tuple(json.loads(r[5])), r[6])
                for r in conn.execute(query)
            ]
        return sorted(found, key=lambda p: (p.at, p.run_id))

    def last_statuses(
        self, hosts: Iterable[str], *, before: datetime
    ) -> dict[tuple[str, str], str]:
        """Each host x control's status in its last result from a run started before `before`."""
        found: dict[tuple[str, str], str] = {}
        for host in hosts:
            for o in self.observed(host=host, since=before):  # oldest first: the last one wins
                if o.at < before:
                    found[(o.host, o.control_id)] = o.status
        return found

    def schema_version(self) -> int:
        with self._begin("read the schema version") as conn:
            return int(conn.scalar(select(func.max(casemate_schema.c.version))) or 0)

    def close(self) -> None:
        self.engine.dispose()


def _wanted(host: str | None, control: str | None) -> list[Any]:
    wanted: list[Any] = []
    if host is not None:
        wanted.append(results.c.host == host)
    if control is not None:
        wanted.append(results.c.control_id == control)
    return wanted


def open_store(raw: str | None, state: Path) -> Store:
    """The store at `raw` (a URL; None: SQLite in the state directory), reachable and at this
    casemate's schema version: created when empty, migrated when older; refused when newer."""
    if raw is None:
        private.state_dir(state)
        url = parse_url(default_url(state))
    else:
        url = parse_url(raw)
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        sqlite_file(Path(str(url.database)), shown(url))
    else:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    try:
        engine = create_engine(url, connect_args=connect_args)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise HistoryError(f"--db {shown(url)}: {_why(exc, url)}") from None
    store = Store(engine, url)
    try:
        with store._begin("open it") as conn:
            _ready(conn, store)
    except BaseException:
        store.close()
        raise
    return store


def _ready(conn: Connection, store: Store) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    found = inspect(conn)
    if not found.has_table(casemate_schema.name):
        if found.has_table(runs.name):
            raise HistoryError(
                f"history store {store.shown}: has a runs table but no casemate_schema: "
                "not a casemate history store"
            )
        metadata.create_all(conn)
        _stamp(conn, SCHEMA_VERSION)
        return
    version = int(conn.scalar(select(func.max(casemate_schema.c.version))) or 0)
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"history store {store.shown} has schema version {version}, newer than casemate "
            f"{__version__} knows ({SCHEMA_VERSION}): upgrade casemate on this controller"
        )
    for step in range(version, SCHEMA_VERSION):
        if step not in MIGRATIONS:
            raise HistoryError(
                f"history store {store.shown}: no migration from schema version {step}"
            )
        MIGRATIONS[step](conn)
        _stamp(conn, step + 1)


def _stamp(conn: Connection, version: int) -> None:
    conn.execute(
        insert(casemate_schema),
        [{"version": version, "written_by": __version__, "updated": datetime.now(UTC)}],
    )
