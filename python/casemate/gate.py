"""CI gates: which findings make `verify` (and `report`) exit 1 (`--fail-on`, docs/verify.md).

A finding is an automated control that failed or errored; `waived` is never one. The gate narrows
which findings count: `any` (the default: every finding), `level1` (only level-1 controls),
`benchmark:NAME` (only that benchmark's controls; several may be named). Terms are comma-separated
and all must hold: `benchmark:cis-docker,level1` gates on level-1 Docker findings only. A host that
could not be probed is exit 3 whatever the gate: compliance could not be established.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from casemate.errors import BadInputError

FINDINGS = ("fail", "error")


@dataclass(frozen=True, slots=True)
class Gate:
    spec: str = "any"
    level1: bool = False
    benchmarks: tuple[str, ...] = ()  # empty: every benchmark

    def counts(self, result: Mapping[str, Any]) -> bool:
        """Whether this result is a finding the gate fails on."""
        return bool(result["automated"]) and result["status"] in FINDINGS and self.selects(result)

    def selects(self, control: Mapping[str, Any]) -> bool:
        """Whether the gate's terms take in this control, whatever its status (`drift` counts
        the drifted controls the gate selects)."""
        return (not self.level1 or control["level"] == 1) and (
            not self.benchmarks or control["benchmark"] in self.benchmarks
        )

    def exit_code(self, doc: Mapping[str, Any]) -> int:
        """0 nothing the gate counts; 1 a finding it counts; 3 a host could not be probed."""
        if any(not h["probed"] for h in doc["hosts"]):
            return 3
        return 1 if any(self.counts(r) for r in doc["results"]) else 0

    def record(self, doc: Mapping[str, Any], *, when: str) -> dict[str, Any]:
        """What run.json and the report keep under `gate`: the gate applied to `doc`, by `when`
        (`verify`, or `report`: a stored run gated when it was rendered), and why the exit
        status is what it is, so that a reader of the record needs no other file to tell."""
        code = self.exit_code(doc)
        counted = sorted({r["control_id"] for r in doc["results"] if self.counts(r)})
        findings = sum(self.counts(r) for r in doc["results"])
        every = sum(Gate().counts(r) for r in doc["results"])
        unprobed = sorted(h["name"] for h in doc["hosts"] if not h["probed"])
        if code == 3:
            why = f"{len(unprobed)} host(s) could not be probed: {', '.join(unprobed)}"
        elif code == 1:
            why = f"{findings} finding(s) the gate counts, of {len(counted)} control(s)"
        else:
            why = "no finding the gate counts"
        return {
            "fail_on": self.spec,
            "when": when,
            "level1": self.level1,
            "benchmarks": list(self.benchmarks),
            "findings": findings,
            "findings_not_counted": every - findings,  # what the narrower gate let through
            "controls": counted,
            "exit_code": code,
            "why": why,
        }


def parse_fail_on(text: str, benchmarks: Collection[str]) -> Gate:
    """`--fail-on` as a Gate; bad input names the term that is wrong."""
    terms = [t.strip() for t in text.split(",") if t.strip()]
    if not terms:
        raise BadInputError("--fail-on: give any, level1 or benchmark:NAME")
    level1 = False
    named: list[str] = []
    for term in terms:
        if term == "any":
            continue
        if term == "level1":
            level1 = True
        elif term.startswith("benchmark:"):
            name = term.removeprefix("benchmark:")
            if name not in benchmarks:
                known = ", ".join(sorted(benchmarks))
                raise BadInputError(f"--fail-on: unknown benchmark '{name}' (known: {known})")
            named.append(name)
        else:
            raise BadInputError(
                f"--fail-on: unknown term '{term}' (use any, level1 or benchmark:NAME)"
            )
    return Gate(spec=",".join(terms), level1=level1, benchmarks=tuple(dict.fromkeys(named)))
