"""Verification: probe each host once, judge every selected control, record the run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from casemate.catalog.loader import Catalog
from casemate.catalog.model import Entry
from casemate.catalog.select import Selection
from casemate.checks.base import Check, Observations, Probe, Status, Verdict, error_of
from casemate.errors import BadInputError
from casemate.gate import Gate
from casemate.inventory import Inventory
from casemate.probe.collect import ProbeOutcome, Transport, collect, remote_command
from casemate.probe.transport import host_transport, interpreter_of
from casemate.redact import Redactor
from casemate.report import document
from casemate.rundir import RunDir, now_utc, run_meta
from casemate.waivers import WaiverSet


@dataclass(frozen=True, slots=True)
class Result:
    host: str
    entry: Entry
    verdict: Verdict
    evidence: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class HostVerification:
    host: str
    groups: tuple[str, ...]
    outcome: ProbeOutcome
    results: tuple[Result, ...]


def concerns(entry: Entry, groups: Iterable[str]) -> bool:
    return bool(set(entry.control.applies_to) & set(groups))


def wanted_probes(entries: Iterable[Entry]) -> list[Probe]:
    probes: set[Probe] = set()
    for entry in entries:
        if entry.check is not None:
            probes.update(entry.check.probes())
    return sorted(probes)


def unobserved(probes: Iterable[Probe], obs: Observations) -> tuple[str, str] | None:
    """(key, the collector's message) of the first wanted observation that failed, or None."""
    for probe in probes:
        err = error_of(obs.get(probe))
        if err:
            return probe.key, err
    return None


def judge(entry: Entry, obs: Observations) -> Verdict:
    """The verdict on one control. A manual control with a check is still shown as manual: the
    check only gathers what a person needs to decide.

    A precondition (`only_if`, any check) is judged by the same rules as the check itself. Seen
    not to hold (fail), it makes the control not_applicable, and then the check's own
    observations do not matter; a precondition that could not be judged (error, not_verifiable)
    gives its verdict to the control: a fact that could not be observed never makes a control
    not_applicable."""
    control = entry.control
    check = entry.check
    if check is None:
        return Verdict(Status.MANUAL, control.manual or "", "not judged automatically")
    if check.only_if is not None:
        held = judged(check.only_if, obs)
        if held.status is Status.FAIL:
            return Verdict(
                Status.NOT_APPLICABLE, f"only when {held.expected}", held.observed, held.evidence
            )
        if held.status is not Status.PASS:
            return held
    verdict = judged(check, obs)
    if not control.automated and verdict.status in (Status.PASS, Status.FAIL):
        return Verdict(Status.MANUAL, verdict.expected, verdict.observed, verdict.evidence)
    return verdict


def judged(check: Check, obs: Observations) -> Verdict:
    """One check's verdict (its precondition aside). It is never given on a fact that could not
    be observed: when a collector the check wants reported an error, the verdict is that error,
    whatever the kind made of it (a kind may still say more, e.g. which daemon is down; it may
    not turn a failed observation into pass, fail or not_applicable)."""
    failed: tuple[str, str] | None = None
    try:
        failed = unobserved(check.wants(), obs)
        verdict = check.judge(obs)
    except Exception as exc:  # a kind's bug must cost one verdict, not the whole report
        if failed is not None:
            return Verdict(Status.ERROR, "", failed[1], (failed[0],))
        name = check.kind.name
        return Verdict(Status.ERROR, "", f"check {name} crashed: {type(exc).__name__}: {exc}")
    if failed is not None and verdict.status is not Status.ERROR:
        key, err = failed
        evidence = tuple(dict.fromkeys((*verdict.evidence, key)))
        return Verdict(Status.ERROR, verdict.expected, err, evidence)
    return verdict


def _evidence(verdict: Verdict, obs: Observations | None) -> dict[str, Any]:
    if obs is None:
        return {}
    out: dict[str, Any] = {}
    for key in verdict.evidence:
        if key == "facts":
            out[key] = dict(obs.facts)
        elif key.startswith("var:"):  # only the inventory variable the verdict used, never all,
            name = key.removeprefix("var:")  # and never a secret one's value
            out[key] = Redactor().variable(name, obs.vars.get(name))  # values: the run's redactor
        else:
            out[key] = obs.data.get(key)
    return out


def host_results(
    host: str,
    groups: Iterable[str],
    entries: Iterable[Entry],
    outcome: ProbeOutcome,
) -> list[Result]:
    groups = list(groups)
    results = []
    for entry in entries:
        if not concerns(entry, groups):
            verdict = Verdict(
                Status.NOT_APPLICABLE,
                f"host in {', '.join(entry.control.applies_to)}",
                f"host groups: {', '.join(groups) or 'none'}",
            )
        elif entry.check is None:
            verdict = judge(entry, Observations(host))
        elif outcome.observations is None:
            status = Status.ERROR if entry.control.automated else Status.MANUAL
            verdict = Verdict(status, "", outcome.error or "host not probed")
        else:
            verdict = judge(entry, outcome.observations)
        results.append(Result(host, entry, verdict, _evidence(verdict, outcome.observations)))
    return results


def relevant_entries(entries: list[Entry], groups: Iterable[str]) -> list[Entry]:
    """The entries reported for a host: every entry of a benchmark that concerns the host at all
    (so a Docker host is not flooded with Kubernetes controls, and vice versa)."""
    groups = list(groups)
    benchmarks = {e.benchmark for e in entries if concerns(e, groups)}
    return [e for e in entries if e.benchmark in benchmarks]


def verify_hosts(
    inventory: Inventory,
    hosts: list[str],
    entries: list[Entry],
    *,
    forks: int,
    transport_for: Callable[[Inventory, str], Transport] = host_transport,
    on_host: Callable[[HostVerification], None] | None = None,
    fresh_proofs: bool = False,
) -> list[HostVerification]:
    # Planned before any host is contacted. Hosts of one kind (the same groups and interpreter) ask
    # for the same facts: their entries, probes and probe command are worked out (and the command
    # compressed) once.
    kinds: dict[tuple[str, ...], tuple[list[Entry], list[Probe]]] = {}
    commands: dict[tuple[tuple[Probe, ...], str], str] = {}
    plans: dict[str, tuple[list[str], list[Entry], list[Probe], str | None]] = {}
    for host in hosts:
        groups = inventory.groups_of(host)
        if tuple(groups) not in kinds:
            mine = relevant_entries(entries, groups)
            kinds[tuple(groups)] = (mine, wanted_probes([e for e in mine if concerns(e, groups)]))
        mine, probes = kinds[tuple(groups)]
        command = None
        if probes:
            key = (tuple(probes), interpreter_of(inventory.hostvars(host)))
            if key not in commands:
                commands[key] = remote_command(*key, fresh_proofs=fresh_proofs)
            command = commands[key]
        plans[host] = (groups, mine, probes, command)

    def one(host: str) -> HostVerification:
        groups, mine, probes, command = plans[host]
        if command is None:  # nothing to observe: do not even connect
            outcome = ProbeOutcome(Observations(host), {"skipped": "no automated control applies"})
        else:
            try:
                transport = transport_for(inventory, host)
            except BadInputError as exc:
                outcome = ProbeOutcome(None, {}, str(exc))
            else:
                hostvars = inventory.hostvars(host)
                outcome = collect(host, transport, probes, command=command)
                if outcome.observations is not None:
                    # checks see the host's inventory variables and, as in Ansible, its groups
                    facts = {**hostvars, "group_names": [g for g in groups if g != "all"]}
                    observed = replace(outcome.observations, vars=facts)
                    outcome = ProbeOutcome(observed, outcome.raw, outcome.error)
        done = HostVerification(
            host, tuple(groups), outcome, tuple(host_results(host, groups, mine, outcome))
        )
        if on_host is not None:
            on_host(done)
        return done

    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(hosts)))) as pool:
        return list(pool.map(one, hosts))


