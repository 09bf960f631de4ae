"""Drift: probe every host once, name the controls that left their compliant state, and show what
the fix would change (docs/drift.md).

The probe judges every selected control through the verify path (verify.verify_hosts, the report
verify writes). What it cannot judge on a host (`not_verifiable`) is never assumed compliant: the
tags of those controls run in Ansible check mode, and a task that would change counts as drift.
The controls the probe saw fail get the check-mode diff of their own tags too, in the same run:
a host with anything to say gets exactly one check-mode run (one ansible-playbook per group of
hosts with the same tags), a host where every selected control passes gets none.

`decide` is pure (a report document in, per-host plans out): `harden --only-drifted` plays the
same plans for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from casemate import __version__, roleset
from casemate.catalog.loader import Catalog
from casemate.catalog.model import Entry
from casemate.catalog.select import Selection
from casemate.gate import Gate
from casemate.harden import _IDS, PLAYBOOK, held_back, host_failed, names_of, vars_of
from casemate.inventory import Inventory
from casemate.locations import package_file
from casemate.probe.collect import Transport
from casemate.probe.transport import host_transport
from casemate.report.diff import Changed, changed
from casemate.rundir import ANSIBLE, RunDir, now_utc, run_meta
from casemate.runner import HostEvent, PlaybookOutcome, run_playbook
from casemate.verify import HostVerification, judged_report, verify_hosts
from casemate.waivers import WaiverSet

SCHEMA_ID = "casemate-drift/1"

# What drift makes of a control on a host (drift.json lists only the controls in one of these):
DRIFTED = "drifted"  # the probe saw it fail or error, or its check-mode run would change it
NO_REMEDIATION = "drifted_no_remediation"  # the probe saw it fail or error; casemate has no fix
HELD = "drifted_held"  # drifted, but its fix shares a task with a waived control: not applied
WAIVED = "waived"  # a waiver in force covers it: never drift
UNJUDGED = "unjudged"  # not_verifiable, and check mode would change nothing (or has no fix)
STATES = (DRIFTED, NO_REMEDIATION, HELD, WAIVED, UNJUDGED)
DRIFT_STATES = (DRIFTED, NO_REMEDIATION, HELD)
_FINDINGS = ("fail", "error")


@dataclass(frozen=True, slots=True)
class HostPlan:
    """What the probe's verdicts say about one host, before any check-mode run."""

    host: str
    probed: bool
    error: str | None
    states: Mapping[str, str]  # control -> state (UNJUDGED ones may still be found drifted)
    tags: tuple[str, ...]  # the controls whose tags run: probe-drifted and unjudged, remediable

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(c for c, s in self.states.items() if s in DRIFT_STATES)


def _remediable(result: Mapping[str, Any]) -> bool:
    return bool(result["automated"]) and result.get("remediation") is not None


def decide(doc: Mapping[str, Any], shared: Sequence[frozenset[str]] = ()) -> list[HostPlan]:
    """Per host of a report document (judged against the waivers): the controls that drifted
    (status fail or error), those without a remediation, those waived, the not_verifiable ones
    (check mode decides), and the tags to run: every remediable drifted or not_verifiable control,
    less any that shares a task with a waived control on that host (`shared`, see
    harden.shared_fixes: held back, as harden holds it). Manual and not_applicable controls and
    passing ones are not drift. A host that could not be probed gets no plan of controls."""
    plans = []
    for host in doc["hosts"]:
        name = host["name"]
        if not host["probed"]:
            plans.append(HostPlan(name, False, host.get("error"), {}, ()))
            continue
        states: dict[str, str] = {}
        candidates: list[str] = []
        waived: set[str] = set()
        for r in doc["results"]:
            if r["host"] != name:
                continue
            control, status = r["control_id"], r["status"]
            if status == "waived":
                states[control] = WAIVED
                waived.add(control)
            elif status in _FINDINGS and r["automated"]:
                states[control] = DRIFTED if _remediable(r) else NO_REMEDIATION
                if _remediable(r):
                    candidates.append(control)
            elif status == "not_verifiable":
                states[control] = UNJUDGED
                if _remediable(r):
                    candidates.append(control)
        held = held_back(waived, set(candidates), list(shared)) - waived if waived else set()
        for control in held:
            if states[control] == DRIFTED:
                states[control] = HELD
        tags = tuple(c for c in candidates if c not in held)
        plans.append(HostPlan(name, True, None, states, tags))
    return plans


