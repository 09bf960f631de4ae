"""Verification: select controls, probe each host once, judge every control, collect results."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from casemate.catalog.loader import Catalog
from casemate.catalog.model import PROFILES, Entry
from casemate.checks.base import CheckKind, Observations, Probe, Status, Verdict, error_of
from casemate.checks.command_output import CommandOutput, CommandOutputParams
from casemate.errors import BadInputError
from casemate.inventory import Inventory
from casemate.probe.collect import ProbeOutcome, Transport, collect
from casemate.probe.transport import interpreter_of, testinfra_transport
from casemate.redact import Redactor


@dataclass(frozen=True, slots=True)
class Selection:
    level: int = 1
    controls: tuple[str, ...] = ()
    benchmark: str | None = None
    profile: str | None = "standard"  # None: every profile (browsing the catalog)


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


def parse_controls(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(dict.fromkeys(i.strip() for i in text.split(",") if i.strip()))


def select(catalog: Catalog, selection: Selection) -> list[Entry]:
    """The entries a run covers: those of the profile, then named controls (which win over the
    level) or the level. Unknown ids, and named controls outside the profile, are bad input."""
    if selection.level not in (1, 2):
        raise BadInputError(f"--level must be 1 or 2, not {selection.level}")
    if selection.profile is not None and selection.profile not in PROFILES:
        raise BadInputError(
            f"--profile must be one of {', '.join(PROFILES)}, not '{selection.profile}'"
        )
    benchmarks = catalog.benchmarks()
    if selection.benchmark and selection.benchmark not in benchmarks:
        raise BadInputError(
            f"--benchmark: unknown benchmark '{selection.benchmark}' "
            f"(known: {', '.join(sorted(benchmarks))})"
        )
    entries = [
        e
        for e in catalog.entries
        if (not selection.benchmark or e.benchmark == selection.benchmark)
        and (selection.profile is None or selection.profile in e.control.profiles)
    ]
    if selection.controls:
        known = {e.id: e for e in catalog.entries}
        unknown = [c for c in selection.controls if c not in known]
        if unknown:
            raise BadInputError(f"--controls: unknown control '{unknown[0]}'")
        outside = [
            c for c in selection.controls if selection.profile not in known[c].control.profiles
        ]
        if outside:
            raise BadInputError(
                f"--controls: {outside[0]} is not part of profile '{selection.profile}'"
            )
        wanted = set(selection.controls)
        return [e for e in entries if e.id in wanted]
    return [e for e in entries if e.control.level <= selection.level]


def concerns(entry: Entry, groups: Iterable[str]) -> bool:
    return bool(set(entry.control.applies_to) & set(groups))


def wanted_probes(entries: Iterable[Entry], kinds: Mapping[str, CheckKind[Any]]) -> list[Probe]:
    probes: set[Probe] = set()
    for entry in entries:
        check = entry.control.check
        if check is not None:
            kind = kinds[check.kind]
            probes.update(kind.wants(kind.params.model_validate(check.params)))
            if check.only_if is not None:
                probes.update(_CONDITION.wants(CommandOutputParams.model_validate(check.only_if)))
    return sorted(probes)


_CONDITION = CommandOutput()


def _precondition(only_if: Mapping[str, Any], obs: Observations) -> Verdict | None:
    """None when the precondition holds; otherwise the verdict that replaces the check's."""
    held = _CONDITION.judge(CommandOutputParams.model_validate(only_if), obs)
    if held.status is Status.PASS:
        return None
    if held.status is Status.FAIL:
        return Verdict(
            Status.NOT_APPLICABLE, f"only when {held.expected}", held.observed, held.evidence
        )
    return held


def unobserved(probes: Iterable[Probe], obs: Observations) -> tuple[str, str] | None:
    """(key, the collector's message) of the first wanted observation that failed, or None."""
    for probe in probes:
        err = error_of(obs.get(probe))
        if err:
            return probe.key, err
    return None


def judge(entry: Entry, obs: Observations, kinds: Mapping[str, CheckKind[Any]]) -> Verdict:
    """The verdict on one control. A manual control with a check is still shown as manual: the
    check only gathers what a person needs to decide.

    A verdict is never given on a fact that could not be observed: when a collector the check
    wants reported an error, the verdict is that error, whatever the kind made of it (a kind may
    still say more, e.g. which daemon is down; it may not turn a failed observation into pass,
    fail or not_applicable). A precondition (`only_if`) that does not hold still makes the control
    not_applicable: then the check's own observations do not matter."""
    control = entry.control
    check = control.check
    if check is None:
        return Verdict(Status.MANUAL, control.manual or "", "not judged automatically")
    kind = kinds[check.kind]
    failed: tuple[str, str] | None = None
    try:
        if check.only_if is not None and (skip := _precondition(check.only_if, obs)) is not None:
            return skip
        params = kind.params.model_validate(check.params)
        failed = unobserved(kind.wants(params), obs)
        verdict = kind.judge(params, obs)
    except Exception as exc:  # a kind's bug must cost one verdict, not the whole report
        if failed is not None:
            return Verdict(Status.ERROR, "", failed[1], (failed[0],))
        return Verdict(Status.ERROR, "", f"check {check.kind} crashed: {type(exc).__name__}: {exc}")
    if failed is not None and verdict.status is not Status.ERROR:
        key, err = failed
        evidence = tuple(dict.fromkeys((*verdict.evidence, key)))
        return Verdict(Status.ERROR, verdict.expected, err, evidence)
    if not control.automated and verdict.status in (Status.PASS, Status.FAIL):
        return Verdict(Status.MANUAL, verdict.expected, verdict.observed, verdict.evidence)
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
    kinds: Mapping[str, CheckKind[Any]],
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
        elif entry.control.check is None:
            verdict = judge(entry, Observations(host), kinds)
        elif outcome.observations is None:
            status = Status.ERROR if entry.control.automated else Status.MANUAL
            verdict = Verdict(status, "", outcome.error or "host not probed")
        else:
            verdict = judge(entry, outcome.observations, kinds)
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
    kinds: Mapping[str, CheckKind[Any]],
    *,
    forks: int,
    transport_for: Callable[[Inventory, str], Transport] = testinfra_transport,
    on_host: Callable[[HostVerification], None] | None = None,
) -> list[HostVerification]:
    def one(host: str) -> HostVerification:
        groups = inventory.groups_of(host)
        mine = relevant_entries(entries, groups)
        probes = wanted_probes([e for e in mine if concerns(e, groups)], kinds)
        if not probes:  # nothing to observe: do not even connect
            outcome = ProbeOutcome(Observations(host), {"skipped": "no automated control applies"})
        else:
            try:
                transport = transport_for(inventory, host)
            except BadInputError as exc:
                outcome = ProbeOutcome(None, {}, str(exc))
            else:
                hostvars = inventory.hostvars(host)
                outcome = collect(host, transport, probes, interpreter_of(hostvars))
                if outcome.observations is not None:
                    # checks see the host's inventory variables and, as in Ansible, its groups
                    facts = {**hostvars, "group_names": [g for g in groups if g != "all"]}
                    observed = replace(outcome.observations, vars=facts)
                    outcome = ProbeOutcome(observed, outcome.raw, outcome.error)
        done = HostVerification(
            host, tuple(groups), outcome, tuple(host_results(host, groups, mine, outcome, kinds))
        )
        if on_host is not None:
            on_host(done)
        return done

    with ThreadPoolExecutor(max_workers=max(1, min(forks, len(hosts)))) as pool:
        return list(pool.map(one, hosts))
