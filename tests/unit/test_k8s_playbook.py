"""The Kubernetes plays of playbooks/harden.yml (finding 1): etcd members and control-plane nodes
are hardened one host at a time, and the first failed host stops the play, so an HA cluster
never loses etcd's quorum or every API server at once. Kubelets may go in parallel."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from casemate.locations import content_root


def plays() -> dict[str, Any]:
    found = yaml.safe_load((content_root() / "playbooks" / "harden.yml").read_text())
    return {p["hosts"]: p for p in found}


@pytest.mark.parametrize("hosts", ["etcd", "k8s_control_plane"])
def test_etcd_and_control_plane_go_one_host_at_a_time(hosts: str) -> None:
    play = plays()[hosts]
    assert play["serial"] == 1
    assert play["max_fail_percentage"] == 0


def test_kubelets_go_in_parallel() -> None:
    play = plays()["k8s_control_plane:k8s_workers"]
    assert "serial" not in play  # a kubelet restart stops no pod: no need to wait host by host
