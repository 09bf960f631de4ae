"""The report formats, each rendered from the one report document, and the writer that puts the
chosen ones in a directory (0600 files, see private.py)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casemate import private
from casemate.errors import BadInputError
from casemate.report import csv_rows, junit, oscal, sarif
from casemate.report.changes import Changes


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    filename: str
    what: str
    render: Callable[[Mapping[str, Any], Changes | None], str]
    uses_changes: bool = False  # needs the previous run of the inventory (read only then)
    # modules the renderer imports when it first runs (slow ones: see preload)
    loads: tuple[str, ...] = ()


def _html(doc: Mapping[str, Any], changes: Changes | None) -> str:
    # imported here: the page loads the report document's code (waivers, check kinds), which a
    # command that only names the formats (`--help`, `catalog list`) has no use for
    from casemate.report import html_page  # noqa: PLC0415

    return html_page.render(doc, changes)


def _json(doc: Mapping[str, Any], _changes: Changes | None) -> str:
    return json.dumps(doc, sort_keys=True) + "\n"  # as report.json: one line, the C encoder


FORMATS: tuple[Format, ...] = (
    Format("json", "report.json", "the report document (report.schema.json)", _json),
    Format("junit", "junit.xml", "JUnit XML", lambda doc, _: junit.render(doc)),
    Format(
        "html",
        "report.html",
        "one self-contained HTML page",
        _html,
        True,
        loads=("casemate.report.html_page",),
    ),
    Format(
        "oscal",
        "assessment-results.json",
        "OSCAL 1.1 assessment results (JSON)",
        lambda doc, _: oscal.render(doc),
        loads=oscal.MODELS,
    ),
    Format("sarif", "report.sarif", "SARIF 2.1.0", lambda doc, _: sarif.render(doc)),
    Format("csv", "report.csv", "CSV, a row per host x control", lambda d, _: csv_rows.render(d)),
)
NAMES = tuple(f.name for f in FORMATS)


def get(name: str) -> Format:
    for f in FORMATS:
        if f.name == name:
            return f
    raise BadInputError(f"unknown report format '{name}' (one of {', '.join(NAMES)})")


def parse(text: str) -> list[Format]:
    """`html,sarif` or `all` -> the formats, in the registry's order; bad input says which."""
    asked = [p.strip() for p in text.split(",") if p.strip()]
    if not asked:
        raise BadInputError(f"--format: name at least one of {', '.join(NAMES)} (or all)")
    if "all" in asked:
        return list(FORMATS)
    chosen = {get(name).name for name in asked}
    return [f for f in FORMATS if f.name in chosen]


def preload(chosen: Iterable[Format]) -> None:
    """Import what the chosen renderers import when they first run (OSCAL's compliance-trestle
    models cost 0.2 s of CPU), so that a caller can have it done in a thread while it waits for
    its hosts. A module that cannot be imported is left to its renderer, which says why."""
    for name in dict.fromkeys(m for f in chosen for m in f.loads):
        try:
            importlib.import_module(name)
        except ImportError:
            continue


def write(
    directory: Path,
    doc: Mapping[str, Any],
    chosen: Iterable[Format],
    changes: Callable[[], Changes | None] = lambda: None,
) -> list[Path]:
    """Each chosen format as DIR/FILENAME, 0600 (a directory made for them 0700; an existing one
    keeps its mode). `doc` is already redacted; `changes` is asked once, only if a format uses
    it."""
    return [private.write(directory / f.filename, text) for f, text in render(doc, chosen, changes)]


def render(
    doc: Mapping[str, Any],
    chosen: Iterable[Format],
    changes: Callable[[], Changes | None] = lambda: None,
) -> list[tuple[Format, str]]:
    """Each chosen format rendered from `doc` by its one renderer; `changes` is asked once, only
    if a format uses it. Every renderer depends on the document alone (and the changes): no
    clock, no random id, so one run renders to the same bytes however often it is rendered."""
    chosen = list(chosen)
    found = changes() if any(f.uses_changes for f in chosen) else None
    return [(f, f.render(doc, found)) for f in chosen]
