"""The whole Docker catalog judged on probe answers recorded from real lab nodes: one node drifted
on purpose (tests/lab/fixtures/spoil_docker.sh), one hardened at level 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.checks.base import Status
from casemate.probe.collect import parse_answer
from casemate.verify import judge

from .test_spoil_script import unspoilable

RECORDED = Path(__file__).parent.parent / "fixtures" / "observations"
KINDS = builtin_kinds()
# These two recordings were made for sections 2 and 3 (daemon and files); workloads.json covers the
# container and image sections (test_workloads.py).
ENTRIES = [
    e
    for e in select(load_catalog(None, KINDS), Selection(level=2))
    if e.control.automated and e.benchmark == "cis-docker" and e.section in ("2", "3")
]
# What a container node cannot be made to get wrong (the header of spoil_docker.sh); each is shown
# failing on crafted observations in test_checks.py instead.
UNSPOILABLE = unspoilable() & {e.id for e in ENTRIES}


def verdicts(name: str) -> dict[str, Status]:
    obs, _ = parse_answer("node", (RECORDED / name).read_text())
    return {e.id: judge(e, obs).status for e in ENTRIES}


def test_every_automated_control_fails_on_the_drifted_node() -> None:
    got = verdicts("noncompliant.json")
    assert {c for c, s in got.items() if s is not Status.FAIL} == UNSPOILABLE
    assert all(got[c] is Status.PASS for c in UNSPOILABLE)


def test_hardened_node_passes_all_but_the_authorization_plugin() -> None:
    got = verdicts("hardened-level2.json")
    assert {c: s for c, s in got.items() if s is not Status.PASS} == {
        "cis_docker_2_12": Status.FAIL
    }


@pytest.mark.parametrize("name", ["noncompliant.json", "hardened-level2.json"])
def test_recordings_are_from_a_container(name: str) -> None:
    obs, raw = parse_answer("node", (RECORDED / name).read_text())
    assert obs.container == "docker"
    assert raw["probe"] == 1
