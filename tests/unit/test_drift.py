"""Drift decisions on recorded verdicts: what drifted, what check mode must judge, what is waived
or held back, which check-mode change belongs to which control; drift.json against its schema;
the exit codes; a drift run whose hosts need no check-mode run starts no Ansible, and is recorded
in the history and the metrics file like a verify run."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from casemate import drift, metrics
from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.gate import Gate, parse_fail_on
from casemate.harden import HardenPlan
from casemate.history.record import read_run
from casemate.inventory import Inventory
from casemate.probe.collect import Transport
from casemate.report import document
from casemate.report.diff import Changed
from casemate.rundir import new_run
from casemate.runner import HostStats, PlaybookOutcome
from casemate.verify import verify_hosts
from casemate.waivers import WaiverSet, load_waivers

from .reports import WAIVED, recorded, with_waiver
from .test_verify import Done

CATALOG = load_catalog(None, builtin_kinds())
ENTRIES = {e.id: e for e in CATALOG.entries}
RECORDED = Path(__file__).parent.parent / "fixtures" / "observations"
HOST = "casemate-formatsa-1"


def plan_of(doc: dict[str, Any], host: str = HOST, shared: Any = ()) -> drift.HostPlan:
    return next(p for p in drift.decide(doc, shared) if p.host == host)


def test_failing_remediable_controls_drift_and_not_verifiable_ones_go_to_check_mode() -> None:
    doc = recorded("hardened")
    plan = plan_of(doc)
    mine = {r["control_id"]: r for r in doc["results"] if r["host"] == HOST}
    failing = {c for c, r in mine.items() if r["status"] == "fail" and r["automated"]}
    unseen = {c for c, r in mine.items() if r["status"] == "not_verifiable"}
    assert failing and unseen
    assert set(plan.drifted) == failing
    assert {c for c, s in plan.states.items() if s == drift.UNJUDGED} == unseen
    # the check-mode run: every drifted and every not_verifiable control, nothing else
    assert set(plan.tags) == failing | unseen
    passing_or_manual = {c for c, r in mine.items() if r["status"] in ("pass", "manual")}
    assert not passing_or_manual & set(plan.states)


def test_a_host_where_every_control_passes_gets_no_check_mode_run() -> None:
    doc = copy.deepcopy(recorded("hardened"))
    for r in doc["results"]:
        if r["host"] == HOST and r["status"] in ("fail", "not_verifiable"):
            r["status"] = "pass"
    plan = plan_of(doc)
    assert plan.tags == ()
    assert plan.states == {}


def test_a_failing_control_without_remediation_drifts_but_runs_no_tag() -> None:
    doc = copy.deepcopy(recorded("hardened"))
    target = next(r for r in doc["results"] if r["host"] == HOST and r["status"] == "fail")
    target["remediation"] = None
    plan = plan_of(doc)
    assert plan.states[target["control_id"]] == drift.NO_REMEDIATION
    assert target["control_id"] in plan.drifted
    assert target["control_id"] not in plan.tags


def test_a_waived_control_is_not_drift_and_one_sharing_its_task_is_held_back() -> None:
    doc = with_waiver(recorded("hardened"))
    host, waived = WAIVED
    mine = {r["control_id"]: r for r in doc["results"] if r["host"] == host}
    partner = next(c for c, r in mine.items() if r["status"] == "fail" and c != waived)
    plan = plan_of(doc, host, [frozenset({waived, partner})])
    assert plan.states[waived] == drift.WAIVED
    assert plan.states[partner] == drift.HELD
    assert partner in plan.drifted
    assert waived not in plan.tags
    assert partner not in plan.tags
    # without the shared task, the partner is an ordinary drift
    assert plan_of(doc, host).states[partner] == drift.DRIFTED


def test_an_unprobed_host_has_no_plan_of_controls() -> None:
    doc = copy.deepcopy(recorded("hardened"))
    doc["hosts"][0] |= {"probed": False, "error": "docker exec: No such container"}
    plan = plan_of(doc, doc["hosts"][0]["name"])
    assert (plan.probed, plan.tags, dict(plan.states)) == (False, (), {})


def test_check_mode_changes_go_to_the_controls_that_explain_them() -> None:
    states = {
        "cis_docker_2_2": drift.DRIFTED,  # docker_daemon, the probe saw it fail
        "cis_docker_1_1_3": drift.UNJUDGED,  # auditd_rules, not_verifiable
        "cm_host_3_1": drift.UNJUDGED,  # sysctl, not_verifiable
    }
    plan = drift.HostPlan("n1", True, None, states, tuple(states))
    named = Changed("n1", "Keep auditd enabled at boot | cis_docker_1_1_3", "auditd_rules", ())
    shared_daemon = Changed("n1", "Write the merged daemon.json", "docker_daemon", ("d",))
    shared_sysctl = Changed("n1", "Write the kernel parameters", "sysctl", ())
    foreign = Changed("n1", "Something of another role", "gvisor", ())
    elsewhere = Changed("n2", "Write the merged daemon.json", "docker_daemon", ())
    mine, other = drift.attribute(
        plan, [named, shared_daemon, shared_sysctl, foreign, elsewhere], ENTRIES
    )
    assert mine == {
        "cis_docker_1_1_3": [named],
        "cis_docker_2_2": [shared_daemon],
        "cm_host_3_1": [shared_sysctl],  # no probe-drifted control of sysctl: only it explains it
    }
    assert other == [foreign]


def _built(changes: list[Changed], status: str = "successful") -> dict[str, Any]:
    report = recorded("hardened")
    plans = drift.decide(report)
    hosts = tuple(p.host for p in plans if p.tags)
    tags = plans[0].tags
    stats = {
        h: HostStats(ok=3, changed=len(changes), failed=int(status != "successful")) for h in hosts
    }
    run = drift.CheckRun(hosts, tags, PlaybookOutcome(status, 0, stats))
    return drift.build(
        report=report,
        plans=plans,
        check_runs=[run],
        changes=changes,
        entries=ENTRIES,
        finished=report["finished"],
    )


def test_drift_json_follows_its_schema_and_names_what_check_mode_found() -> None:
    change = Changed(HOST, "Keep auditd enabled at boot | cm_host_2_1", "auditd_rules", ("-x",))
    doc = _built([change])
    drift.validate(doc)
    host = next(h for h in doc["hosts"] if h["name"] == HOST)
    found = {c["control_id"]: c for c in host["controls"]}
    assert found["cm_host_2_1"]["state"] == drift.DRIFTED
    assert found["cm_host_2_1"]["found_by"] == "check_mode"
    assert found["cm_host_2_1"]["changes"] == [{"task": change.task, "diff": "-x"}]
    assert found["cis_docker_1_1_3"]["state"] == drift.UNJUDGED
    assert found["cis_docker_2_9"]["found_by"] == "probe"
    assert doc["summary"]["drifted"] == sum(1 for _, c in drift.drifted_controls(doc))


def test_the_schema_refuses_a_state_it_does_not_know() -> None:
    doc = _built([])
    doc["hosts"][0]["controls"][0]["state"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        drift.validate(doc)


def test_exit_codes_follow_the_gate_and_a_failed_host_is_3() -> None:
    doc = _built([])
    assert drift.exit_code(doc, Gate()) == 1
    benchmarks = CATALOG.benchmarks()
    only_k8s = parse_fail_on("benchmark:cis-kubernetes", benchmarks)
    assert drift.exit_code(doc, only_k8s) == 0  # no Kubernetes control drifted on Docker hosts
    clean = copy.deepcopy(doc)
    for h in clean["hosts"]:
        h["controls"] = [c for c in h["controls"] if c["state"] not in drift.DRIFT_STATES]
    assert drift.exit_code(clean, Gate()) == 0
    failed = _built([], status="failed")
    assert all(h["failed"] for h in failed["hosts"] if h["check_mode"]["played"])
    assert drift.exit_code(failed, Gate()) == 3


class Recorded:
    def run(self, command: str) -> Done:
        return Done(0, (RECORDED / "hardened-level2.json").read_text(), "")


def _passing_selection(inv: Inventory) -> list[str]:
    """The controls judged pass or manual on the recorded node (no check-mode run needed), and
    one failing control whose catalog entry is given no remediation."""
    entries = select(CATALOG, Selection(level=2))
    (judged,) = verify_hosts(inv, ["n1"], entries, forks=1, transport_for=lambda i, h: Recorded())
    return [r.entry.id for r in judged.results if r.verdict.status.value in ("pass", "manual")]


def test_a_drift_run_without_check_mode_work_starts_no_ansible_and_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(**kwargs: Any) -> Any:
        raise AssertionError("ansible-playbook was started")

    monkeypatch.setattr("casemate.drift.run_playbook", boom)
    raw = {"_meta": {"hostvars": {"n1": {}}}, "docker_hosts": {"hosts": ["n1"]}}
    inv = Inventory(Path("site/inventory.yml"), raw)
    ids = _passing_selection(inv)
    selection = Selection(level=2, controls=tuple(ids))
    entries = select(CATALOG, selection)
    run = new_run(tmp_path / "state", "drift", inv.redactor())

    def transport_for(inventory: Inventory, host: str) -> Transport:
        return Recorded()

    done = drift.run_drift(
        run=run,
        content=Path("/nonexistent"),
        catalog=CATALOG,
        inventory=inv,
        hosts=["n1"],
        entries=entries,
        selection=selection,
        forks=1,
        command=["casemate", "drift", "-i", "site/inventory.yml"],
        strategy="linear",
        shared=[],
        transport_for=transport_for,
    )
    drift.validate(json.loads((run.path / "drift.json").read_text()))
    assert drift.exit_code(done.doc, Gate()) == 0
    meta = json.loads((run.path / "run.json").read_text())
    assert (meta["kind"], meta["outcome"], meta["playbook_runs"]) == ("drift", "succeeded", 0)
    assert meta["drift"]["hosts"]["n1"] == {"drifted": [], "tags": []}
    record = read_run(run.path)
    assert record.kind == "drift"
    assert {r.control_id for r in record.results} == set(ids)

    prom = tmp_path / "drift.prom"
    metrics.write(prom, metrics.drift_registry(done.report, done.doc, meta, recorded=True))
    seen = {
        (s.name, s.labels.get("host"), s.labels.get("command")): s.value
        for family in text_string_to_metric_families(prom.read_text())
        for s in family.samples
    }
    assert seen[("casemate_drifted_controls", "n1", "drift")] == 0
    assert seen[("casemate_host_failed", "n1", "drift")] == 0
    assert seen[("casemate_controls", "n1", "drift")] >= 0


def test_only_drifted_plans_run_each_host_with_its_own_tags_and_skip_the_clean_ones() -> None:
    tags = ["cis_docker_2_2", "cis_docker_2_15", "cm_host_1_4"]
    plan = HardenPlan(
        hosts=["a", "b", "c", "d"],
        tags=tags,
        entries=[ENTRIES[t] for t in tags],
        waived={"d": ("cis_docker_2_2",)},
        only={
            "a": ("cm_host_1_4", "cis_docker_2_2"),
            "b": (),
            "c": ("cis_docker_2_2", "cm_host_1_4"),
            "d": ("cis_docker_2_2",),
        },
    )
    assert plan.batches(plan.hosts) == [
        (["a", "c"], ("cis_docker_2_2", "cm_host_1_4")),
        (["b", "d"], ()),  # nothing drifted, or only what is waived: no Ansible run
    ]
    assert plan.applied() == ["cis_docker_2_2", "cm_host_1_4"]


def test_waivers_reach_drift(tmp_path: Path) -> None:
    host, control = WAIVED
    path = tmp_path / "w.yml"
    path.write_text(
        "waivers:\n"
        f"  - control: {control}\n    hosts: [{host}]\n    reason: r\n    owner: o\n"
        "    ticket: OPS-1\n    expires: 2099-01-01\n"
    )
    found: WaiverSet = load_waivers(path, set(CATALOG.ids()))
    doc = document.with_waivers(recorded("hardened"), found, date(2026, 12, 5), when="verify")
    assert plan_of(doc, host).states[control] == drift.WAIVED


def test_a_task_named_for_a_range_of_ids_belongs_to_the_ids_inside_it() -> None:
    """The Kubernetes roles' shared manifest step (role kube_node) names its controls as ranges;
    its would-change is the drifted API-server flag's diff."""
    plan = drift.HostPlan("cp", True, None, {"cis_k8s_1_2_15": drift.DRIFTED}, ("cis_k8s_1_2_15",))
    task = (
        "Change casemate's flags in the manifest | cis_k8s_1_2_1 - cis_k8s_1_2_30 cis_k8s_3_2_1 "
        "cis_k8s_3_2_2 cis_k8s_5_2_1 - cis_k8s_5_2_12"
    )
    change = Changed("cp", task, "kube_node", ("--profiling=false",))
    order = CATALOG.ids()
    assert "cis_k8s_1_2_15" in drift.named_ids(task, order)
    assert "cis_k8s_5_2_3" in drift.named_ids(task, order)
    assert "cis_k8s_1_3_1" not in drift.named_ids(task, order)
    mine, other = drift.attribute(plan, [change], ENTRIES, order)
    assert (mine, other) == ({"cis_k8s_1_2_15": [change]}, [])