def judged_report(
    *,
    run: RunDir,
    catalog: Catalog,
    inventory: Inventory,
    selection: Selection,
    results: list[HostVerification],
    started: str,
    waivers: WaiverSet | None,
    gate: Gate | None = None,
) -> dict[str, Any]:
    """The report document of probed hosts (judged against `waivers` on the day the run
    started), redacted, and written into the run with each host's observations: report.json
    and junit.xml. verify and drift record what they judged the same way; verify also records
    the `gate` (--fail-on) it applied, with the exit status it gives."""
    built = document.build(
        run_id=run.id,
        started=started,
        finished=now_utc().isoformat(),
        inventory=str(inventory.source),
        catalog_digest=catalog.digest,
        benchmarks=catalog.benchmarks(),
        selection=selection,
        hosts=results,
    )
    if waivers is not None:
        day = datetime.fromisoformat(started).date()
        built = document.with_waivers(built, waivers, day, when="verify")
    if gate is not None:
        built["gate"] = gate.record(built, when="verify")
    doc: dict[str, Any] = run.redactor.scrub(built)
    for h in results:
        run.write_json(f"observations/{h.host}.json", h.outcome.raw | {"error": h.outcome.error})
    document.write_reports(run.path, doc)
    return doc


def run_verify(
    *,
    run: RunDir,
    catalog: Catalog,
    inventory: Inventory,
    hosts: list[str],
    entries: list[Entry],
    selection: Selection,
    forks: int,
    command: list[str],
    transport_for: Callable[[Inventory, str], Transport] = host_transport,
    on_host: Callable[[HostVerification], None] | None = None,
    waivers: WaiverSet | None = None,
    record: Mapping[str, Any] | None = None,
    gate: Gate | None = None,
    fresh_proofs: bool = False,
) -> dict[str, Any]:
    """Probe and judge `hosts`, and record the run as harden does: run.json (running, then
    finished with its outcome), the redacted inventory, each host's observations, report.json and
    junit.xml. Returns the report document (redacted: no report holds a secret, whatever a host
    answered). Outcome `succeeded`: every host was probed and judged; `failed`: a host could not
    be probed; `canceled`: interrupted (see harden.OUTCOMES). With `waivers`, the results are
    judged against them on the day the run started (document.with_waivers). The `gate`
    (--fail-on; default: any finding) is applied to the results and recorded with the exit
    status it gives, under `gate` in run.json and in the report. `fresh_proofs`: every container
    proof is started anew rather than reused (casemate_proof.py); run.json says so."""
    started = now_utc().isoformat()
    meta = run_meta(
        "verify",
        command=command,
        started=started,
        inventory=inventory.source,
        catalog=catalog,
        level=selection.level,
        profile=selection.profile,
        hosts=hosts,
        controls=[e.id for e in entries],
    )
    meta["selection"] = selection.record()
    if waivers is not None:
        meta["waivers"] = str(waivers.path)
    meta |= dict(record or {})  # e.g. which run it follows
    if fresh_proofs:
        meta["fresh_proofs"] = True
    run.write_json("inventory.json", inventory.redacted(run.redactor))
    run.write_json("run.json", meta | {"state": "running"})
    try:
        results = verify_hosts(
            inventory,
            hosts,
            entries,
            forks=forks,
            transport_for=transport_for,
            on_host=on_host,
            fresh_proofs=fresh_proofs,
        )
    except KeyboardInterrupt:
        run.write_json(
            "run.json",
            meta
            | {"state": "finished", "finished": now_utc().isoformat(), "outcome": "canceled"}
            | {"interrupted": True},
        )
        raise
    doc = judged_report(
        run=run,
        catalog=catalog,
        inventory=inventory,
        selection=selection,
        results=results,
        started=started,
        waivers=waivers,
        gate=gate or Gate(),
    )
    unprobed = {h["name"]: h["error"] for h in doc["hosts"] if not h["probed"]}
    finished = meta | {
        "state": "finished",
        "finished": doc["finished"],
        "summary": doc["summary"],
        "outcome": "failed" if unprobed else "succeeded",
        "gate": doc["gate"],
    }
    if unprobed:
        finished["unprobed"] = unprobed
    run.write_json("run.json", finished)
    return doc