def _roles(entry: Entry) -> tuple[str, ...]:
    rem = entry.control.remediation
    return (rem.role, *rem.also) if rem is not None else ()


def named_ids(task: str, order: Sequence[str]) -> list[str]:
    """The control ids a task's name ends with (`... | cis_docker_3_17 cis_docker_3_18`), a range
    `cis_k8s_1_2_1 - cis_k8s_1_2_30` standing for every id between the two in catalog `order`."""
    found = _IDS.search(task)
    if found is None:
        return []
    words = found.group(1).split()
    index = {c: i for i, c in enumerate(order)}
    out: list[str] = []
    for i, word in enumerate(words):
        if word != "-":
            out.append(word)
        elif 0 < i < len(words) - 1 and words[i - 1] in index and words[i + 1] in index:
            out.extend(order[index[words[i - 1]] + 1 : index[words[i + 1]]])
    return out


def attribute(
    plan: HostPlan,
    changes: Iterable[Changed],
    entries: Mapping[str, Entry],
    order: Sequence[str] = (),
) -> tuple[dict[str, list[Changed]], list[Changed]]:
    """The check-mode changes on one host, per control of its run; and those no control of it
    explains. A task named for the ids it fixes (`... | cis_docker_3_17 cis_docker_3_18`, or a
    range of them in catalog `order`) belongs to those of them in the run. A role's shared step
    (write the merged file, restart: tagged with every control of the role, named for none)
    belongs to the run's controls of that role the probe saw drift, or, when there are none, to
    its not_verifiable ones: those are then the only reason the step would change."""
    mine: dict[str, list[Changed]] = {}
    other: list[Changed] = []
    run = set(plan.tags)
    for change in changes:
        if change.host != plan.host:
            continue
        ids = [c for c in named_ids(change.task, order) if c in run]
        if not ids and change.role is not None:
            in_role = [c for c in plan.tags if change.role in _roles(entries[c])]
            ids = [c for c in in_role if plan.states.get(c) == DRIFTED] or in_role
        if not ids:
            other.append(change)
        for control in ids:
            mine.setdefault(control, []).append(change)
    return mine, other


@dataclass(frozen=True, slots=True)
class CheckRun:
    hosts: tuple[str, ...]
    tags: tuple[str, ...]
    outcome: PlaybookOutcome


@dataclass(frozen=True, slots=True)
class Drift:
    """A drift run: the report of what the probe judged, and drift.json's document."""

    report: dict[str, Any]
    doc: dict[str, Any]
    check_runs: tuple[CheckRun, ...] = field(default_factory=tuple)


def _control_doc(
    result: Mapping[str, Any], state: str, found_by: str | None, changes: Sequence[Changed]
) -> dict[str, Any]:
    return {
        "control_id": result["control_id"],
        "title": result["title"],
        "benchmark": result["benchmark"],
        "ref": result["ref"],
        "level": result["level"],
        "automated": result["automated"],
        "remediation": result["remediation"],
        "status": result.get("judged", result["status"]) if state == WAIVED else result["status"],
        "state": state,
        "found_by": found_by,
        "expected": result["expected"],
        "observed": result["observed"],
        "changes": [{"task": c.task, "diff": "\n".join(c.diffs)} for c in changes],
    }