def test_history_records_a_control_check_mode_found_drifted_as_fail_with_its_changes(
    tmp_path: Path,
) -> None:
    change = Changed(HOST, "Keep auditd enabled at boot | cm_host_2_1", "auditd_rules", ("-x",))
    doc = _built([change])
    report = recorded("hardened")
    run = new_run(tmp_path / "state", "drift", Inventory(Path("i.yml"), {}).redactor())
    run.write_json("run.json", {"kind": "drift", "started": report["started"], "check": True})
    run.write_json("report.json", report)
    run.write_json("drift.json", doc)

    rows = {(r.host, r.control_id): r for r in read_run(run.path).results}
    probed = {(r["host"], r["control_id"]): r for r in report["results"]}
    found = rows[(HOST, "cm_host_2_1")]
    assert probed[(HOST, "cm_host_2_1")]["status"] == "not_verifiable"
    assert found.status == "fail"
    assert "check mode would change: Keep auditd enabled at boot | cm_host_2_1" in found.observed
    assert found.evidence_digest != rows[(HOST, "cis_docker_1_1_3")].evidence_digest
    unjudged = rows[(HOST, "cis_docker_1_1_3")]  # check mode found nothing to change
    assert unjudged.status == probed[(HOST, "cis_docker_1_1_3")]["status"]
    assert all(rows[k].status == probed[k]["status"] for k in probed if k != (HOST, "cm_host_2_1"))
