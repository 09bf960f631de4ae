"""Drift on real nodes: a Docker node and a kubeadm-layout Kubernetes node, hardened, then drifted
by hand in the issue's ways (a daemon.json key, a file mode under /etc/docker, an sshd option, an
API-server flag, a net.* sysctl) and a sixth, a dockerd whose daemon.json is right but which still
runs an old value (configured, not in effect). `casemate drift` names exactly those controls with
what the fix would change and exits 1; `harden --only-drifted` runs only their tags and fixes
them; a second `drift` exits 0; the history shows each fail -> pass with the fixing harden run and
lists each as a regression.

A selection of controls keeps the module quick (the whole level would only add time). Two of them
(cm_host_3_1, a machine-wide kernel.* sysctl; cis_docker_1_1_3, loaded audit rules) can never be
judged by the probe in a container node: drift runs their tags in check mode every time, and they
are never reported as compliant. The proof that a compliant node gets no Ansible run at all
therefore selects only controls the probe can judge there, and says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from casemate import roleset

from .conftest import Lab, lab_name, last_run, open_lab

DRIFTED_DOCKER = {
    "cis_docker_2_2",
    "cis_docker_2_15",
    "cis_docker_3_6",
    "cm_host_1_4",
    "cm_host_3_9",
}
DRIFTED_K8S = {"cis_k8s_1_2_15"}
JUDGEABLE = [*sorted(DRIFTED_DOCKER | DRIFTED_K8S), "cis_docker_2_14", "cis_k8s_1_4_1"]
NOT_VERIFIABLE = ["cm_host_3_1", "cis_docker_1_1_3"]
CONTROLS = ",".join(JUDGEABLE + NOT_VERIFIABLE)
APISERVER = "/etc/kubernetes/manifests/kube-apiserver.yaml"

DRIFT_DOCKER = r"""
set -e
edit() { jq "$1" /etc/docker/daemon.json > /root/daemon.json.new
         cat /root/daemon.json.new > /etc/docker/daemon.json; rm /root/daemon.json.new; }
