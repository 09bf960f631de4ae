"""The changes of a harden run, read back from ansible-runner's stored events (`--diff`)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _one(host: str, task: str, d: dict[str, Any]) -> tuple[str, str] | None:
    if d.get("prepared"):
        return f"{host}: {task}", str(d["prepared"])
    before, after = d.get("before"), d.get("after")
    if before == after:
        return None
    if isinstance(before, dict) and isinstance(after, dict):  # file attributes: state, mode...
        changes = [
            f"{k}: {before.get(k)} -> {after.get(k)}"
            for k in sorted(set(before) | set(after))
            if k != "path" and before.get(k) != after.get(k)
        ]
        where = after.get("path") or before.get("path") or task
        return f"{host}: {where}: {', '.join(changes)}", ""
    name = str(d.get("before_header") or d.get("after_header") or task)
    text = "".join(
        difflib.unified_diff(
            str(before or "").splitlines(keepends=True),
            str(after or "").splitlines(keepends=True),
            f"{name} (before)",
            f"{name} (after)",
        )
    )
    return (f"{host}: {task}", text) if text else None


def render(artifacts: Path) -> list[tuple[str, str]]:
    """(header, unified diff) for every change recorded in the run's events, in event order."""
    out: list[tuple[str, str]] = []
    for path in sorted(
        artifacts.glob("*/job_events/*.json"), key=lambda p: int(p.name.split("-")[0])
    ):
        data = json.loads(path.read_text()).get("event_data", {})
        diffs = (data.get("res") or {}).get("diff") or []
        for d in diffs if isinstance(diffs, list) else [diffs]:
            if isinstance(d, dict) and ("before" in d or "prepared" in d):
                found = _one(str(data.get("host")), str(data.get("task")), d)
                if found is not None:
                    out.append(found)
    return out


@dataclass(frozen=True, slots=True)
class Changed:
    """One task that changed (or, in check mode, would change) one host, with its diffs."""

    host: str
    task: str
    role: str | None
    diffs: tuple[str, ...]  # each a header line and its unified diff, as `render` gives them


def _diffs(host: str, task: str, res: Mapping[str, Any]) -> list[str]:
    found = res.get("diff") or []
    out = []
    for d in found if isinstance(found, list) else [found]:
        if isinstance(d, dict) and ("before" in d or "prepared" in d):
            one = _one(host, task, d)
            if one is not None:
                out.append(f"{one[0]}\n{one[1]}".rstrip("\n"))
    for item in res.get("results") or ():  # a loop: each item's own diff
        if isinstance(item, dict):
            out.extend(_diffs(host, task, item))
    return out


def changed(artifacts: Path) -> list[Changed]:
    """Every task that reported `changed` in the runs stored under `artifacts`, in event order
    (ansible-runner's events: host, task, role and result; never Ansible's printed output)."""
    out: list[Changed] = []
    for path in sorted(
        artifacts.glob("*/job_events/*.json"), key=lambda p: (p.parent.parent.name, _counter(p))
    ):
        raw = json.loads(path.read_text())
        if raw.get("event") != "runner_on_ok":
            continue
        data = raw.get("event_data") or {}
        res = data.get("res") or {}
        if not res.get("changed"):
            continue
        host, task = str(data.get("host")), str(data.get("task", ""))
        role = data.get("role")
        out.append(Changed(host, task, str(role) if role else None, tuple(_diffs(host, task, res))))
    return out


def _counter(path: Path) -> int:
    head = path.name.split("-")[0]
    return int(head) if head.isdigit() else 0
