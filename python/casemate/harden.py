"""Hardening: turn a selection of controls into role tags, run the playbook, record the run."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from casemate import roleset, waivers
from casemate.catalog.loader import Catalog
from casemate.catalog.model import Entry
from casemate.errors import BadInputError
from casemate.generated import tag_lists
from casemate.inventory import Inventory
from casemate.rundir import ANSIBLE, RunDir, now_utc, run_meta
from casemate.runner import HostEvent, HostStats, PlaybookOutcome, run_playbook, tally_events

PLAYBOOK = "harden.yml"
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class HardenPlan:
    hosts: list[str]
    tags: list[str]
    entries: list[Entry]
    # host -> the controls a waiver in force covers there: no task carrying their tag runs on it
    waived: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # what the waivers came to, as run.json keeps it (file, waived and expired, warnings)
    waiver_record: Mapping[str, Any] | None = None

    # host -> the only controls whose tags run there (`harden --only-drifted`: what drifted on
    # it); None: every selected control. A host given no control gets no Ansible run at all.
    only: Mapping[str, tuple[str, ...]] | None = None
    # what the drift evaluation came to, as run.json keeps it (drift.only_drifted_record)
    drift_record: Mapping[str, Any] | None = None
    # the selection is a subset of the level (--controls): each group of hosts plays only the
    # roles its tags need, as with `only`; False (a full harden): every role, as always
    narrow: bool = False

    def roles(self, tags: tuple[str, ...]) -> list[str] | None:
        """The roles a group of hosts running `tags` plays (roleset.needed) when the run is a
        subset (`narrow` or `only`); None: every role of the playbook."""
        if not self.narrow and self.only is None:
            return None
        return roleset.needed(self.entries, tags)

    def host_tags(self, host: str) -> tuple[str, ...]:
        """The tags run on `host`: the selected controls (only those given for it, with `only`)
        less those waived there."""
        wanted = set(self.tags if self.only is None else self.only.get(host, ()))
        skipped = set(self.waived.get(host, ()))
        return tuple(t for t in self.tags if t in wanted and t not in skipped)

    def applied(self) -> list[str]:
        """The controls the run applies on some host (the history credits a fix to it)."""
        if self.only is None:
            return list(self.tags)
        run = {t for h in self.hosts for t in self.host_tags(h)}
        return [t for t in self.tags if t in run]

    def batches(self, hosts: list[str]) -> list[tuple[list[str], tuple[str, ...]]]:
        """`hosts` grouped by the tags they run (host_tags), in plan order: one ansible-playbook
        run per group (Ansible's tags are the same for every host of a run). Without waivers or
        `only`: one group with every selected tag. A group with no tag is not played."""
        groups: dict[tuple[str, ...], list[str]] = {}
        for host in hosts:
            groups.setdefault(self.host_tags(host), []).append(host)
        return [(members, tags) for tags, members in groups.items()]


def plan(
    entries: list[Entry], inventory: Inventory, limit: str | None, *, narrow: bool = False
) -> HardenPlan:
    """Validate everything before any host is touched. `narrow`: the selection names its
    controls (HardenPlan.narrow)."""
    remediable = [e for e in entries if e.control.remediation is not None]
    if not remediable:
        raise BadInputError("the selection contains no control casemate can remediate")
    hosts = inventory.select(limit)
    return HardenPlan(
        hosts=hosts, tags=[e.id for e in remediable], entries=remediable, narrow=narrow
    )


_IDS = re.compile(r"\|\s*((?:(?:cis|cm)_[a-z0-9_]+|-)(?:\s+(?:(?:cis|cm)_[a-z0-9_]+|-))*)\s*$")


def shared_fixes(content: Path, catalog: Catalog) -> list[frozenset[str]]:
    """The id sets of role tasks that fix several controls at once: a task named for the ids it
    fixes (`Make daemon.json root:root 0644 | cis_docker_3_17 cis_docker_3_18`) whose tags carry
    two ids or more. Leaving one of them out of a run would not keep such a task from changing it:
    it runs for the others. A role's shared steps (read, back up, write the merged file, restart)
    are not among them: they apply only what the selected controls' own steps decided (their tag
    lists are generated: every control of the role, or of a part of it)."""
    known = set(catalog.ids())
    generated = {frozenset(t.ids) for t in tag_lists(content, catalog)}
    found: set[frozenset[str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            tags, name = node.get("tags"), str(node.get("name") or "")
            if isinstance(tags, list) and _IDS.search(name):
                ids = frozenset(t for t in tags if t in known)
                if len(ids) > 1 and ids not in generated:
                    found.add(ids)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted((content / "roles").glob("*/tasks/**/*.yml")):
        walk(yaml.load(path.read_text(), Loader=_LOADER))
    return sorted(found, key=sorted)


def held_back(waived: set[str], selected: set[str], shared: list[frozenset[str]]) -> set[str]:
    """The waived controls and every selected control that shares a task with one of them (and so
    on): none of their tags may be in the host's run."""
    held = set(waived)
    grown = True
    while grown:
        grown = False
        for ids in shared:
            if ids & held and (ids & selected) - held:
                held |= ids & selected
                grown = True
    return held


