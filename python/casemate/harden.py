"""Hardening: turn a selection of controls into role tags, run the playbook, record the run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from casemate import __version__
from casemate.catalog.loader import Catalog
from casemate.catalog.model import Entry
from casemate.errors import BadInputError
from casemate.inventory import Inventory
from casemate.rundir import ANSIBLE, RunDir, now_utc
from casemate.runner import HostEvent, PlaybookOutcome, run_playbook

PLAYBOOK = "harden.yml"


@dataclass(frozen=True, slots=True)
class HardenPlan:
    hosts: list[str]
    tags: list[str]
    entries: list[Entry]


def plan(entries: list[Entry], inventory: Inventory, limit: str | None) -> HardenPlan:
    """Validate everything before any host is touched."""
    remediable = [e for e in entries if e.control.remediation is not None]
    if not remediable:
        raise BadInputError("the selection contains no control casemate can remediate")
    hosts = inventory.select(limit)
    return HardenPlan(hosts=hosts, tags=[e.id for e in remediable], entries=remediable)


def run_harden(
    *,
    run: RunDir,
    content: Path,
    catalog: Catalog,
    inventory: Inventory,
    harden_plan: HardenPlan,
    level: int,
    profile: str,
    check: bool,
    diff: bool,
    strategy: str,
    forks: int,
    command: list[str],
    on_event: Callable[[HostEvent], None],
    break_glass: str | None = None,
    break_glass_record: Mapping[str, Any] | None = None,
) -> PlaybookOutcome:
    started = now_utc().isoformat()
    meta: dict[str, Any] = {
        "kind": "harden",
        "casemate_version": __version__,
        "command": command,
        "started": started,
        "inventory": str(inventory.source),
        "catalog": {"digest": catalog.digest, "benchmarks": catalog.benchmarks()},
        "level": level,
        "profile": profile,
        "hosts": harden_plan.hosts,
        "controls": harden_plan.tags,
        "check": check,
        "diff": diff,
    }
    extravars: dict[str, Any] = {"casemate_level": level, "casemate_profile": profile}
    if break_glass_record is not None:  # profile immutable: how each host stays reachable
        meta["break_glass"] = {"flag": break_glass, "hosts": dict(break_glass_record)}
        run.write_json("breakglass.json", meta["break_glass"])
    if break_glass is not None:
        extravars["casemate_break_glass"] = break_glass
    run.write_json("inventory.json", inventory.redacted(run.redactor))
    run.write_json("run.json", meta | {"state": "running"})

    def told(event: HostEvent) -> None:  # a failure message may echo a secret: never show it
        on_event(replace(event, message=run.redactor.text(event.message)))

    try:
        outcome = run_playbook(
            artifacts=run.path / ANSIBLE,
            content=content,
            playbook=PLAYBOOK,
            inventory=inventory.source,
            hosts=harden_plan.hosts,
            tags=harden_plan.tags,
            extravars=extravars,
            check=check,
            diff=diff,
            strategy=strategy,
            forks=forks,
            on_event=told,
        )
    finally:  # interrupted too: what ansible-runner wrote so far is redacted
        run.seal()
    run.write_json(
        "run.json",
        meta
        | {
            "state": "finished",
            "finished": now_utc().isoformat(),
            "strategy": outcome.strategy,
            "runner": {"status": outcome.status, "rc": outcome.rc},
            "stats": {h: vars_of(s) for h, s in outcome.hosts.items()},
            "messages": outcome.messages,
        },
    )
    return outcome


def vars_of(stats: object) -> dict[str, int]:
    return {
        k: int(getattr(stats, k))
        for k in ("ok", "changed", "failed", "unreachable", "skipped", "rescued")
    }


def host_failed(stats: dict[str, int]) -> bool:
    return stats["failed"] > 0 or stats["unreachable"] > 0
