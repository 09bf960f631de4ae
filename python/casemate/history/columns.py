"""The history store's tables, described once in plain Python: schema.py builds SQLAlchemy Core
tables from this (every back end, every read), local.py the SQLite DDL and rows it writes without
SQLAlchemy (the default store's recording after a run). A test holds the two SQLite stores equal.

Times are stored in UTC. A run is keyed by its run id (the run directory's name), so recording a
run again replaces it instead of adding a second copy. Results and per-host rows go with their run.
"""

from __future__ import annotations

from dataclasses import dataclass

# Raise it with every change to the tables below, and add the step from the version before to
# store.MIGRATIONS: a store of an older version is migrated when it is opened, a store of a newer
# one is refused (the code does not know its tables).
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # int, str (with length), text, bool, time (a UTC datetime)
    length: int | None = None
    nullable: bool = True
    primary: bool = False
    references: str | None = None  # "table.column", deleted with it (ON DELETE CASCADE)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]

    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    table: str
    columns: tuple[str, ...]


def _key(name: str, type_: str, length: int | None = None, **more: str) -> Column:
    return Column(name, type_, length, nullable=False, primary=True, **more)


def _need(name: str, type_: str, length: int | None = None) -> Column:
    return Column(name, type_, length, nullable=False)


CASEMATE_SCHEMA = Table(
    "casemate_schema",
    (
        _key("version", "int"),
        _need("written_by", "str", 64),  # the casemate version that set it
        _need("updated", "time"),
    ),
)

RUNS = Table(
    "runs",
    (
        _key("id", "str", 128),
        _need("kind", "str", 32),  # verify, harden, drift: free-form
        _need("started", "time"),
        Column("finished", "time"),
        _need("outcome", "str", 32),  # harden.OUTCOMES
        _need("command", "text"),  # the redacted argv, as JSON
        _need("inventory", "text"),  # where the inventory came from
        Column("inventory_digest", "str", 80),  # sha256 of the run's redacted inventory.json
        Column("catalog_digest", "str", 80),
        Column("casemate_version", "str", 64),
        Column("ansible_version", "str", 64),
        Column("level", "int"),
        Column("profile", "str", 32),
        _need("check_mode", "bool"),
        _need("controls", "text"),  # the selected control ids, as JSON
        _need("run_dir", "text"),  # where the run's evidence was when recorded
        _need("recorded", "time"),
    ),
)

HOST_RUNS = Table(
    "host_runs",
    (
        _key("run_id", "str", 128, references="runs.id"),
        _key("host", "str", 255),
        # verify: probed or unprobed; harden: succeeded, failed or unreachable
        _need("outcome", "str", 32),
        Column("error", "text"),
        # harden: Ansible's recap for the host; verify leaves them empty
        Column("ok", "int"),
        Column("changed", "int"),
        Column("failed", "int"),
        Column("unreachable", "int"),
        Column("skipped", "int"),
        Column("rescued", "int"),
    ),
)

RESULTS = Table(
    "results",
    (
        _key("run_id", "str", 128, references="runs.id"),
        _key("host", "str", 255),
        _key("control_id", "str", 64),
        _need("status", "str", 32),
        _need("expected", "text"),
        _need("observed", "text"),
        # sha256 of the redacted observations the verdict used (report.json keeps them)
        _need("evidence_digest", "str", 80),
    ),
)

TABLES = (CASEMATE_SCHEMA, RUNS, HOST_RUNS, RESULTS)  # in the order they are created
INDEXES = (
    Index("results_by_host_control", "results", ("host", "control_id")),
    Index("runs_by_started", "runs", ("started",)),
)

# SQLite's names for the types, as SQLAlchemy's SQLite dialect writes them
_SQLITE_TYPES = {"int": "INTEGER", "text": "TEXT", "bool": "BOOLEAN", "time": "DATETIME"}


def _sqlite_type(column: Column) -> str:
    if column.type == "str":
        return f"VARCHAR({column.length})"
    return _SQLITE_TYPES[column.type]


def sqlite_ddl() -> list[str]:
    """The statements that make an empty store in SQLite, worded as SQLAlchemy's `create_all`
    words them (a test compares the two stores' sqlite_master)."""
    statements: list[str] = []
    for table in TABLES:
        lines = [
            f"{c.name} {_sqlite_type(c)}{'' if c.nullable else ' NOT NULL'}" for c in table.columns
        ]
        lines.append(f"PRIMARY KEY ({', '.join(c.name for c in table.columns if c.primary)})")
        for c in table.columns:
            if c.references is not None:
                target, _, column = c.references.partition(".")
                lines.append(
                    f"FOREIGN KEY({c.name}) REFERENCES {target} ({column}) ON DELETE CASCADE"
                )
        statements.append(f"CREATE TABLE {table.name} (\n\t" + ", \n\t".join(lines) + "\n)")
        for index in INDEXES:
            if index.table == table.name:
                statements.append(
                    f"CREATE INDEX {index.name} ON {index.table} ({', '.join(index.columns)})"
                )
    return statements