def waive(
    harden_plan: HardenPlan,
    inventory: Inventory,
    found: waivers.WaiverSet,
    today: date,
    shared: list[frozenset[str]],
) -> HardenPlan:
    """The plan with the waivers in force on `today` taken out of remediation, host by host, judged
    by waivers.apply as verify judges them (a control that does not concern a host is not waived
    there: no task of it runs there anyway). A selected control that shares a task with a waived
    one (`shared`, see shared_fixes) is held back with it on that host, and recorded so."""
    groups = {h: inventory.groups_of(h) for h in harden_plan.hosts}
    planned = [
        {"host": h, "control_id": e.id, "status": "planned"}
        for h in harden_plan.hosts
        for e in harden_plan.entries
        if set(e.control.applies_to) & set(groups[h])
    ]
    judged, warnings = waivers.apply(planned, groups, found, today)
    waived: dict[str, list[str]] = {}
    expired: dict[str, list[str]] = {}
    for r in judged:
        if r["status"] == "waived":
            waived.setdefault(r["host"], []).append(r["control_id"])
        elif r.get("waiver"):
            expired.setdefault(r["host"], []).append(r["control_id"])
    selected = set(harden_plan.tags)
    left_out: dict[str, tuple[str, ...]] = {}
    held_with: dict[str, list[str]] = {}
    for host, ids in waived.items():
        held = held_back(set(ids), selected, shared)
        left_out[host] = tuple(t for t in harden_plan.tags if t in held)
        if held - set(ids):
            held_with[host] = [t for t in harden_plan.tags if t in held - set(ids)]
    record = {
        "file": str(found.path),
        "applied_on": today.isoformat(),
        "waived": waived,
        "held_with_waived": held_with,
        "expired": expired,
        "warnings": warnings,
        "entries": [w.record(today) for w in found.waivers],
    }
    return replace(harden_plan, waived=left_out, waiver_record=record)


def snapshot_roles(entries: list[Entry]) -> list[str]:
    """The roles a run of `entries` may run (each control's role and those that take part): the
    file snapshot at its start covers what they may change."""
    roles = {
        r
        for e in entries
        if e.control.remediation is not None
        for r in (e.control.remediation.role, *e.control.remediation.also)
    }
    return sorted(roles)


def files_changed(outcome: PlaybookOutcome) -> dict[str, list[Any]]:
    """Per host, the change manifest the run's last play returned (roles/casemate_rollback): a
    host without one stopped before the end of the run."""
    return {
        h: list(r["files_changed"])
        for h, r in outcome.records.items()
        if isinstance(r.get("files_changed"), list)
    }


