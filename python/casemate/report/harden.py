"""The summary of a harden run: what it came to, and per host what Ansible did there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from casemate.harden import busy_said

_SAID = {
    "succeeded": ("succeeded", "green"),
    "failed": ("FAILED", "red"),
    "canceled": (
        "CANCELED before it finished: the counts are the events it recorded; hosts may have been "
        "left part-way (run harden again to finish)",
        "red",
    ),
    "busy": (
        "BUSY: another run holds some hosts (host lock); they were left untouched, every host "
        "played succeeded (run again later)",
        "yellow",
    ),
    "unfinished": (
        "UNFINISHED: casemate stopped before it recorded the end (killed?) or the run is still "
        "going; the counts are the events stored so far",
        "red",
    ),
}


def title(meta: Mapping[str, Any], outcome: str) -> Text:
    said, style = _SAID.get(outcome, (outcome, "red"))
    check = " (check mode)" if meta.get("check") else ""
    text = Text(f"casemate harden{check} ({meta.get('strategy') or 'linear'}): ")
    text.append(said, style=f"bold {style}")
    return text


def table(meta: Mapping[str, Any], stats: Mapping[str, Mapping[str, int]]) -> Table:
    t = Table()
    for col, style in (
        ("host", ""),
        ("ok", "green"),
        ("changed", "yellow"),
        ("failed", "red"),
        ("unreachable", "red"),
    ):
        t.add_column(col, style=style, justify="left" if col == "host" else "right")
    for host in meta.get("hosts") or sorted(stats):
        s = stats.get(host, {})
        t.add_row(host, *(str(s.get(k, 0)) for k in ("ok", "changed", "failed", "unreachable")))
    return t


def failure_lines(
    meta: Mapping[str, Any], stats: Mapping[str, Mapping[str, int]], *, limit: int = 600
) -> list[Text]:
    """One line per failed or unreachable host: its last failure message, whitespace folded, so
    that a log reader (CI) sees each host's cause on exactly one line."""
    out = []
    for host, msgs in (meta.get("messages") or {}).items():
        s = stats.get(host, {})
        if msgs and (s.get("failed", 0) > 0 or s.get("unreachable", 0) > 0):
            line = Text(host, style="red")
            line.append(f": {' '.join(str(msgs[-1]).split())[:limit]}")
            out.append(line)
    return out


def waiver_lines(meta: Mapping[str, Any]) -> list[Text]:
    """Per host, the controls a waiver kept from being remediated, those remediated though a waiver
    for them expired, the hosts not played because an earlier group of hosts failed, and the busy
    hosts (another run held their lock)."""
    record = meta.get("waivers") or {}
    out = []
    held = record.get("held_with_waived") or {}
    for host, ids in (record.get("waived") or {}).items():
        line = Text(f"{host}: ", style="blue")
        line.append(f"waived, not remediated: {', '.join(ids)}")
        if held.get(host):
            line.append(f"; held back with them (they share a task): {', '.join(held[host])}")
        out.append(line)
    for host, ids in (record.get("expired") or {}).items():
        out.append(Text(f"{host}: waiver expired, remediated as usual: {', '.join(ids)}"))
    for host, why in (meta.get("not_played") or {}).items():
        out.append(Text(f"{host}: {why}", style="red"))
    for host, record in (meta.get("busy") or {}).items():
        out.append(Text(f"{host}: {busy_said(record)}", style="yellow"))
    return out


def rollout_lines(meta: Mapping[str, Any]) -> list[Text]:
    """For a wave of a staged rollout (`harden --waves`/`--canary`): which wave this run was, and
    what the whole rollout came to, with where it stopped and why."""
    record = meta.get("rollout") or {}
    if not record:
        return []
    waves = record.get("waves") or []
    line = Text(
        f"{record.get('spec')}: wave {record.get('wave')} of {len(waves)}; "
        f"rollout {record.get('outcome')}"
    )
    if record.get("why"):
        line.append(f": {record['why']}")
    style = {"stopped": "red", "canceled": "red", "running": "yellow"}.get(
        str(record.get("outcome"))
    )
    if style:
        line.stylize(style)
    return [line]
