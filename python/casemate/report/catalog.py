"""The catalog as `casemate catalog list` and `catalog show` print it: a table or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from casemate.catalog.model import PROFILES, Entry

if TYPE_CHECKING:
    from rich.text import Text


def entry_doc(e: Entry) -> dict[str, Any]:
    """One entry as JSON: the control as the catalog describes it, and where it comes from."""
    c = e.control
    return {
        "id": e.id,
        "benchmark": e.benchmark,
        "benchmark_version": e.benchmark_version,
        "ref": e.ref,
        "section": e.section,
        "title": c.title,
        "description": c.description,
        "level": c.level,
        "automated": c.automated,
        "mode": c.mode,
        "applies_to": list(c.applies_to),
        "profiles": list(c.profiles),
        "remediation": c.remediation.model_dump() if c.remediation else None,
        "manual": c.manual,
        "check": c.check.model_dump() if c.check else None,
        "source": e.source,
    }


def entries_json(entries: Iterable[Entry]) -> str:
    return json.dumps([entry_doc(e) for e in entries], indent=2)


COLUMNS = ("id", "ref", "lvl", "mode", "profile", "remediation", "check", "title")


def entries_text(entries: list[Entry]) -> str:
    """The list as aligned text columns (the last, the title, unpadded): hundreds of rows print
    in a millisecond, where a rich Table takes a second to measure them."""
    rows = [list(COLUMNS)]
    for e in entries:
        ctl = e.control
        rows.append(
            [
                e.id,
                f"{e.benchmark} {e.ref}",
                str(ctl.level),
                ctl.mode,
                "all" if set(ctl.profiles) == set(PROFILES) else ",".join(ctl.profiles),
                ctl.remediation.role if ctl.remediation else "-",
                ctl.check.kind if ctl.check else "-",
                ctl.title,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) for c, w in zip(cells, widths, strict=False)]
        return "│ " + " │ ".join([*padded, cells[-1]])

    rule = "├" + "┼".join("─" * (w + 2) for w in widths) + "┼" + "─" * 7
    return "\n".join([f"{len(entries)} controls", line(rows[0]), rule, *map(line, rows[1:])])


def role_defaults(content: Path, role: str) -> dict[str, Any]:
    """A role's defaults/main.yml (empty when the role has none)."""
    path = content / "roles" / role / "defaults" / "main.yml"
    if not path.is_file():
        return {}
    loaded = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return loaded if isinstance(loaded, dict) else {}


def show_doc(entry: Entry, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`catalog show`: the entry, and the values its role sets by default (`sets`)."""
    doc = entry_doc(entry)
    rem = entry.control.remediation
    if rem is not None:
        doc["sets"] = {v: defaults.get(v) for v in rem.vars}
    return doc


def show_lines(entry: Entry, doc: Mapping[str, Any]) -> list[Text]:
    """`catalog show` as text: no markup is read in it (a regex in a check is shown as it is)."""
    from rich.text import Text  # noqa: PLC0415 - rich only when shown: `catalog list` needs none

    ctl = entry.control
    rem = ctl.remediation
    heading = Text(entry.id, style="bold")
    heading.append(f"  {entry.benchmark_title} {entry.benchmark_version} §{entry.ref}", style="")
    lines = [heading, Text(ctl.title, style="bold"), Text(ctl.description)]
    rows = [
        ("level", str(ctl.level)),
        ("mode", ctl.mode),
        ("applies to", ", ".join(ctl.applies_to)),
        ("remediation", f"role {rem.role}, tag {entry.id}" if rem else "none"),
    ]
    if rem is not None and rem.vars:
        rows.append(("sets", ", ".join(f"{k}={json.dumps(v)}" for k, v in doc["sets"].items())))
    if ctl.check is not None:
        rows.append(("check", f"{ctl.check.kind} {json.dumps(ctl.check.params)}"))
        if ctl.check.only_if is not None:
            cond = ctl.check.only_if
            rows.append(("only if", f"{cond.kind} {json.dumps(cond.params)}"))
    if ctl.manual:
        rows.append(("manual", ctl.manual))
    lines += [Text(f"  {k:<12} {v}") for k, v in rows]
    return lines