def _merged(runs: list[PlaybookOutcome], strategy: str) -> PlaybookOutcome:
    """One outcome for the runs of one harden (one per group of hosts with the same waivers)."""
    if not runs:
        return PlaybookOutcome("skipped", 0, {}, strategy=strategy, stats_from="none")
    if len(runs) == 1:
        return runs[0]
    bad = next((r for r in runs if r.status != "successful" or r.rc != 0), None)
    return PlaybookOutcome(
        status=bad.status if bad else "successful",
        rc=bad.rc if bad else 0,
        hosts={h: s for r in runs for h, s in r.hosts.items()},
        messages={h: m for r in runs for h, m in r.messages.items()},
        strategy=runs[0].strategy,
        stats_from="events" if any(r.stats_from == "events" for r in runs) else "play",
        records={h: x for r in runs for h, x in r.records.items()},
    )


def _plan_record(
    harden_plan: HardenPlan,
    batches: list[tuple[list[str], tuple[str, ...]]],
    unreachable: Mapping[str, str],
) -> dict[str, Any]:
    """What run.json keeps of the plan beyond the selection: hosts left out before the play, the
    waivers, what drifted (`--only-drifted`) and the groups of hosts played with their own tags."""
    record: dict[str, Any] = {}
    if unreachable:
        record["unreachable_before_play"] = dict(unreachable)
    if harden_plan.waiver_record is not None:
        record["waivers"] = dict(harden_plan.waiver_record)
    if harden_plan.only is not None:
        record["only_drifted"] = dict(harden_plan.drift_record or {})
        record["batches"] = [{"hosts": h, "tags": list(t)} for h, t in batches]
    elif len(batches) > 1:
        record["batches"] = [
            {"hosts": h, "left_out": [t for t in harden_plan.tags if t not in tags]}
            for h, tags in batches
        ]
    if harden_plan.narrow or harden_plan.only is not None:
        # a subset: the only roles each group of hosts plays (the others are skipped whole)
        record["roles_played"] = [
            {"hosts": h, "roles": harden_plan.roles(tags) or []} for h, tags in batches if tags
        ]
    return record


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
    strategy_note: str = "",
    on_event: Callable[[HostEvent], None],
    break_glass: str | None = None,
    break_glass_record: Mapping[str, Any] | None = None,
    unreachable: Mapping[str, str] | None = None,
    busy: Mapping[str, Mapping[str, Any]] | None = None,
    lock_failed: Mapping[str, str] | None = None,
    host_lock: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> PlaybookOutcome:
    """Play the hosts that answered the reachability check (the host lock's round trip) and are
    not busy; record the others, without running a task against them: unreachable with what their
    connection said, busy with the record of the run that holds them (hostlock.py), and those
    whose lock could not be taken as failed, with why."""
    started = now_utc().isoformat()
    unreachable = dict(unreachable or {})
    busy = {h: dict(r) for h, r in (busy or {}).items()}
    lock_failed = dict(lock_failed or {})
    playable = [
        h
        for h in harden_plan.hosts
        if h not in unreachable and h not in busy and h not in lock_failed
    ]
    meta = run_meta(
        "harden",
        command=command,
        started=started,
        inventory=inventory.source,
        catalog=catalog,
        level=level,
        profile=profile,
        hosts=harden_plan.hosts,
        controls=harden_plan.applied(),
    )
    # extra: a wave of a staged rollout has `rollout` (waves.rollout_record)
    meta |= {"check": check, "diff": diff} | dict(extra or {})
    if strategy_note:  # auto fell back to linear: why
        meta["strategy_note"] = strategy_note
    extravars: dict[str, Any] = {
        "casemate_level": level,
        "casemate_profile": profile,
        # the file snapshot and change manifest of the run (roles/casemate_rollback)
        "casemate_run_id": run.id,
        "casemate_rollback_roles": snapshot_roles(harden_plan.entries),
    }
    if break_glass_record is not None:  # profile immutable: how each host stays reachable
        meta["break_glass"] = {"flag": break_glass, "hosts": dict(break_glass_record)}
        run.write_json("breakglass.json", meta["break_glass"])
    if break_glass is not None:
        extravars["casemate_break_glass"] = break_glass
    meta |= _lock_meta(host_lock, busy, lock_failed)
    batches = harden_plan.batches(playable)
    meta |= _plan_record(harden_plan, batches, unreachable)
    run.write_json("inventory.json", inventory.redacted(run.redactor))
    run.write_json("run.json", meta | {"state": "running"})

    def told(event: HostEvent) -> None:  # a failure message may echo a secret: never show it
        on_event(replace(event, message=run.redactor.text(event.message)))

    runs: list[PlaybookOutcome] = []
    not_played: dict[str, str] = {}
    started_runs = 0  # ansible-playbook runs started
    try:
        for hosts, tags in batches:
            if harden_plan.tags and not tags:  # all waived (or none drifted) on these hosts
                runs.append(
                    PlaybookOutcome(
                        "successful", 0, {h: HostStats() for h in hosts}, strategy=strategy
                    )
                )
                continue
            if any(r.status != "successful" or r.rc != 0 for r in runs) or any(
                host_failed(vars_of(s)) for r in runs for s in r.hosts.values()
            ):
                # hosts with other waivers are played after those before them; a failure stops
                # the rest, as the one-at-a-time plays (etcd, API servers) stop at a failed host
                not_played.update(dict.fromkeys(hosts, "not played: an earlier group failed"))
                continue
            started_runs += 1
            runs.append(
                run_playbook(
                    artifacts=run.path / ANSIBLE,
                    content=content,
                    playbook=PLAYBOOK,
                    inventory=inventory.source,
                    hosts=hosts,
                    tags=list(tags),
                    **_subset(content, harden_plan, tags, extravars),
                    playbook_file=roleset.write_trimmed(
                        content / "playbooks" / PLAYBOOK,
                        run.file("playbooks", f"{started_runs}-{PLAYBOOK}"),
                        names_of(inventory, hosts),
                        harden_plan.roles(tags),
                    ),
                    check=check,
                    diff=diff,
                    strategy=strategy,
                    forks=forks,
                    on_event=told,
                )
            )
        played = _merged(runs, strategy)
    except KeyboardInterrupt:  # recorded as canceled, with what the events so far say
        seen = tally_events(run.path / ANSIBLE / "artifacts")
        stats = {h: vars_of(seen.get(h) or HostStats()) for h in harden_plan.hosts}
        run.write_json(
            "run.json",
            meta
            | {"state": "finished", "finished": now_utc().isoformat(), "outcome": "canceled"}
            | {"interrupted": True, "stats_from": "events", "stats": stats},
        )
        raise
    finally:  # interrupted too: what ansible-runner wrote so far is redacted
        run.seal()
    outcome = replace(
        played,
        hosts={
            h: played.hosts.get(h) or _unplayed(h, not_played, busy, lock_failed)
            for h in harden_plan.hosts
        },
        messages=played.messages
        | {h: [f"Preflight | connection: {why}"] for h, why in unreachable.items()}
        | {h: [f"Preflight | host lock: {why}"] for h, why in lock_failed.items()}
        | {h: [why] for h, why in not_played.items()}
        | {h: [busy_said(r)] for h, r in busy.items()},
    )
    finished = meta | {
        "state": "finished",
        "finished": now_utc().isoformat(),
        **played_record(outcome),
        # per host, each file the run changed and its backup (casemate rollback); none in check mode
        **({} if check else {"files_changed": files_changed(outcome)}),
    }
    if not_played:
        finished["not_played"] = not_played
    # whether Ansible ran at all (`harden --only-drifted` on hosts where nothing drifted: never)
    finished["playbook_runs"] = started_runs
    run.write_json("run.json", finished | {"outcome": run_outcome(finished)})
    return outcome


