"""The terminal view of a drift run (drift.json): per host, each drifted control with what was
expected, what is there now, and what the fix would change; and `harden --only-drifted`'s
before -> after per control."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SAID = {
    "drifted": "drifted",
    "drifted_no_remediation": "drifted, no remediation",
    "drifted_held": "drifted, held back with a waived control",
    "waived": "waived",
    "unjudged": "not judged",
}


def lines(doc: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for host in doc["hosts"]:
        counts = host["counts"]
        drifted = counts["drifted"] + counts["drifted_no_remediation"] + counts["drifted_held"]
        if not host["probed"]:
            out.append(f"{host['name']}: NOT PROBED: {host['error']}")
            continue
        head = f"{host['name']}: {drifted} drifted"
        if counts["waived"]:
            head += f", {counts['waived']} waived"
        if counts["unjudged"]:
            head += f", {counts['unjudged']} not judged here"
        check = host["check_mode"]
        head += (
            f" (check mode: {len(check['tags'])} control(s))"
            if check["played"]
            else " (no check-mode run)"
        )
        out.append(head)
        if host["failed"]:
            out.append(f"  FAILED: {host['error']}")
        for c in host["controls"]:
            if c["state"] == "unjudged":
                continue
            how = f" [{c['found_by']}]" if c["found_by"] else ""
            out.append(f"  {c['control_id']} ({c['ref']}) {_SAID[c['state']]}{how}: {c['title']}")
            if c["state"] == "waived":
                continue
            out.append(f"    expected: {c['expected']}")
            out.append(f"    observed: {c['observed']}")
            for change in c["changes"]:
                out.append(f"    fix would change: {change['task']}")
                out.extend(f"      {x}" for x in change["diff"].splitlines())
        unjudged = [c["control_id"] for c in host["controls"] if c["state"] == "unjudged"]
        if unjudged:
            out.append(
                "  not judged here (the probe cannot see them; check mode would change nothing"
                f" or there is no fix): {', '.join(unjudged)}"
            )
    s = doc["summary"]
    out.append(
        f"drift: {s['drifted']} control(s) drifted on {s['drifted_hosts']} of {s['hosts']} "
        f"host(s); {s['failed_hosts']} host(s) failed"
    )
    return out


def before_after(
    before: Mapping[str, Any], after: Mapping[str, Any] | None, tags: Mapping[str, list[str]]
) -> list[str]:
    """Per host, each control `harden --only-drifted` ran because the probe saw it drift: its
    status before -> after (after: the verify that followed; none in check mode); and how many
    controls the probe cannot judge there ran too."""
    seen = {(r["host"], r["control_id"]): r["status"] for r in before["results"]}
    now = {(r["host"], r["control_id"]): r["status"] for r in (after or {}).get("results", ())}
    out = []
    for host, controls in tags.items():
        if not controls:
            out.append(f"{host}: nothing drifted: no Ansible run")
            continue
        unjudged = 0
        for control in controls:
            was = seen.get((host, control), "?")
            if was == "not_verifiable":
                unjudged += 1
                continue
            then = now.get((host, control), "not verified again") if after is not None else "-"
            out.append(f"{host}: {control}: {was} -> {then}")
        if unjudged:
            out.append(
                f"{host}: {unjudged} control(s) the probe cannot judge here were applied too "
                "(their tasks change only what differs)"
            )
    return out
