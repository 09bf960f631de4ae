"""The history store's tables (SQLAlchemy Core) and its schema version.

Times are stored in UTC. A run is keyed by its run id (the run directory's name), so recording a
run again replaces it instead of adding a second copy. Results and per-host rows go with their run.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

# Raise it with every change to the tables below, and add the step from the version before to
# store.MIGRATIONS: a store of an older version is migrated when it is opened, a store of a newer
# one is refused (the code does not know its tables).
SCHEMA_VERSION = 1

metadata = MetaData()

casemate_schema = Table(
    "casemate_schema",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("written_by", String(64), nullable=False),  # the casemate version that set it
    Column("updated", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),  # verify, harden, drift: free-form
    Column("started", DateTime(timezone=True), nullable=False),
    Column("finished", DateTime(timezone=True)),
    Column("outcome", String(32), nullable=False),  # harden.OUTCOMES
    Column("command", Text, nullable=False),  # the redacted argv, as JSON
    Column("inventory", Text, nullable=False),  # where the inventory came from
    Column("inventory_digest", String(80)),  # sha256 of the run's redacted inventory.json
    Column("catalog_digest", String(80)),
    Column("casemate_version", String(64)),
    Column("ansible_version", String(64)),
    Column("level", Integer),
    Column("profile", String(32)),
    Column("check_mode", Boolean, nullable=False),
    Column("controls", Text, nullable=False),  # the selected control ids, as JSON
    Column("run_dir", Text, nullable=False),  # where the run's evidence was when recorded
    Column("recorded", DateTime(timezone=True), nullable=False),
)

host_runs = Table(
    "host_runs",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("host", String(255), primary_key=True),
    # verify: probed or unprobed; harden: succeeded, failed or unreachable
    Column("outcome", String(32), nullable=False),
    Column("error", Text),
    # harden: Ansible's recap for the host; verify leaves them empty
    Column("ok", Integer),
    Column("changed", Integer),
    Column("failed", Integer),
    Column("unreachable", Integer),
    Column("skipped", Integer),
    Column("rescued", Integer),
)

results = Table(
    "results",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("host", String(255), primary_key=True),
    Column("control_id", String(64), primary_key=True),
    Column("status", String(32), nullable=False),
    Column("expected", Text, nullable=False),
    Column("observed", Text, nullable=False),
    # sha256 of the redacted observations the verdict used (report.json keeps them)
    Column("evidence_digest", String(80), nullable=False),
)

Index("results_by_host_control", results.c.host, results.c.control_id)
Index("runs_by_started", runs.c.started)