def names_of(inventory: Inventory, hosts: list[str]) -> set[str]:
    """`hosts` and every group one of them is in: what a play's host pattern may name to play on
    them (roleset.trimmed)."""
    run = set(hosts)
    return run | {g for g, members in inventory.groups().items() if run & set(members)}


def _subset(
    content: Path, harden_plan: HardenPlan, tags: tuple[str, ...], extravars: Mapping[str, Any]
) -> dict[str, Any]:
    """The skip_tags and extravars of the playbook run of a group of hosts running `tags`: a
    subset plays only the roles it needs (the others skipped whole) and snapshots only their
    paths; a full harden skips nothing."""
    roles = harden_plan.roles(tags)
    if roles is None:
        return {"skip_tags": [], "extravars": dict(extravars)}
    played = roleset.playbook_roles(content / "playbooks" / PLAYBOOK)
    return {
        "skip_tags": roleset.skipped(played, roles),
        "extravars": dict(extravars) | {"casemate_rollback_roles": roles},
    }


def _lock_meta(
    host_lock: Mapping[str, Any] | None,
    busy: Mapping[str, Any],
    lock_failed: Mapping[str, str],
) -> dict[str, Any]:
    """What run.json keeps of the host locks: how they were taken, the busy hosts' holders, and
    the hosts whose lock could not be taken."""
    out: dict[str, Any] = {}
    if host_lock is not None:
        out["host_lock"] = dict(host_lock)
    if busy:
        out["busy"] = dict(busy)
    if lock_failed:
        out["lock_failed"] = dict(lock_failed)
    return out


