"""Staged rollout: `harden --waves` / `--canary` / `--max-fail` (docs/fleet.md).

The selected hosts (after `--limit`, in casemate's host order: names sorted) are split into waves.
Each item of `--waves` is a cumulative target: `1,10%,50%,100%` hardens 1 host, then hosts up to
10% of all, then up to 50%, then the rest. A percentage rounds up; each wave takes at least one
new host; the last wave always reaches every host (a list that stops short gets a final wave with
the rest). Items must grow: `50%,10%` is bad input. `--canary N` is `--waves N,100%`.

A wave goes on to the next only if the hosts that failed in it (harden failed or unreachable, or
verify found a finding the `--fail-on` gate counts, or could not probe it) are at most `--max-fail`:
a number of hosts, or a percentage of the wave's hosts rounded down (default 0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from casemate.errors import BadInputError
from casemate.gate import Gate

_COUNT = re.compile(r"[0-9]+")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")


@dataclass(frozen=True, slots=True)
class Step:
    """One item of `--waves`: a number of hosts, or a percentage of all selected hosts."""

    count: int | None = None
    percent: Decimal | None = None

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else str(self.count)

    def target(self, total: int) -> int:
        """How many hosts the rollout has reached after this wave (before the at-least-one rule)."""
        if self.percent is not None:
            return math.ceil(self.percent * total / 100)
        return int(self.count or 0)


@dataclass(frozen=True, slots=True)
class MaxFail:
    """`--max-fail`: hosts that may fail in one wave, as a number or a percentage of the wave."""

    count: int = 0
    percent: Decimal | None = None

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else str(self.count)

    def allowed(self, size: int) -> int:
        """Failed hosts a wave of `size` hosts may have and still go on (a percentage rounds
        down: never more failures than the operator said)."""
        if self.percent is not None:
            return math.floor(self.percent * size / 100)
        return self.count


@dataclass(frozen=True, slots=True)
class Rollout:
    steps: tuple[Step, ...]
    max_fail: MaxFail
    spec: str  # as the operator gave it: `--waves 1,50%` or `--canary 1`

    def split(self, hosts: list[str]) -> list[list[str]]:
        """The waves of `hosts` (in that order). Bad input if an item is below the one before."""
        total = len(hosts)
        waves: list[list[str]] = []
        reached = 0
        previous: tuple[Step, int] | None = None
        for step in self.steps:
            target = min(step.target(total), total)
            if previous is not None and target < previous[1]:
                raise BadInputError(
                    f"--waves: wave {len(waves) + 1} ({step} = {target} of {total} hosts) is "
                    f"below the wave before it ({previous[0]} = {previous[1]} hosts)"
                )
            previous = (step, target)
            upto = min(total, max(target, reached + 1))
            if upto > reached:
                waves.append(hosts[reached:upto])
                reached = upto
        if reached < total:  # the last wave always reaches every host
            waves.append(hosts[reached:])
        return waves


def parse_waves(text: str) -> tuple[Step, ...]:
    """`--waves` as steps; bad input names the item that is wrong."""
    items = [i.strip() for i in text.split(",")]
    if not text.strip() or any(not i for i in items):
        raise BadInputError(f"--waves {text!r}: give comma-separated host counts or P%")
    steps: list[Step] = []
    for item in items:
        step = _step(item)
        last = steps[-1] if steps else None
        if last is not None and last.percent is not None and last.percent >= 100:
            raise BadInputError(f"--waves: '{item}' comes after {last}, which is every host")
        if last is not None and _not_growing(last, step):
            raise BadInputError(
                f"--waves: '{item}' after '{last}': each wave is a cumulative target and must "
                "be larger than the one before"
            )
        steps.append(step)
    return tuple(steps)


def _step(item: str) -> Step:
    if _COUNT.fullmatch(item):
        if int(item) < 1:
            raise BadInputError(f"--waves: '{item}': a wave needs at least 1 host")
        return Step(count=int(item))
    found = _PERCENT.fullmatch(item)
    if found is None:
        raise BadInputError(f"--waves: '{item}' is neither a host count nor a percentage (P%)")
    percent = Decimal(found.group(1))
    if not 0 < percent <= 100:
        raise BadInputError(f"--waves: '{item}' must be above 0% and at most 100%")
    return Step(percent=percent)


def _not_growing(last: Step, step: Step) -> bool:
    """Two items of the same kind that do not grow (a count and a percentage are compared once
    the number of hosts is known: Rollout.split)."""
    if last.count is not None and step.count is not None:
        return step.count <= last.count
    if last.percent is not None and step.percent is not None:
        return step.percent <= last.percent
    return False


def parse_max_fail(text: str) -> MaxFail:
    item = text.strip()
    if _COUNT.fullmatch(item):
        return MaxFail(count=int(item))
    found = _PERCENT.fullmatch(item)
    if found is None or Decimal(found.group(1)) > 100:
        raise BadInputError(
            f"--max-fail {text!r}: give a number of hosts (N) or a percentage of a wave (P%, "
            "at most 100%)"
        )
    return MaxFail(percent=Decimal(found.group(1)))


def rollout_options(waves: str | None, canary: int | None, max_fail: str | None) -> Rollout | None:
    """The rollout the options ask for (None: harden every host at once); bad input first."""
    if waves is not None and canary is not None:
        raise BadInputError("--canary N is --waves N,100%: give one of them, not both")
    if canary is not None and canary < 1:
        raise BadInputError(f"--canary {canary}: the canary wave needs at least 1 host")
    if waves is None and canary is None:
        if max_fail is not None:
            raise BadInputError("--max-fail needs --waves or --canary")
        return None
    limit = parse_max_fail(max_fail) if max_fail is not None else MaxFail()
    if canary is not None:
        return Rollout((Step(count=canary), Step(percent=Decimal(100))), limit, f"canary {canary}")
    return Rollout(parse_waves(waves or ""), limit, f"waves {waves}")


def verify_failures(
    gate: Gate, docs: Iterable[Mapping[str, Any]], hosts: Iterable[str]
) -> dict[str, str]:
    """The hosts among `hosts` that verify failed, with why: not probed, or a finding the gate
    counts. `docs` are verify documents in order; a later one's word on a host replaces an
    earlier one's (`--only-drifted`: the verify after the play, else the one before)."""
    said: dict[str, tuple[Mapping[str, Any], list[Mapping[str, Any]]]] = {}
    for doc in docs:
        for host in doc["hosts"]:
            results = [r for r in doc["results"] if r["host"] == host["name"]]
            said[host["name"]] = (host, results)
    failed: dict[str, str] = {}
    for name in hosts:
        if name not in said:
            continue
        host, results = said[name]
        if not host["probed"]:
            failed[name] = f"verify could not probe it: {host.get('error') or 'unreachable'}"
            continue
        counted = sorted({r["control_id"] for r in results if gate.counts(r)})
        if counted:
            shown = ", ".join(counted[:5]) + (", ..." if len(counted) > 5 else "")
            failed[name] = f"verify: {len(counted)} control(s) failing at --fail-on: {shown}"
    return failed


