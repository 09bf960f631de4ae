"""The kube_policies role decides every control in one module call
(library/kube_policies_plan.py) and decides what its former steps decided: the inputs of
tests/fixtures/k8s/kube_policies_plans.json (a fresh and a hardened node, files drifted, no
kubeconfig, kubectl missing, refused or not ready, a live cluster, tag subsets, --skip-tags) were
run through the role's former steps by real Ansible (record_kube_policies_plans.py), and which
steps changed, which ran against the cluster and the notice it printed were kept; the plan must
give the same. And the files the role writes are the ones the plan finds current."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from .role_modules import play_role_locally, role_library

ROLE = content_root() / "roles" / "kube_policies"
RECORDED = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "k8s" / "kube_policies_plans.json").read_text()
)
PLAN = role_library("kube_policies", "kube_policies_plan")
POD_SECURITY_STEP = "Write the Pod Security levels of the namespaces | " + " ".join(
    f"cis_k8s_5_2_{n}" for n in range(1, 13)
)
STEPS = {  # the former step that stands for each decision of the plan
    "dir": "Prep | Make the policies directory",
    "pod_security": POD_SECURITY_STEP,
    "networkpolicy_template": "Write the default-deny NetworkPolicy template | cis_k8s_5_3_2",
    "rbac_review": "Install the RBAC review",
    "apply_manifests": "Apply the manifests to the cluster | cis_k8s_5_2_1 - cis_k8s_5_2_12 cis_k8s_5_3_2",
    "review": "Read the cluster's RBAC",
}
LOOP = "Write the default-deny NetworkPolicy of each chosen namespace | cis_k8s_5_3_2"
READY = {
    "ok": {"rc": 0, "stdout": "ok", "stderr": "", "msg": ""},
    "refused": {"rc": 1, "stdout": "", "msg": "",
                "stderr": "The connection to the server 127.0.0.1:6443 was refused - did you "
                          "specify the right host or port?"},
    "not_ready": {"rc": 0, "stdout": "[-]etcd failed: reason withheld\nreadyz check failed",
                  "stderr": "", "msg": ""},
    "missing": {"rc": 2, "stdout": "", "stderr": "",
                "msg": "Error executing command."},
}  # fmt: skip


def role_vars(overrides: dict[str, Any]) -> dict[str, Any]:
    found = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    return {**found, **overrides}


def params(inputs: dict[str, Any]) -> dict[str, Any]:
    """The module's arguments as the role builds them for the recorded case."""
    v = role_vars(inputs["vars"])
    files: list[dict[str, Any]] = []
    if v["kube_policies_pod_security_levels"]:
        files.append({"key": "pod_security", "levels": v["kube_policies_pod_security_levels"]})
    files.append({"key": "networkpolicy_template"})
    files += [
        {"key": "networkpolicy", "item": ns} for ns in v["kube_policies_default_deny_namespaces"]
    ]
    if v["kube_policies_rbac_review"]:
        files.append({"key": "rbac_review"})
    return {
        "dir": "CASE/policies", "files": files, "kubectl": "CASE/kubectl",
        "kubeconfig": "CASE/admin.conf", "request_timeout": v["kube_policies_request_timeout"],
        "runtimeclass_manifest": "CASE/runtimeclass-gvisor.yaml",
        "apply": v["kube_policies_apply"], "rbac_review": v["kube_policies_rbac_review"],
    }  # fmt: skip


def written_by_preparation(spec: dict[str, Any]) -> bool:
    """Whether the recorder's first (real) run wrote this file as the case wants it: it ran with
    the defaults and only the namespace "dev" (where a case prepared one)."""
    if spec["key"] == "pod_security":
        return bool(spec["levels"] == role_vars({})["kube_policies_pod_security_levels"])
    if spec["key"] == "networkpolicy":
        return bool(spec["item"] == "dev")
    return True


