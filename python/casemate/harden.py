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
from casemate.rundir import ANSIBLE, RunDir, ansible_version, now_utc
from casemate.runner import HostEvent, HostStats, PlaybookOutcome, run_playbook, tally_events

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
    unreachable: Mapping[str, str] | None = None,
) -> PlaybookOutcome:
    """Play the hosts that answered the reachability check; record the others as unreachable with
    what their connection said, without running a task against them."""
    started = now_utc().isoformat()
    unreachable = dict(unreachable or {})
    playable = [h for h in harden_plan.hosts if h not in unreachable]
    meta: dict[str, Any] = {
        "kind": "harden",
        "casemate_version": __version__,
        "ansible_version": ansible_version(),
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
    if unreachable:
        meta["unreachable_before_play"] = unreachable
    run.write_json("inventory.json", inventory.redacted(run.redactor))
    run.write_json("run.json", meta | {"state": "running"})

    def told(event: HostEvent) -> None:  # a failure message may echo a secret: never show it
        on_event(replace(event, message=run.redactor.text(event.message)))

    try:
        if playable:
            played = run_playbook(
                artifacts=run.path / ANSIBLE,
                content=content,
                playbook=PLAYBOOK,
                inventory=inventory.source,
                hosts=playable,
                tags=harden_plan.tags,
                extravars=extravars,
                check=check,
                diff=diff,
                strategy=strategy,
                forks=forks,
                on_event=told,
            )
        else:
            played = PlaybookOutcome("skipped", 0, {}, strategy=strategy, stats_from="none")
    finally:  # interrupted too: what ansible-runner wrote so far is redacted
        run.seal()
    outcome = replace(
        played,
        hosts={h: played.hosts.get(h) or HostStats(unreachable=1) for h in harden_plan.hosts},
        messages=played.messages
        | {h: [f"Preflight | connection: {why}"] for h, why in unreachable.items()},
    )
    finished = meta | {
        "state": "finished",
        "finished": now_utc().isoformat(),
        "strategy": outcome.strategy,
        "runner": {"status": outcome.status, "rc": outcome.rc},
        "stats_from": outcome.stats_from,
        "stats": {h: vars_of(s) for h, s in outcome.hosts.items()},
        "messages": outcome.messages,
    }
    run.write_json("run.json", finished | {"outcome": run_outcome(finished)})
    return outcome


# What a stored harden run came to. `unfinished`: casemate itself stopped before it could record
# the end (killed, machine gone); `canceled`: interrupted (Ctrl-C, SIGTERM); `failed`: Ansible
# failed or a host failed or was unreachable; `succeeded`: every host played to the end.
OUTCOMES = ("succeeded", "failed", "canceled", "unfinished")


def run_outcome(meta: Mapping[str, Any]) -> str:
    if "outcome" in meta and meta["outcome"] in OUTCOMES:
        return str(meta["outcome"])
    if meta.get("state") != "finished":
        return "unfinished"
    runner = meta.get("runner") or {}
    if runner.get("status") == "canceled":
        return "canceled"
    stats = meta.get("stats") or {}
    if runner.get("status") not in ("successful", "skipped") or runner.get("rc", 0) != 0:
        return "failed"
    return "failed" if any(host_failed(s) for s in stats.values()) else "succeeded"


def stored_stats(run: RunDir, meta: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per-host counts of a stored run: Ansible's recap, or, for a run that never recorded its end,
    what the events stored so far say."""
    if meta.get("state") == "finished":
        return {h: dict(s) for h, s in (meta.get("stats") or {}).items()}
    seen = tally_events(run.path / ANSIBLE / "artifacts")
    return {h: vars_of(seen.get(h) or HostStats()) for h in meta.get("hosts", [])}


def vars_of(stats: object) -> dict[str, int]:
    return {
        k: int(getattr(stats, k))
        for k in ("ok", "changed", "failed", "unreachable", "skipped", "rescued")
    }


def host_failed(stats: Mapping[str, int]) -> bool:
    return stats.get("failed", 0) > 0 or stats.get("unreachable", 0) > 0