edit '."live-restore" = false'
systemctl restart docker            # dockerd now runs without live-restore ...
edit '."live-restore" = true'       # ... and the file says it again: configured, not in effect
edit '.icc = true'                  # a daemon.json key
chmod 0777 /etc/docker              # a file mode under /etc/docker
sed -i '1i PermitEmptyPasswords yes' /etc/ssh/sshd_config   # an sshd option
sysctl -qw net.ipv4.conf.all.send_redirects=1               # a net.* sysctl (the node's own)
"""
DRIFT_K8S = f"sed -i 's/--profiling=false/--profiling=true/' {APISERVER}"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Lab, Path]]:
    with (
        open_lab(tmp_path_factory, lab_name("drd"), 1) as docker,
        open_lab(tmp_path_factory, lab_name("drk"), 1, "--profile", "k8s") as k8s,
    ):
        both = docker.state / "both"
        both.mkdir()
        (both / "docker.yml").symlink_to(docker.inventory)
        (both / "k8s.yml").symlink_to(k8s.inventory)
        yield docker, k8s, both


def drift_doc(lab: Lab) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((last_run(lab.state, "drift") / "drift.json").read_text())
    return loaded


def drifted(doc: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    (found,) = [h for h in doc["hosts"] if h["name"] == host]
    states = ("drifted", "drifted_no_remediation", "drifted_held")
    return {c["control_id"]: c for c in found["controls"] if c["state"] in states}


def history_shows_each_fix(
    lab: Lab, nodes: tuple[str, str], harden_id: str, after: dict[str, Any], runs: tuple[str, str]
) -> None:
    """Each drifted control: fail -> pass, fixed by the only-drifted harden run and seen passing
    by the verify that followed it; and a regression from the clean drift run to the drifted one."""
    dnode, knode = nodes
    for host, controls in ((dnode, DRIFTED_DOCKER), (knode, DRIFTED_K8S)):
        story = lab.casemate("history", "--host", host, "--format", "json", check=0)
        lines = {t["control_id"]: t for t in json.loads(story.stdout)}
        for control in controls:
            fixes = [
                (f["hardened_by"], f["seen_passing"]["run_id"]) for f in lines[control]["fixes"]
            ]
            assert fixes == [(harden_id, after["run_id"])], (control, lines[control])
    found = json.loads(lab.casemate("history", "--regressions", "--format", "json", check=0).stdout)
    assert {(r["host"], r["control_id"]) for r in found} == {
        *((dnode, c) for c in DRIFTED_DOCKER),
        *((knode, c) for c in DRIFTED_K8S),
    }
    assert {(r["passed"]["run_id"], r["failed"]["run_id"]) for r in found} == {runs}


def test_drift_names_exactly_what_drifted_and_only_drifted_fixes_it(
    bed: tuple[Lab, Lab, Path],
) -> None:
    lab, k8s, both = bed
    (dnode,), (knode,) = lab.nodes, k8s.nodes
    inv = str(both)
    sel = ["-i", inv, "--controls", CONTROLS]
    lab.casemate("harden", *sel, check=0)
    lab.casemate("drift", *sel, check=0)  # hardened: nothing drifted
    clean = drift_doc(lab)
    assert clean["summary"]["drifted"] == 0
    unjudged = {
        (h["name"], c["control_id"])
        for h in clean["hosts"]
        for c in h["controls"]
        if c["state"] == "unjudged"
    }
    # never assumed compliant: listed as not judged, their tags run in check mode
    assert unjudged == {(dnode, "cm_host_3_1"), (dnode, "cis_docker_1_1_3"), (knode, "cm_host_3_1")}
    assert clean["check_mode_runs"], "what the probe cannot judge always runs in check mode"
    passed_in = last_run(lab.state, "drift").name

    lab.sh(dnode, DRIFT_DOCKER)
    k8s.sh(knode, DRIFT_K8S)
    done = lab.casemate("drift", *sel, check=1)
    doc = drift_doc(lab)
    drift_run = last_run(lab.state, "drift").name
    assert set(drifted(doc, dnode)) == DRIFTED_DOCKER, done.stdout
    assert set(drifted(doc, knode)) == DRIFTED_K8S, done.stdout
    seen = drifted(doc, dnode) | drifted(doc, knode)
    for control, c in seen.items():
        assert c["found_by"] == "probe"
        assert c["expected"] and c["observed"], control
        assert control in done.stdout
    assert "configured but not in effect" in seen["cis_docker_2_15"]["observed"]
    for control in ("cis_docker_2_2", "cis_docker_3_6", "cm_host_1_4", "cis_k8s_1_2_15"):
        assert any(ch["diff"] for ch in seen[control]["changes"]), (control, seen[control])
    assert '"icc": false' in "".join(ch["diff"] for ch in seen["cis_docker_2_2"]["changes"])

    lab.casemate("harden", "--only-drifted", *sel, check=0)
    harden_dir = last_run(lab.state, "harden")
    meta = json.loads((harden_dir / "run.json").read_text())
    record = meta["only_drifted"]["hosts"]
    assert set(record[dnode]["drifted"]) == DRIFTED_DOCKER
    assert set(record[knode]["drifted"]) == DRIFTED_K8S
    ran = {h: set(b["tags"]) for b in meta["batches"] for h in b["hosts"]}
    # only the drifted controls' tags, and those of what the probe cannot judge there
    assert ran[dnode] - DRIFTED_DOCKER <= set(NOT_VERIFIABLE)
    assert ran[knode] - DRIFTED_K8S <= set(NOT_VERIFIABLE)
    assert meta["playbook_runs"] == len(meta["batches"])
    assert meta["stats"][dnode]["changed"] > 0 and meta["stats"][knode]["changed"] > 0
    after = json.loads((last_run(lab.state, "verify") / "report.json").read_text())
    assert {r["status"] for r in after["results"] if r["control_id"] in seen} == {"pass"}

    lab.casemate("drift", *sel, check=0)
    assert drift_doc(lab)["summary"]["drifted"] == 0
    # nothing more to change: the only-drifted run fixed all of it
    lab.casemate("harden", "--check", *sel, check=0)
    check = json.loads((last_run(lab.state, "harden") / "run.json").read_text())
    assert {h: s["changed"] for h, s in check["stats"].items()} == {dnode: 0, knode: 0}

    history_shows_each_fix(lab, (dnode, knode), harden_dir.name, after, (passed_in, drift_run))


def test_a_compliant_node_gets_no_ansible_run_at_all(bed: tuple[Lab, Lab, Path]) -> None:
    """Only controls the probe can judge on these nodes are selected (see the module's note)."""
    lab, _, both = bed
    sel = ["-i", str(both), "--controls", ",".join(JUDGEABLE)]
    lab.casemate("drift", *sel, check=0)
    assert drift_doc(lab)["check_mode_runs"] == []
    lab.casemate("harden", "--only-drifted", *sel, check=0)
    run = last_run(lab.state, "harden")
    meta = json.loads((run / "run.json").read_text())
    assert meta["playbook_runs"] == 0
    assert meta["controls"] == []
    assert not (run / "ansible").exists()
    assert all(not h["tags"] for h in meta["only_drifted"]["hosts"].values())


def test_only_drifted_for_one_daemon_json_key_plays_no_other_role(
    bed: tuple[Lab, Lab, Path],
) -> None:
    """One drifted docker_daemon control: its run plays docker_daemon (its preflight, backup and
    apply) between the rollback snapshot and the change record, and no task of sshd or of any
    other role, whose every step (argument validation, always-run preflight) is skipped whole.
    Told by the run record and the playbook's own events."""
    lab, _, _ = bed
    (dnode,) = lab.nodes
    sel = ["-i", str(lab.inventory), "--controls", ",".join(JUDGEABLE)]
    lab.casemate("harden", *sel, check=0)  # compliant to start with
    lab.sh(
        dnode,
        "jq '.icc = true' /etc/docker/daemon.json > /root/d.json && "
        "cat /root/d.json > /etc/docker/daemon.json && rm /root/d.json",
    )
    lab.casemate("harden", "--only-drifted", *sel, check=0)
    run = last_run(lab.state, "harden")
    meta = json.loads((run / "run.json").read_text())
    assert meta["only_drifted"]["hosts"][dnode]["tags"] == ["cis_docker_2_2"]
    assert meta["stats"][dnode]["changed"] > 0
    ran: dict[str, set[str]] = {}
    for path in run.glob("ansible/artifacts/*/job_events/*.json"):
        data = json.loads(path.read_text()).get("event_data") or {}
        if data.get("task") and data.get("host") == dnode:
            ran.setdefault(str(data.get("role")), set()).add(str(data["task"]))
    # outside any role: only the play's one argument check of its roles (roleset.validated_once)
    assert ran.pop("None", set()) <= {roleset.VALIDATE_TASK}
    assert set(ran) <= {"docker_daemon", "host_common", "casemate_rollback"}, sorted(ran)
    assert any(t.startswith("Preflight |") for t in ran["docker_daemon"])
    assert any("Back up" in t for t in ran["docker_daemon"])
    assert {"Prep | Snapshot the files this run may change"} < ran["casemate_rollback"]
    assert meta["roles_played"] == [{"hosts": [dnode], "roles": ["docker_daemon"]}]
    after = json.loads((last_run(lab.state, "verify") / "report.json").read_text())
    assert [r["status"] for r in after["results"] if r["control_id"] == "cis_docker_2_2"] == [
        "pass"
    ]
    # the run's change manifest names daemon.json, for `casemate rollback`
    assert any("daemon.json" in str(f) for f in meta["files_changed"][dnode])
