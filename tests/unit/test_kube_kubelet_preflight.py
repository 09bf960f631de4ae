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


UNIT = {
    "load_state": "loaded",
    "fragment_path": "/lib/systemd/system/kubelet.service",
    "drop_in_paths": ["/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"],
    "environment_files": ["/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet"],
}
PROCESS = {"running": True, "pid": 42, "start": 1, "argv": ["/usr/bin/kubelet"]}
PLANNED = {"apply": True, "files": [{"id": "cis_k8s_4_1_9", "path": "/var/lib/kubelet/config.yaml"}],
           "notes": [], "broken": [], "write": False, "pending": False, "changed": False}  # fmt: skip


class _Task:
    """What the action reads of its task: the arguments the role's Preflight step passes."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.args = args
        self.collections: list[str] = []


def preflight_calls() -> list[tuple[str, dict[str, Any]]]:
    """Run the action with its readers recorded: (reader, arguments) in call order, the task's
    result last as ("result", result). The readers answer as on a kubeadm node."""
    calls: list[tuple[str, dict[str, Any]]] = []
    action = object.__new__(PREFLIGHT.ActionModule)
    settings = {"service": "kubelet", "config_path": "/var/lib/kubelet/config.yaml"}
    action._task = _Task(
        {"service": "kubelet", "config_path": "/var/lib/kubelet/config.yaml",
         "unit_dirs": DEFAULTS["kube_kubelet_unit_dirs"],
         "env_files": DEFAULTS["kube_kubelet_env_files"],
         "env_variables": DEFAULTS["kube_kubelet_env_variables"],
         "kubeconfig": "/etc/kubernetes/kubelet.conf",
         "proxy_kubeconfig": "/etc/kubernetes/proxy.conf",
         "client_ca_file": "/etc/kubernetes/pki/ca.crt", "backup_dir": "/var/backups/k",
         "sysctls": ["vm.overcommit_memory"], "settings": settings,
         "run_tags": ["all"], "skip_tags": []}
    )  # fmt: skip

    def execute(module_name: str, module_args: dict[str, Any], task_vars: Any) -> dict[str, Any]:
        calls.append((module_name, module_args))
        if module_name == "kube_kubelet_plan":
            return dict(PLANNED, invocation={"module_args": {}})
        if "units" in module_args:
            return {"units": {"kubelet": UNIT}, "processes": {"kubelet": PROCESS},
                    "present": ["/var/lib/kubelet/kubeadm-flags.env"], "changed": False}  # fmt: skip
        return {"loose_modes": [], "wrong_owners": [], "loaded": {}, "changed": False}

    def read(path: str, fmt: str, extra: dict[str, Any], args: Any, task_vars: Any) -> Any:
        calls.append(("kube_manifest", {"path": path, "format": fmt, **extra}))
        if fmt == "config":
            return {
                "path": path,
                "previous_mode": "0644",
                "config": {"kind": "KubeletConfiguration"},
            }
        return {"path": path, "flags": {"KUBELET_KUBEADM_ARGS": {}}}

    action._execute_module = execute  # type: ignore[method-assign]
    action._read = read  # type: ignore[method-assign]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PREFLIGHT.ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
        result = action.run(task_vars={})
    return [*calls, ("result", result)]


def test_the_preflight_calls_the_former_readers_with_their_arguments_then_the_plan() -> None:
    calls = preflight_calls()
    assert [name for name, _ in calls] == [
        "kube_node_facts", "kube_manifest", "kube_manifest", "kube_node_facts",
        "kube_kubelet_plan", "result",
    ]  # fmt: skip
    node, config, env, files, plan, (_, result) = calls
    assert node[1] == {"units": ["kubelet"], "services": {"kubelet": "kubelet"},
                       "sysctls": ["vm.overcommit_memory"],
                       "present": DEFAULTS["kube_kubelet_env_files"]}  # fmt: skip
    assert config[1] == {"path": "/var/lib/kubelet/config.yaml", "format": "config",
                         "kind": "KubeletConfiguration"}  # fmt: skip
    # only the environment file that exists is read
    assert env[1] == {"path": "/var/lib/kubelet/kubeadm-flags.env", "format": "env",
                      "variables": DEFAULTS["kube_kubelet_env_variables"]}  # fmt: skip
    assert files[1]["loaded"] == {
        "kubelet": ["/var/lib/kubelet/config.yaml", "/var/lib/kubelet/kubeadm-flags.env"]
    }
    assert files[1]["modes"][0]["globs"] == [UNIT["fragment_path"], *UNIT["drop_in_paths"]]
    assert plan[1]["env"] == [{"path": "/var/lib/kubelet/kubeadm-flags.env",
                               "flags": {"KUBELET_KUBEADM_ARGS": {}},
                               "item": "/var/lib/kubelet/kubeadm-flags.env"}]  # fmt: skip
    assert plan[1]["node"]["processes"] == {"kubelet": PROCESS}
    # the task's result is the plan's (its files to narrow stay), the process and the env files
    assert result["files"] == PLANNED["files"]
    assert result["process"] == PROCESS
    assert result["env_paths"] == ["/var/lib/kubelet/kubeadm-flags.env"]
    assert result["changed"] is False and "invocation" not in result


def test_a_plan_that_refuses_fails_the_task_with_its_message() -> None:
    action = object.__new__(PREFLIGHT.ActionModule)
    action._task = _Task({"service": "kubelet", "config_path": "/c.yaml", "backup_dir": "/b",
                          "settings": {"x": 1}, "kubeconfig": "/k", "proxy_kubeconfig": "/p",
                          "client_ca_file": "/ca"})  # fmt: skip

    def execute(module_name: str, module_args: dict[str, Any], task_vars: Any) -> dict[str, Any]:
        if module_name == "kube_kubelet_plan":
            return {"failed": True, "msg": "/c.yaml does not exist"}
        return {"units": {"kubelet": UNIT}, "processes": {"kubelet": PROCESS}, "present": []}

    action._execute_module = execute  # type: ignore[method-assign]
    action._read = lambda *a: {"path": "/c.yaml"}  # type: ignore[method-assign]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PREFLIGHT.ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
        result = action.run(task_vars={})
    assert result == {"failed": True, "msg": "/c.yaml does not exist"}