def wave_record(
    index: int,
    hosts: list[str],
    failed: Mapping[str, str],
    max_fail: MaxFail,
    runs: Mapping[str, Any],
) -> dict[str, Any]:
    """One wave as run.json keeps it under `rollout.waves`: its hosts, the runs that played and
    verified it, the hosts that failed with why, and the verdict (`passed`: the rollout may go
    on; `failed`: more hosts failed than --max-fail allows)."""
    allowed = max_fail.allowed(len(hosts))
    bad = {h: failed[h] for h in hosts if h in failed}
    verdict = "failed" if len(bad) > allowed else "passed"
    verify = str(runs.get("verify", ""))
    if bad:
        why = (
            f"{len(bad)} of {len(hosts)} host(s) failed, {allowed} allowed by --max-fail {max_fail}"
        )
    elif verify.startswith("skipped"):
        why = f"all {len(hosts)} host(s) hardened; verify {verify}"
    else:
        why = f"all {len(hosts)} host(s) hardened and verified"
    return {
        "wave": index,
        "hosts": list(hosts),
        "verdict": verdict,
        "failed": bad,
        "max_fail": str(max_fail),
        "allowed_failures": allowed,
        "why": why,
    } | dict(runs)


def rollout_record(
    rollout: Rollout,
    waves: list[list[str]],
    done: list[dict[str, Any]],
    fail_on: str,
    *,
    canceled: bool = False,
) -> dict[str, Any]:
    """The whole rollout as run.json keeps it: every wave (those not started with their hosts,
    left untouched), where it stopped and why. `canceled`: interrupted (Ctrl-C) during the wave
    after `done`."""
    stopped = next((w for w in done if w["verdict"] == "failed"), None)
    at = len(done) + 1
    cut = (
        [{"wave": at, "hosts": waves[at - 1], "verdict": "canceled"}]
        if canceled and at <= len(waves)
        else []
    )
    left = [
        {"wave": i, "hosts": hosts, "verdict": "not_started"}
        for i, hosts in enumerate(waves, start=1)
        if i > len(done) + len(cut)
    ]
    record: dict[str, Any] = {
        "spec": rollout.spec,
        "steps": [str(s) for s in rollout.steps],
        "max_fail": str(rollout.max_fail),
        "fail_on": fail_on,
        "order": "host names sorted (casemate's host order), after --limit",
        "waves": done + cut + left,
    }
    if cut:
        record |= {
            "outcome": "canceled",
            "stopped_at": at,
            "why": f"interrupted during wave {at} of {len(waves)}; "
            f"{len(left)} later wave(s) left untouched",
        }
    elif stopped is not None:
        names = ", ".join(stopped["failed"])
        record |= {
            "outcome": "stopped",
            "stopped_at": stopped["wave"],
            "why": f"wave {stopped['wave']} of {len(waves)} failed ({stopped['why']}): {names}; "
            f"{len(left)} later wave(s) left untouched",
        }
    elif len(done) < len(waves):
        record |= {"outcome": "running", "stopped_at": None, "why": ""}
    else:
        record |= {"outcome": "completed", "stopped_at": None, "why": "every wave passed"}
    return record


