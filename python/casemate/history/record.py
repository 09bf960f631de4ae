"""What the history store keeps of one run, read from its run directory (run.json, inventory.json,
and report.json when the run judged controls). Recording right after a run and `casemate history
import RUN` read the same files the same way, so both give the same rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from casemate.errors import BadInputError
from casemate.harden import run_outcome, stored_stats
from casemate.rundir import RunDir

HARDEN_COUNTS = ("ok", "changed", "failed", "unreachable", "skipped", "rescued")


@dataclass(frozen=True, slots=True)
class HostRun:
    host: str
    outcome: str
    error: str | None = None
    counts: Mapping[str, int] | None = None  # harden: Ansible's recap


@dataclass(frozen=True, slots=True)
class ResultRow:
    host: str
    control_id: str
    status: str
    expected: str
    observed: str
    evidence_digest: str


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    kind: str
    started: datetime
    finished: datetime | None
    outcome: str
    command: tuple[str, ...]
    inventory: str
    inventory_digest: str | None
    catalog_digest: str | None
    casemate_version: str | None
    ansible_version: str | None
    level: int | None
    profile: str | None
    check_mode: bool
    controls: tuple[str, ...]
    run_dir: str
    hosts: tuple[HostRun, ...]
    results: tuple[ResultRow, ...]

    def row(self, recorded: datetime | None = None) -> dict[str, Any]:
        """The run's row of the `runs` table (both stores write it)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "started": self.started,
            "finished": self.finished,
            "outcome": self.outcome,
            "command": json.dumps(list(self.command)),
            "inventory": self.inventory,
            "inventory_digest": self.inventory_digest,
            "catalog_digest": self.catalog_digest,
            "casemate_version": self.casemate_version,
            "ansible_version": self.ansible_version,
            "level": self.level,
            "profile": self.profile,
            "check_mode": self.check_mode,
            "controls": json.dumps(list(self.controls)),
            "run_dir": self.run_dir,
            "recorded": recorded or datetime.now(UTC),
        }


def digest(data: Any) -> str:
    """sha256 of `data` as canonical JSON."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_run(path: Path) -> RunRecord:
    """The record of the run stored in `path` (a run directory). A run that never finished is
    recorded as `unfinished` (or what its events say, for harden) and can be imported again once
    it has."""
    run = RunDir(path.resolve())
    try:
        meta = run.read_json("run.json")
    except (OSError, ValueError) as exc:
        raise BadInputError(f"{path}: not a casemate run directory ({exc})") from None
    if not isinstance(meta, dict) or "kind" not in meta:
        raise BadInputError(f"{path / 'run.json'}: not a casemate run record")
    started = when(meta.get("started"))
    if started is None:
        raise BadInputError(f"{path / 'run.json'}: has no start time")
    inventory_file = run.path / "inventory.json"
    inventory_digest = None
    if inventory_file.is_file():
        inventory_digest = digest(json.loads(inventory_file.read_text()))
    hosts: tuple[HostRun, ...] = ()
    results: tuple[ResultRow, ...] = ()
    report = run.path / "report.json"
    if report.is_file():
        hosts, results = _judged(run.read_json("report.json"))
        if meta["kind"] == "drift" and (run.path / "drift.json").is_file():
            results = _with_check_mode_findings(results, run.read_json("drift.json"))
    elif meta["kind"] in ("harden", "rollback"):
        hosts = _played(run, meta, run_outcome(meta))
    return RunRecord(
        id=run.id,
        kind=str(meta["kind"]),
        started=started,
        finished=when(meta.get("finished")),
        outcome=run_outcome(meta),
        command=tuple(str(a) for a in meta.get("command") or ()),
        inventory=str(meta.get("inventory", "")),
        inventory_digest=inventory_digest,
        catalog_digest=(meta.get("catalog") or {}).get("digest"),
        casemate_version=meta.get("casemate_version"),
        ansible_version=meta.get("ansible_version"),
        level=meta.get("level"),
        profile=meta.get("profile"),
        check_mode=bool(meta.get("check", False)),
        controls=tuple(meta.get("controls") or ()),
        run_dir=str(run.path),
        hosts=hosts,
        results=results,
    )


def _judged(doc: Mapping[str, Any]) -> tuple[tuple[HostRun, ...], tuple[ResultRow, ...]]:
    """Per host and per host x control, from a report (verify; drift writes the same report)."""
    hosts = tuple(
        HostRun(h["name"], "probed" if h["probed"] else "unprobed", h.get("error"))
        for h in doc["hosts"]
    )
    seen = {h["name"]: h.get("observations") or {} for h in doc["hosts"]}
    results = tuple(
        ResultRow(
            host=r["host"],
            control_id=r["control_id"],
            status=r["status"],
            expected=r["expected"],
            observed=r["observed"],
            evidence_digest=digest({k: seen[r["host"]].get(k) for k in r["evidence"]}),
        )
        for r in doc["results"]
    )
    return hosts, results


def _with_check_mode_findings(
    results: tuple[ResultRow, ...], doc: Mapping[str, Any]
) -> tuple[ResultRow, ...]:
    """A drift run's rows, where a control the probe could not judge was found drifted by its
    check-mode run: recorded as `fail` (the role would change the host, so the host is not as the
    control wants it), its observation naming the would-be changes, its evidence digest theirs.
    What the probe judged is recorded as it judged it."""
    found = {
        (h["name"], c["control_id"]): c
        for h in doc.get("hosts") or ()
        for c in h.get("controls") or ()
        if c.get("found_by") == "check_mode"
    }
    out = []
    for row in results:
        control = found.get((row.host, row.control_id))
        if control is None:
            out.append(row)
            continue
        tasks = "; ".join(sorted({str(c["task"]) for c in control.get("changes") or ()}))
        out.append(
            ResultRow(
                host=row.host,
                control_id=row.control_id,
                status="fail",
                expected=row.expected,
                observed=f"{row.status} by the probe ({row.observed}); check mode would change: "
                f"{tasks or 'its tasks'}",
                evidence_digest=digest(control.get("changes") or []),
            )
        )
    return tuple(out)


def _played(run: RunDir, meta: Mapping[str, Any], came_to: str) -> tuple[HostRun, ...]:
    """Per host, from a harden run: Ansible's recap (what its events say, for a run that never
    recorded its end). Harden has no per-control verdict (the verify that follows it judges the
    controls), so it records no result rows."""
    stats = stored_stats(run, meta)
    messages = meta.get("messages") or {}
    out = []
    for host in meta.get("hosts") or ():
        counts = {k: int((stats.get(host) or {}).get(k, 0)) for k in HARDEN_COUNTS}
        outcome = "succeeded" if came_to in ("succeeded", "failed", "busy") else came_to
        if host in (meta.get("busy") or {}):
            outcome = "busy"  # another run held it: left untouched
        if counts["failed"]:
            outcome = "failed"
        if counts["unreachable"]:
            outcome = "unreachable"
        said = messages.get(host) or []
        out.append(HostRun(host, outcome, "; ".join(said) or None, counts))
    return tuple(out)
