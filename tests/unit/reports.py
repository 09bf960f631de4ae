"""Report documents recorded from real lab runs (tests/fixtures/reports), and a hand-edited copy
with one waived result, the shape the waivers work gives a result."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

REPORTS = Path(__file__).parent.parent / "fixtures" / "reports"
WAIVED = ("casemate-formatsa-2", "cis_docker_3_1")
WAIVER = {
    "reason": "docker.service is owned by the image build; fixed in the next base image",
    "owner": "platform-team@example.com",
    "ticket": "OPS-1234",
    "expires": "2027-01-31",
}


def recorded(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPORTS / f"{name}.json").read_text())
    return loaded


def with_waiver(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of `doc` whose WAIVED result is status `waived` with a waiver, counts moved along.
    Today's report schema has no `waived`: such a document is not validated against it."""
    out = copy.deepcopy(doc)
    was = None
    for r in out["results"]:
        if (r["host"], r["control_id"]) == WAIVED:
            was = r["status"]
            r["status"] = "waived"
            r["waiver"] = dict(WAIVER)
    assert was is not None, f"{WAIVED} is not in the document"
    for counts in [out["summary"], *(h["counts"] for h in out["hosts"] if h["name"] == WAIVED[0])]:
        counts[was] -= 1
        counts["waived"] = counts.get("waived", 0) + 1
    return out