def _counts(controls: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    states = [c["state"] for c in controls]
    return {s: states.count(s) for s in STATES}


def build(
    *,
    report: Mapping[str, Any],
    plans: Sequence[HostPlan],
    check_runs: Sequence[CheckRun],
    changes: Sequence[Changed],
    entries: Mapping[str, Entry],
    finished: str,
    order: Sequence[str] = (),
) -> dict[str, Any]:
    """drift.json's document (python/casemate/report/drift.schema.json). `order`: every catalog
    id in catalog order (task names give ranges of ids)."""
    results = {(r["host"], r["control_id"]): r for r in report["results"]}
    played = {h: run for run in check_runs for h in run.hosts}
    hosts: list[dict[str, Any]] = []
    for plan in plans:
        mine, other = attribute(plan, changes, entries, order)
        check = played.get(plan.host)
        stats = vars_of(check.outcome.hosts.get(plan.host)) if check is not None else None
        failed_check = check is not None and (
            stats is None or host_failed(stats) or check.outcome.status != "successful"
        )
        controls = []
        for control, decided in plan.states.items():
            state, found_by = decided, "probe" if decided in DRIFT_STATES else None
            if decided == UNJUDGED and mine.get(control):
                state, found_by = DRIFTED, "check_mode"
            result = results[(plan.host, control)]
            controls.append(_control_doc(result, state, found_by, mine.get(control, [])))
        error = plan.error
        if failed_check:
            said = (check.outcome.messages.get(plan.host) if check is not None else None) or []
            error = "check-mode run failed" + (f": {said[0]}" if said else "")
        hosts.append(
            {
                "name": plan.host,
                "probed": plan.probed,
                "failed": not plan.probed or failed_check,
                "error": error,
                "check_mode": {
                    "tags": list(plan.tags),
                    "played": check is not None,
                    "stats": stats,
                },
                "counts": _counts(controls),
                "controls": controls,
                "unattributed_changes": [
                    {"task": c.task, "diff": "\n".join(c.diffs)} for c in other
                ],
            }
        )
    drifted = sum(h["counts"][s] for h in hosts for s in DRIFT_STATES)
    return {
        "schema": SCHEMA_ID,
        "casemate_version": __version__,
        "run_id": report["run_id"],
        "started": report["started"],
        "finished": finished,
        "inventory": report["inventory"],
        "catalog": dict(report["catalog"]),
        "selection": dict(report["selection"]),
        "check_mode_runs": [
            {
                "hosts": list(r.hosts),
                "tags": list(r.tags),
                "status": r.outcome.status,
                "rc": r.outcome.rc,
            }
            for r in check_runs
        ],
        "summary": {
            "hosts": len(hosts),
            "failed_hosts": sum(h["failed"] for h in hosts),
            "drifted_hosts": sum(any(h["counts"][s] for s in DRIFT_STATES) for h in hosts),
            "drifted": drifted,
        },
        "hosts": hosts,
    }


def drifted_controls(doc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(host, control) for every drifted control of a drift document."""
    return [
        (h["name"], c) for h in doc["hosts"] for c in h["controls"] if c["state"] in DRIFT_STATES
    ]


def exit_code(doc: Mapping[str, Any], gate: Gate) -> int:
    """0 no drift the gate counts; 1 drift it counts; 3 a host failed (not probed, or its
    check-mode run failed), whatever the gate."""
    if any(h["failed"] for h in doc["hosts"]):
        return 3
    return 1 if any(gate.selects(c) for _, c in drifted_controls(doc)) else 0


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(package_file("report", "drift.schema.json").read_text())
    return loaded


def validate(doc: Mapping[str, Any]) -> None:
    """Raise jsonschema.ValidationError when `doc` does not follow drift.json's schema."""
    import jsonschema  # noqa: PLC0415 - only tests and readers of a stored document need it

    validator = jsonschema.validators.validator_for(schema())
    validator(schema()).validate(dict(doc))


def per_host(doc: Mapping[str, Any]) -> dict[str, int]:
    """Per host: how many controls drifted (the metrics file's casemate_drifted_controls)."""
    return {h["name"]: sum(h["counts"][s] for s in DRIFT_STATES) for h in doc["hosts"]}


def run_drift(
    *,
    run: RunDir,
    content: Path,
    catalog: Catalog,
    inventory: Inventory,
    hosts: list[str],
    entries: list[Entry],
    selection: Selection,
    forks: int,
    command: list[str],
    strategy: str,
    shared: Sequence[frozenset[str]],
    waivers: WaiverSet | None = None,
    transport_for: Callable[[Inventory, str], Transport] = host_transport,
    on_host: Callable[[HostVerification], None] | None = None,
    on_event: Callable[[HostEvent], None] | None = None,
) -> Drift:
    """Probe and judge `hosts` (one round trip each), decide what drifted, run the check-mode
    part, and record the run: run.json (kind drift; running, then finished with its outcome),
    the redacted inventory, each host's observations, report.json and junit.xml (what the probe
    judged, as verify writes them), drift.json, and the check-mode runs' Ansible artifacts.
    Outcome `failed` when a host could not be probed or its check-mode run failed. Callable on
    its own (a scheduled run calls it as `casemate drift` does)."""
    started = now_utc().isoformat()
    meta = run_meta(
        "drift",
        command=command,
        started=started,
        inventory=inventory.source,
        catalog=catalog,
        level=selection.level,
        profile=selection.profile,
        hosts=hosts,
        controls=[e.id for e in entries],
    )
    meta |= {"selection": selection.record(), "check": True}
    if waivers is not None:
        meta["waivers"] = str(waivers.path)
    run.write_json("inventory.json", inventory.redacted(run.redactor))
    run.write_json("run.json", meta | {"state": "running"})
    check_runs: list[CheckRun] = []

    def told(event: HostEvent) -> None:
        if on_event is not None:
            on_event(event)

    try:
        probed = verify_hosts(
            inventory, hosts, entries, forks=forks, transport_for=transport_for, on_host=on_host
        )
        report = judged_report(
            run=run,
            catalog=catalog,
            inventory=inventory,
            selection=selection,
            results=probed,
            started=started,
            waivers=waivers,
        )
        plans = decide(report, shared)
        groups: dict[tuple[str, ...], list[str]] = {}
        for plan in plans:
            if plan.tags:
                groups.setdefault(plan.tags, []).append(plan.host)
        played = roleset.playbook_roles(content / "playbooks" / PLAYBOOK) if groups else []
        try:
            for tags, members in groups.items():
                roles = roleset.needed(entries, tags)
                trimmed = roleset.write_trimmed(
                    content / "playbooks" / PLAYBOOK,
                    run.file("playbooks", f"{len(check_runs) + 1}-{PLAYBOOK}"),
                    names_of(inventory, members),
                    roles,
                )
                outcome = run_playbook(
                    artifacts=run.path / ANSIBLE,
                    content=content,
                    playbook=PLAYBOOK,
                    playbook_file=trimmed,
                    inventory=inventory.source,
                    hosts=members,
                    tags=list(tags),
                    # only the roles these controls need (roleset.needed), none other
                    skip_tags=roleset.skipped(played, roles),
                    extravars={
                        "casemate_level": selection.level,
                        "casemate_profile": selection.profile or "standard",
                    },
                    check=True,
                    diff=True,
                    strategy=strategy,
                    forks=forks,
                    on_event=told,
                )
                check_runs.append(CheckRun(tuple(members), tags, outcome))
        finally:
            if groups:
                run.seal()
    except KeyboardInterrupt:
        run.write_json(
            "run.json",
            meta
            | {"state": "finished", "finished": now_utc().isoformat(), "outcome": "canceled"}
            | {"interrupted": True},
        )
        raise
    changes = changed(run.path / ANSIBLE / "artifacts") if check_runs else []
    by_id = {e.id: e for e in entries}
    doc: dict[str, Any] = run.redactor.scrub(
        build(
            report=report,
            plans=plans,
            check_runs=check_runs,
            changes=changes,
            entries=by_id,
            finished=now_utc().isoformat(),
            order=list(catalog.ids()),
        )
    )
    run.write_json("drift.json", doc)
    failed = {h["name"]: h["error"] for h in doc["hosts"] if h["failed"]}
    finished = meta | {
        "state": "finished",
        "finished": doc["finished"],
        "summary": report["summary"],
        "drift": {
            "summary": doc["summary"],
            "hosts": {
                h["name"]: {
                    "drifted": [
                        c["control_id"] for c in h["controls"] if c["state"] in DRIFT_STATES
                    ],
                    "tags": h["check_mode"]["tags"],
                }
                for h in doc["hosts"]
            },
        },
        "playbook_runs": len(check_runs),
        "outcome": "failed" if failed else "succeeded",
    }
    if failed:
        finished["failed_hosts"] = failed
    run.write_json("run.json", finished)
    return Drift(report, doc, tuple(check_runs))


def only_drifted_record(plans: Sequence[HostPlan], before_run: str) -> dict[str, Any]:
    """What `harden --only-drifted` keeps in its run.json of the evaluation before it: per host,
    what drifted (as the probe saw it), what could not be judged, and the tags run."""
    return {
        "evaluated_by": before_run,
        "hosts": {
            p.host: {
                "probed": p.probed,
                "error": p.error,
                "drifted": list(p.drifted),
                "unjudged": [c for c, s in p.states.items() if s == UNJUDGED and c in p.tags],
                "tags": list(p.tags),
            }
            for p in plans
        },
    }
