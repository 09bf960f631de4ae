"""One broken file stops one component, not the host: on a kubeadm lab node whose scheduler
manifest does not parse, harden leaves that file exactly as it is, hardens the API server, the
controller manager, the kubelet and the host baseline all the same, and still fails the host (exit
3), naming the scheduler's file and why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Lab, harden_stats, lab_name, last_run, open_lab, report_of, results

SCHEDULER = "/etc/kubernetes/manifests/kube-scheduler.yaml"
BROKEN = ":\n  - [\n"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("k8sbroken"), 1, "--profile", "k8s") as lab:
        yield lab


def test_a_broken_scheduler_manifest_skips_only_the_scheduler(bed: Lab, tmp_path: Path) -> None:
    node, inv = bed.nodes[0], str(bed.inventory)
    bed.sh(node, f"cat > {SCHEDULER}", stdin=BROKEN)
    before = bed.sh(node, f"stat -c '%a %U:%G %Y' {SCHEDULER}")

    out = bed.casemate("harden", "-i", inv, check=3)
    stats = harden_stats(bed.state)[node]
    assert stats["failed"] == 1 and stats["unreachable"] == 0
    said = json.loads((last_run(bed.state, "harden") / "run.json").read_text())["messages"][node]
    assert len(said) == 1, said
    assert "kube-scheduler skipped" in said[0] and SCHEDULER in said[0]
    assert "not valid YAML" in said[0]
    assert SCHEDULER in out.stdout
    # the broken file is untouched: content, mode, owner, time of last change
    assert bed.sh(node, f"cat {SCHEDULER}") == BROKEN
    assert bed.sh(node, f"stat -c '%a %U:%G %Y' {SCHEDULER}") == before
    assert not bed.sh(node, "ls /var/backups/casemate/kube_control_plane/ | grep scheduler || true")

    bed.casemate("verify", "-i", inv, "--report-dir", str(tmp_path), check=1)
    got = results(report_of(tmp_path), node)
    applied = {
        "cis_k8s_1_2_15": "API server profiling off",
        "cis_k8s_1_2_16": "API server audit log",
        "cis_k8s_1_3_2": "controller manager profiling off",
        "cis_k8s_4_2_11": "kubelet serving certificate rotation",
        "cis_k8s_2_2": "etcd client certificates",
        "cm_host_4_9": "host baseline: /etc/crontab root:root 0600",
        "cm_host_1_2": "sshd: no password logins",
    }
    assert {c: got[c]["status"] for c in applied} == dict.fromkeys(applied, "pass")
    assert got["cis_k8s_1_4_1"]["status"] != "pass"  # the scheduler stayed as it was

    # a second run skips the scheduler again, changes nothing else, and still fails the host
    bed.casemate("harden", "-i", inv, check=3)
    again = harden_stats(bed.state)[node]
    assert again["changed"] == 0 and again["failed"] == 1
