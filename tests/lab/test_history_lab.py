"""The history on a real node: verify (fresh node: findings), harden, verify (fixed), spoil the
node, verify again. `casemate history` then names the harden run that fixed each control and the
verify run that saw it pass, `--regressions` lists exactly the controls that went from pass to
fail, and the last verify's metrics file counts the same ones as drifted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Lab, lab_name, last_run, open_lab, report_of, results

LAB = lab_name("hist")
CONTROLS = "cis_docker_2_2,cis_docker_2_14,cis_docker_2_15,cis_docker_2_16"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, LAB, 1) as lab:
        yield lab


def statuses(lab: Lab, node: str) -> dict[str, str]:
    return {
        c: r["status"] for c, r in results(report_of(last_run(lab.state, "verify")), node).items()
    }


def test_history_names_the_fixing_run_and_the_regressions(bed: Lab, tmp_path: Path) -> None:
    (node,) = bed.nodes
    inv = str(bed.inventory)
    prom = tmp_path / "casemate.prom"
    verify = [
        "verify",
        "-i",
        inv,
        "--level",
        "2",
        "--controls",
        CONTROLS,
        "--metrics-file",
        str(prom),
    ]
    bed.casemate(*verify)
    first = statuses(bed, node)
    failing = {c for c, s in first.items() if s == "fail"}
    assert failing, first  # a fresh node is not hardened
    bed.casemate("harden", "-i", inv, "--level", "2", "--controls", CONTROLS, check=0)
    harden_id = last_run(bed.state, "harden").name
    bed.casemate(*verify, check=0)
    fixed_in = last_run(bed.state, "verify").name
    assert set(statuses(bed, node).values()) == {"pass"}
    bed.spoil(node)
    bed.casemate(*verify, check=1)
    spoiled_in = last_run(bed.state, "verify").name
    regressed = {c for c, s in statuses(bed, node).items() if s == "fail"}
    assert regressed

    done = bed.casemate("history", "--host", node, "--format", "json", check=0)
    lines = {t["control_id"]: t for t in json.loads(done.stdout)}
    assert set(lines) == set(first)
    for control in failing:
        fixes = lines[control]["fixes"]
        assert [(f["seen_passing"]["run_id"], f["hardened_by"]) for f in fixes] == [
            (fixed_in, harden_id)
        ], control
        assert lines[control]["first_failed"]["kind"] == "verify"

    done = bed.casemate("history", "--regressions", "--format", "json", check=0)
    found = json.loads(done.stdout)
    assert {r["control_id"] for r in found} == regressed
    assert {(r["passed"]["run_id"], r["failed"]["run_id"]) for r in found} == {
        (fixed_in, spoiled_in)
    }

    drifted = [
        s.value
        for family in text_string_to_metric_families(prom.read_text())
        for s in family.samples
        if s.name == "casemate_drifted_controls" and s.labels["host"] == node
    ]
    assert drifted == [len(regressed)]
    assert (bed.state / "history.sqlite3").stat().st_mode & 0o777 == 0o600
