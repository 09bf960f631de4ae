"""kube_kubelet reads its host in one task (action_plugins/kube_kubelet_preflight.py) and reads
the same paths its former Preflight steps read: the unit's files, the environment files and the
client CA, worked out in Python now, are those the role's vars/main.yml worked out in Jinja for
every recorded input of tests/fixtures/k8s/kubelet_reads.json (kubeadm's unit, a masked unit, a
unit systemd does not know, a site's unit directories and paths, clientCAFile set, empty, null or
unreadable, environment files repeated, missing or in another order), recorded with real
ansible-playbook from the role at f7632ef (record_kubelet_reads.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from .test_kube_manifest import _load

ROOT = content_root()
PREFLIGHT = _load(
    ROOT / "roles" / "kube_kubelet" / "action_plugins" / "kube_kubelet_preflight.py",
    "kube_kubelet_preflight_action",
)
RECORDED = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "k8s" / "kubelet_reads.json").read_text()
)
DEFAULTS = yaml.safe_load((ROOT / "roles" / "kube_kubelet" / "defaults" / "main.yml").read_text())


def reads(inputs: dict[str, Any]) -> dict[str, Any]:
    """What the preflight action works out from the first facts read and config.yaml's read."""
    knobs = DEFAULTS | inputs.get("vars", {})
    args = {
        "config_path": knobs["kube_kubelet_config_path"],
        "kubeconfig": knobs["kube_kubelet_kubeconfig"],
        "proxy_kubeconfig": knobs["kube_kubelet_proxy_kubeconfig"],
    }
    unit, service = inputs["unit"], knobs["kube_kubelet_service"]
    files = PREFLIGHT.unit_files(unit, service, knobs["kube_kubelet_unit_dirs"])
    ca = PREFLIGHT.client_ca(inputs["config"], knobs["kube_kubelet_client_ca_file"])
    modes, owners = PREFLIGHT.file_specs(files, args, ca)
    return {
        "unit_files": files,
        "env_paths": PREFLIGHT.env_paths(unit, knobs["kube_kubelet_env_files"], inputs["present"]),
        "client_ca": ca,
        "modes": modes,
        "owners": owners,
    }


@pytest.mark.parametrize("case", sorted(RECORDED))
def test_the_preflight_reads_the_paths_the_former_steps_read(case: str) -> None:
    assert reads(RECORDED[case]["inputs"]) == RECORDED[case]["old"]


def test_the_recorded_inputs_cover_each_way_to_find_the_files() -> None:
    """The recording is no single case: known, masked and unknown units, a site's CA and the
    default, environment files kept, dropped and de-duplicated."""
    old = {case: r["old"] for case, r in RECORDED.items()}
    assert old["kubeadm"]["client_ca"] == "/srv/pki/site-ca.crt"
    assert (
        old["ca_empty"]["client_ca"]
        == old["config_broken"]["client_ca"]
        == (DEFAULTS["kube_kubelet_client_ca_file"])
    )
    assert old["masked"]["unit_files"] == ["/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"]
    assert "/srv//units/kubelet.service.d/*.conf" in old["not_found"]["unit_files"]
    assert old["env_order_and_duplicates"]["env_paths"] == [
        "/etc/default/kubelet", "/srv/kubelet.env", "/var/lib/kubelet/kubeadm-flags.env",
    ]  # fmt: skip


def test_what_the_preflight_adds_leaves_every_key_of_the_plan() -> None:
    """The task's result is the plan's, plus the kubelet's process and its environment files: none
    of those may stand in for a key the write steps read from the plan (its `files` to narrow)."""
    plan = (ROOT / "roles" / "kube_kubelet" / "library" / "kube_kubelet_plan.py").read_text()
    returned = yaml.safe_load(plan.split('RETURN = r"""')[1].split('"""')[0])
    source = ROOT / "roles" / "kube_kubelet" / "action_plugins" / "kube_kubelet_preflight.py"
    added = {"process", "env_paths"}
    assert "result.update(changed=False, process=" in source.read_text()
    assert "files" in returned
    assert not added & set(returned)
