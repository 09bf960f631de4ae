"""The history store's tables as SQLAlchemy Core tables, built from their one description
(columns.py), and its schema version."""

from __future__ import annotations

from typing import Any

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
from sqlalchemy.types import TypeEngine

from casemate.history import columns
from casemate.history.columns import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "casemate_schema", "host_runs", "metadata", "results", "runs"]


def _type(column: columns.Column) -> TypeEngine[Any]:
    if column.type == "str":
        return String(column.length)
    kinds: dict[str, TypeEngine[Any]] = {
        "int": Integer(),
        "text": Text(),
        "bool": Boolean(),
        "time": DateTime(timezone=True),
    }
    return kinds[column.type]


def _column(column: columns.Column) -> Column[Any]:
    more = [ForeignKey(column.references, ondelete="CASCADE")] if column.references else []
    return Column(
        column.name,
        _type(column),
        *more,
        primary_key=column.primary,
        nullable=column.nullable,
        autoincrement=False,
    )


metadata = MetaData()
_tables = {t.name: Table(t.name, metadata, *map(_column, t.columns)) for t in columns.TABLES}
casemate_schema = _tables[columns.CASEMATE_SCHEMA.name]
runs = _tables[columns.RUNS.name]
host_runs = _tables[columns.HOST_RUNS.name]
results = _tables[columns.RESULTS.name]
for _index in columns.INDEXES:
    Index(_index.name, *(_tables[_index.table].c[name] for name in _index.columns))