@dataclass(frozen=True, slots=True)
class WavePlayed:
    """What hardening and verifying one wave came to: the harden exit status, the runs (ids and
    outcomes, as the wave's record keeps them) and the hosts that failed, with why."""

    code: int
    runs: Mapping[str, Any]
    failed: Mapping[str, str]


class RolloutCanceled(KeyboardInterrupt):
    """Ctrl-C during a staged rollout: `record` is the rollout as it stood (outcome canceled)."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(record["why"])
        self.record = record


def exit_status(codes: Iterable[int], stopped: bool) -> int:
    """A stopped rollout is 3; a completed one says what its waves' hardens said at worst (3 a
    host failed within --max-fail, 4 a host was busy, 0 every host done)."""
    seen = set(codes)
    if stopped or 3 in seen:
        return 3
    return 4 if 4 in seen else max(seen | {0})


def run_rollout(
    rollout: Rollout,
    waves: list[list[str]],
    play: Callable[[int, list[str], Mapping[str, Any]], WavePlayed],
    fail_on: str,
) -> tuple[int, dict[str, Any]]:
    """Play the waves in order (`play(index, hosts, rollout record so far)` hardens and verifies
    one) and stop after the first wave whose failures exceed --max-fail: no later wave is
    played. The exit status and the rollout's record. Interrupted: RolloutCanceled."""
    done: list[dict[str, Any]] = []
    codes: list[int] = []
    try:
        for index, hosts in enumerate(waves, start=1):
            played = play(index, hosts, rollout_record(rollout, waves, done, fail_on))
            record = wave_record(index, hosts, played.failed, rollout.max_fail, played.runs)
            done.append(record)
            codes.append(played.code)
            if record["verdict"] == "failed":
                break
    except KeyboardInterrupt:
        canceled = rollout_record(rollout, waves, done, fail_on, canceled=True)
        raise RolloutCanceled(canceled) from None
    final = rollout_record(rollout, waves, done, fail_on)
    return exit_status(codes, final["outcome"] == "stopped"), final