def _unplayed(
    host: str,
    not_played: Mapping[str, str],
    busy: Mapping[str, Any],
    lock_failed: Mapping[str, str],
) -> HostStats:
    """The recap of a host no task ran on: busy and not played count nothing (the host was left
    alone, it did not fail), a lock that could not be taken counts as a failure, any other host
    was unreachable."""
    if host in not_played or host in busy:
        return HostStats()
    return HostStats(failed=1) if host in lock_failed else HostStats(unreachable=1)


def busy_said(record: Mapping[str, Any]) -> str:
    """One line for a busy host, from its holder's record (hostlock.Holder.record)."""
    pid = f" pid {record['pid']}" if record.get("pid") is not None else ""
    return (
        f"busy: held by run {record.get('run_id')} (controller {record.get('controller')}{pid}) "
        f"since {record.get('started')}, lock expires {record.get('expires')}; left untouched"
    )


# What a stored harden run came to. `unfinished`: casemate itself stopped before it could record
# the end (killed, machine gone); `canceled`: interrupted (Ctrl-C, SIGTERM); `failed`: Ansible
# failed or a host failed or was unreachable; `busy`: every host played succeeded, but another run
# held some hosts (their host lock), which were left untouched; `succeeded`: every host played to
# the end.
OUTCOMES = ("succeeded", "failed", "canceled", "unfinished", "busy")
# The exit status of harden (and of `report` on a harden run) for each outcome: 4 says "nothing
# failed, but not every host was done: run again later" (docs/schedule.md).
EXIT_CODES = {"succeeded": 0, "busy": 4}


def exit_code(outcome: str) -> int:
    return EXIT_CODES.get(outcome, 3)


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
    if any(host_failed(s) for s in stats.values()):
        return "failed"
    return "busy" if meta.get("busy") else "succeeded"


def stored_stats(run: RunDir, meta: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per-host counts of a stored run: Ansible's recap, or, for a run that never recorded its end,
    what the events stored so far say."""
    if meta.get("state") == "finished":
        return {h: dict(s) for h, s in (meta.get("stats") or {}).items()}
    seen = tally_events(run.path / ANSIBLE / "artifacts")
    return {h: vars_of(seen.get(h) or HostStats()) for h in meta.get("hosts", [])}


def played_record(outcome: PlaybookOutcome) -> dict[str, Any]:
    """What a run.json keeps of the ansible-playbook run(s) it made: the strategy, the runner's
    status, each host's recap (and where it came from) and the messages of its failures."""
    return {
        "strategy": outcome.strategy,
        "runner": {"status": outcome.status, "rc": outcome.rc},
        "stats_from": outcome.stats_from,
        "stats": {h: vars_of(s) for h, s in outcome.hosts.items()},
        "messages": outcome.messages,
    }


def vars_of(stats: object) -> dict[str, int]:
    return {
        k: int(getattr(stats, k))
        for k in ("ok", "changed", "failed", "unreachable", "skipped", "rescued")
    }


def host_failed(stats: Mapping[str, int]) -> bool:
    return stats.get("failed", 0) > 0 or stats.get("unreachable", 0) > 0