def host(inputs: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    """What read_host would find on the recorded host."""
    drift = inputs["drift"]
    drifted = {*drift.get("chmod", {}), *drift.get("chown", {}), *drift.get("append", {})}
    names = {"pod_security": "pod-security-namespaces.yaml", "rbac_review": "rbac-review.py",
             "networkpolicy_template": "networkpolicy-default-deny.yaml.template"}  # fmt: skip
    current = [
        inputs["prepared"] and written_by_preparation(f) and names.get(f["key"]) not in drifted
        for f in p["files"]
    ]
    asked = inputs["kubeconfig"] and PLAN.step_runs(
        PLAN.CONTROLS, inputs["run_tags"], inputs["skip_tags"]
    )
    return {
        "dir": inputs["prepared"] and "." not in drifted,
        "current": current,
        "kubeconfig": inputs["kubeconfig"],
        "runtimeclass": inputs["runtimeclass"],
        "ready": READY[inputs["kubectl"]] if asked else None,
    }


def decide(inputs: dict[str, Any]) -> dict[str, Any]:
    p = params(inputs)
    return PLAN.plan(p, host(inputs, p), inputs["run_tags"], inputs["skip_tags"])  # type: ignore[no-any-return]


def test_the_recording_holds_every_case() -> None:
    assert len(RECORDED) >= 8


@pytest.mark.parametrize("scenario", sorted(RECORDED))
def test_the_plan_changes_the_files_the_former_steps_changed(scenario: str) -> None:
    recorded = RECORDED[scenario]
    decided, steps = decide(recorded["inputs"]), recorded["old"]["steps"]
    assert decided["dir"] == (steps.get(STEPS["dir"]) == "changed")
    for key in ("pod_security", "networkpolicy_template", "rbac_review"):
        assert decided["writes"][key] == (steps.get(STEPS[key]) == "changed"), key
    assert decided["namespaces"] == recorded["old"]["items"].get(LOOP, [])


@pytest.mark.parametrize("scenario", sorted(RECORDED))
def test_the_plan_applies_and_reviews_where_the_former_steps_did(scenario: str) -> None:
    recorded = RECORDED[scenario]
    decided, steps = decide(recorded["inputs"]), recorded["old"]["steps"]
    assert decided["apply_manifests"] == (steps.get(STEPS["apply_manifests"]) == "would run")
    assert decided["review"] == (steps.get(STEPS["review"]) not in (None, "skipped"))


@pytest.mark.parametrize("scenario", sorted(RECORDED))
def test_the_plan_says_what_the_former_steps_said(scenario: str) -> None:
    recorded = RECORDED[scenario]
    assert decide(recorded["inputs"])["notes"] == recorded["old"]["messages"]


def test_a_compliant_node_without_a_cluster_has_nothing_to_apply() -> None:
    decided = decide(RECORDED["compliant"]["inputs"])
    assert not decided["apply"] and len(decided["notes"]) == 1


def test_the_cluster_is_asked_only_when_a_selected_step_needs_it() -> None:
    asked: list[list[str]] = []

    def run_command(argv: list[str], handle_exceptions: bool) -> tuple[int, str, str]:
        asked.append(argv)
        return 0, "ok\n", ""

    p = params({"vars": {}})
    p.update(kubeconfig=__file__, files=[])
    assert PLAN.read_host(run_command, p, ["cis_k8s_5_3_2"], [])["ready"]["stdout"] == "ok"
    assert PLAN.read_host(run_command, p, ["cis_docker_2_2"], [])["ready"] is None
    assert len(asked) == 1 and asked[0][-2:] == ["get", "--raw=/readyz"]


def test_a_kubectl_that_cannot_start_reads_as_the_command_module_said_it() -> None:
    def run_command(argv: list[str], handle_exceptions: bool) -> tuple[int, str, str]:
        assert not handle_exceptions
        raise FileNotFoundError(2, "No such file or directory", argv[0].encode())

    found = PLAN.ask_cluster(run_command, "CASE/kubectl", "CASE/admin.conf", "10s")
    assert found == READY["missing"]


def test_a_long_reason_is_cut_as_jinja_cut_it() -> None:
    reason = "word " * 60
    assert PLAN.truncate(reason) == reason[:157].rsplit(" ", 1)[0] + "..."
    assert PLAN.truncate("x" * 165) == "x" * 165


def test_the_plan_knows_every_control_the_role_tags() -> None:
    tagged = set()
    for path in (ROLE / "tasks").glob("*.yml"):
        tagged |= set(re.findall(r"cis_k8s_\d+_\d+_\d+", path.read_text()))
    assert tagged == set(PLAN.CONTROLS)


def _run_role(tmp_path: Path, extra: list[str]) -> subprocess.CompletedProcess[str]:
    role_vars = {"kube_policies_dir": str(tmp_path / "policies"),
                 "kube_policies_kubeconfig": str(tmp_path / "admin.conf"),
                 "kube_policies_kubectl": str(tmp_path / "no-kubectl"),
                 "kube_policies_runtimeclass_manifest": str(tmp_path / "runtimeclass.yaml"),
                 "kube_policies_default_deny_namespaces": ["dev", "prod"],
                 "kube_policies_pod_security_levels": {"default": "restricted", "apps": "baseline"}}  # fmt: skip
    return play_role_locally(tmp_path, "kube_policies", role_vars, extra)


@pytest.mark.ansible
def test_what_the_role_writes_is_what_the_plan_finds_current(tmp_path: Path) -> None:
    """The role writes its files on a local directory (every control, a second namespace and a
    second level); run again, the plan finds every file current: the include is skipped and
    nothing changes."""
    first = _run_role(tmp_path, [])
    assert first.returncode == 0, first.stdout[-3000:]
    assert (tmp_path / "policies" / "networkpolicy-default-deny-prod.yaml").is_file()
    again = _run_role(tmp_path, ["-v"])
    assert again.returncode == 0, again.stdout[-3000:]
    recap = again.stdout.split("PLAY RECAP")[-1]
    assert re.search(r"changed=0 ", recap), again.stdout[-3000:]
    step = "TASK [kube_policies : Prep | Make the policies directory]"
    assert step in first.stdout and step not in again.stdout, again.stdout[-3000:]
    assert "no live cluster answers through" in again.stdout
