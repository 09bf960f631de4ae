"""Rolling a harden run back: what its run record says each host changed (checked before any host
is touched), the rollback playbook run through the runner, and its own run record."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from casemate.catalog.loader import Catalog
from casemate.errors import BadInputError
from casemate.harden import played_record, run_outcome
from casemate.inventory import Inventory
from casemate.rundir import ANSIBLE, RunDir, now_utc, run_meta
from casemate.runner import HostEvent, HostStats, PlaybookOutcome, run_playbook

PLAYBOOK = "rollback.yml"


@dataclass(frozen=True, slots=True)
class HostChanges:
    host: str
    # the files the run changed there ({path, before, after, backup}); None: the run recorded no
    # change manifest for the host (it stopped before its end), and --force restores every file of
    # its snapshot that differs now
    changes: tuple[Mapping[str, Any], ...] | None


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    run_id: str
    hosts: tuple[HostChanges, ...]  # the hosts to play: each has something to restore
    untouched: Mapping[str, str]  # host -> why nothing is to be done there
    level: int
    profile: str
    controls: tuple[str, ...]  # the harden run's controls: verified before and after

    def played(self) -> list[str]:
        return [h.host for h in self.hosts]


def plan(
    run: RunDir,
    meta: Mapping[str, Any],
    inventory: Inventory,
    limit: str | None,
    *,
    force: bool,
) -> RollbackPlan:
    """What rolling back the harden run `run` (its run.json: `meta`) does on each host, every
    input checked first: a run that is not a finished harden that changed files, a host of the run
    gone from the inventory, a --limit naming no host of the run, a host without a change manifest
    (unless --force) is bad input."""
    kind = meta.get("kind")
    if kind != "harden":
        raise BadInputError(f"run {run.id} is a {kind} run, not a harden: nothing to roll back")
    if meta.get("check"):
        raise BadInputError(f"run {run.id} ran in check mode: it changed nothing")
    recorded = meta.get("files_changed")
    if not isinstance(recorded, Mapping):
        raise BadInputError(
            f"run {run.id} recorded no file changes (it is {run_outcome(meta)}, or casemate did "
            "not record them then): nothing to roll back"
        )
    ran_on = [str(h) for h in meta.get("hosts") or []]
    known = set(inventory.hosts())
    wanted = ran_on
    if limit is not None:
        named = set(inventory.select(limit))
        wanted = [h for h in ran_on if h in named]
        if not wanted:
            raise BadInputError(f"--limit {limit}: names no host of run {run.id}")
    gone = [h for h in wanted if h not in known]
    if gone:
        raise BadInputError(
            f"host {gone[0]} of run {run.id} is not in inventory {inventory.source}"
            + (f" (nor {len(gone) - 1} more)" if len(gone) > 1 else "")
        )
    hosts, untouched = _per_host(run.id, wanted, recorded, meta.get("stats") or {}, force=force)
    return RollbackPlan(
        run_id=run.id,
        hosts=tuple(hosts),
        untouched=untouched,
        level=int(meta.get("level") or 1),
        profile=str(meta.get("profile") or "standard"),
        controls=tuple(str(c) for c in meta.get("controls") or ()),
    )


def _per_host(
    run_id: str,
    wanted: list[str],
    recorded: Mapping[str, Any],
    stats: Mapping[str, Any],
    *,
    force: bool,
) -> tuple[list[HostChanges], dict[str, str]]:
    """The hosts with something to restore, and those left alone with why."""
    hosts: list[HostChanges] = []
    untouched: dict[str, str] = {}
    for host in wanted:
        found = recorded.get(host)
        if isinstance(found, list):
            if found:
                hosts.append(HostChanges(host, tuple(found)))
            else:
                untouched[host] = "the run changed no file there"
        elif not _played(stats.get(host) or {}):
            untouched[host] = "the run did not play it"
        elif force:
            hosts.append(HostChanges(host, None))
        else:
            raise BadInputError(
                f"host {host}: run {run_id} recorded no change manifest there (it stopped before "
                "its end); --force restores every file of its snapshot that differs now"
            )
    return hosts, untouched


def _played(stats: Mapping[str, Any]) -> bool:
    """Whether a task ran on the host (its recap counts something besides skips)."""
    return any(int(stats.get(k, 0)) for k in ("ok", "changed", "failed", "rescued"))


def run_rollback(
    *,
    run: RunDir,
    content: Path,
    catalog: Catalog,
    inventory: Inventory,
    rollback_plan: RollbackPlan,
    hosts: Sequence[str],
    check: bool,
    force: bool,
    strategy: str,
    forks: int,
    command: list[str],
    on_event: Callable[[HostEvent], None],
    unreachable: Mapping[str, str] | None = None,
) -> PlaybookOutcome:
    """Play the rollback on `hosts` (those of the plan that answered) and write the run record
    (kind rollback): per host what was restored, or refused and why (with the diff)."""
    unreachable = dict(unreachable or {})
    meta = run_meta(
        "rollback",
        command=command,
        started=now_utc().isoformat(),
        inventory=inventory.source,
        catalog=catalog,
        level=rollback_plan.level,
        profile=rollback_plan.profile,
        hosts=rollback_plan.played(),
        controls=rollback_plan.controls,
    )
    meta |= {"check": check, "force": force, "rolls_back": rollback_plan.run_id}
    if rollback_plan.untouched:
        meta["untouched"] = dict(rollback_plan.untouched)
    if unreachable:
        meta["unreachable_before_play"] = unreachable
    run.write_json("inventory.json", inventory.redacted(run.redactor))
    run.write_json("run.json", meta | {"state": "running"})
    changes = {
        h.host: None if h.changes is None else [dict(c) for c in h.changes]
        for h in rollback_plan.hosts
    }
    try:
        if hosts:
            played = run_playbook(
                artifacts=run.path / ANSIBLE,
                content=content,
                playbook=PLAYBOOK,
                inventory=inventory.source,
                hosts=list(hosts),
                tags=[],
                extravars={
                    "casemate_rollback_run": rollback_plan.run_id,
                    "casemate_rollback_id": run.id,
                    "casemate_rollback_changes": changes,
                    "casemate_rollback_force": force,
                },
                check=check,
                diff=False,
                strategy=strategy,
                forks=forks,
                on_event=lambda e: on_event(replace(e, message=run.redactor.text(e.message))),
            )
        else:
            played = PlaybookOutcome("skipped", 0, {}, strategy=strategy, stats_from="none")
    finally:
        run.seal()
    outcome = replace(
        played,
        hosts=played.hosts | {h: HostStats(unreachable=1) for h in unreachable},
        messages=played.messages
        | {h: [f"Preflight | connection: {why}"] for h, why in unreachable.items()},
    )
    finished = meta | {
        "state": "finished",
        "finished": now_utc().isoformat(),
        **played_record(outcome),
        "restored": {h: host_record(r) for h, r in outcome.records.items()},
    }
    run.write_json("run.json", finished | {"outcome": run_outcome(finished)})
    return outcome


def host_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """What run.json keeps of what the rollback module returned for one host."""
    changes = record.get("changes") or []
    out: dict[str, Any] = {
        "files": [str(c["path"]) for c in changes],
        "removed": [str(c["path"]) for c in changes if not c["before"].get("exists")],
        "restarted": list(record.get("units") or []),
    }
    for key in ("refused", "unrestorable"):
        if record.get(key):
            out[key] = list(record[key])
    return out


def changed_controls(
    before: Mapping[str, Any], after: Mapping[str, Any], hosts: Sequence[str]
) -> list[str]:
    """Per host, each control whose status the rollback changed (before -> after), then how many
    kept theirs."""
    seen = {(r["host"], r["control_id"]): r["status"] for r in before.get("results", ())}
    now = {(r["host"], r["control_id"]): r["status"] for r in after.get("results", ())}
    out = []
    for host in hosts:
        same = 0
        for (h, control), was in seen.items():
            if h != host:
                continue
            then = now.get((h, control), "not verified again")
            if then == was:
                same += 1
            else:
                out.append(f"{host}: {control}: {was} -> {then}")
        out.append(f"{host}: {same} control(s) unchanged")
    return out
