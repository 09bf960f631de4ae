"""kube_kubelet decides every control in one module call (library/kube_kubelet_plan.py) and
decides what its per-control steps decided: the recorded inputs of
tests/fixtures/k8s/kubelet_plans.json (kubeadm's files, a compliant file, a site's own keys and
flags, kernel settings that differ, each protectKernelDefaults setting, tag subsets, --skip-tags)
were run through the role's former per-control `set_fact` and `debug` steps by real Ansible, and
the config.yaml keys, the flags to remove and prune, the health URL and every message were kept;
the plan must give the same. A selection changes only what it selects, and a compliant host
writes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from .role_modules import role_library

ROLE = content_root() / "roles" / "kube_kubelet"
RECORDED = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "k8s" / "kubelet_plans.json").read_text()
)
SERVICE = "kubelet"


PLAN = role_library("kube_kubelet", "kube_kubelet_plan")


def settings(overrides: dict[str, Any]) -> dict[str, Any]:
    """The role's knobs as it hands them to the plan (vars/main.yml's kube_kubelet_plan_settings):
    defaults, then the site's values, without the role prefix."""
    env = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    env.update(overrides)
    handed = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["kube_kubelet_plan_settings"]
    out = {}
    for key, ref in handed.items():
        name = re.fullmatch(r"\{\{ (kube_kubelet_\w+) \}\}", ref)
        assert name, ref
        out[key] = env[name.group(1)]
    return out


def decide(inputs: dict[str, Any], files: dict[str, Any] | None = None) -> dict[str, Any]:
    node = {
        "container": inputs["container"],
        "sysctls": inputs["sysctls"],
        "processes": {"kubelet": {"running": True, "pid": 42, "start": 1, "argv": inputs["argv"]}},
    }
    return PLAN.plan(  # type: ignore[no-any-return]
        {"path": "/var/lib/kubelet/config.yaml", "config": inputs["config"]},
        inputs["env"],
        node,
        files or {"loose_modes": [], "wrong_owners": [], "loaded": {}},
        settings(inputs["vars"]),
        inputs["run_tags"],
        inputs["skip_tags"],
    )


@pytest.mark.parametrize("scenario", sorted(RECORDED))
def test_the_plan_wants_what_the_per_control_steps_wanted(scenario: str) -> None:
    old, decided = RECORDED[scenario]["old"], decide(RECORDED[scenario]["inputs"])
    assert decided["settings"] == old["settings"]
    assert decided["remove"] == old["remove"]
    assert decided["prune"] == old["prune"]
    assert decided["health_url"] == old["health_url"]


@pytest.mark.parametrize("scenario", sorted(RECORDED))
def test_the_plan_says_what_the_per_control_steps_said(scenario: str) -> None:
    recorded = RECORDED[scenario]
    assert decide(recorded["inputs"])["notes"] == recorded["old"]["notes"]


def _hardened(inputs: dict[str, Any]) -> dict[str, Any]:
    """config.yaml once the role wrote it, and environment files without the flags it removes."""
    decided = decide(inputs)
    config = PLAN.deep_merge(inputs["config"], decided["settings"])
    env = [{"item": r["item"], "flags": {v: {f: x for f, x in flags.items()
            if f not in decided["remove"] and f not in decided["prune"]}
            for v, flags in r["flags"].items()}} for r in inputs["env"]]  # fmt: skip
    return dict(inputs, config=config, env=env)


@pytest.mark.parametrize("scenario", ["kubeadm", "site_bare_metal", "knobs_true"])
def test_a_compliant_kubelet_needs_no_write_step(scenario: str) -> None:
    inputs = RECORDED[scenario]["inputs"]
    assert decide(inputs)["apply"] is True
    again = decide(_hardened(inputs))
    assert (again["write"], again["pending"], again["files"], again["apply"]) == (
        False, False, [], False)  # fmt: skip


def test_a_flag_left_in_an_environment_file_needs_a_write() -> None:
    inputs = _hardened(RECORDED["kubeadm"]["inputs"])
    inputs["env"][1]["flags"]["KUBELET_EXTRA_ARGS"]["--read-only-port"] = "10255"
    assert decide(inputs)["write"] is True
    assert decide(dict(inputs, run_tags=["cis_k8s_4_2_5"]))["write"] is False
    assert decide(dict(inputs, run_tags=["cis_k8s_4_2_4"]))["write"] is True


def test_a_kubelet_started_before_its_files_were_written_is_restarted() -> None:
    inputs = _hardened(RECORDED["kubeadm"]["inputs"])
    files = {"loose_modes": [], "wrong_owners": [], "loaded": {SERVICE: {"loaded": False}}}
    assert decide(inputs, files)["pending"] is True
    assert decide(inputs, files)["apply"] is True
    assert decide(dict(inputs, run_tags=["cis_k8s_4_1_1"]), files)["apply"] is False


def test_file_modes_and_owners_change_only_for_the_selected_controls() -> None:
    files = {
        "loose_modes": [
            {"id": "cis_k8s_4_1_9", "path": "/var/lib/kubelet/config.yaml", "mode": "0644", "fixed": "0600"},
            {"id": "cis_k8s_4_1_1", "path": "/lib/systemd/system/kubelet.service", "mode": "0644", "fixed": "0600"},
        ],
        "wrong_owners": [{"id": "cis_k8s_4_1_2", "path": "/lib/systemd/system/kubelet.service",
                          "owner": "nobody", "group": "root"}],
        "loaded": {},
    }  # fmt: skip
    inputs = _hardened(RECORDED["kubeadm"]["inputs"])
    every = decide(inputs, files)
    assert [(f["id"], f["path"]) for f in every["files"]] == [
        ("cis_k8s_4_1_1", "/lib/systemd/system/kubelet.service"),
        ("cis_k8s_4_1_2", "/lib/systemd/system/kubelet.service"),
        ("cis_k8s_4_1_9", "/var/lib/kubelet/config.yaml"),
    ]
    assert every["apply"] is True and every["write"] is False
    owner_only = decide(dict(inputs, run_tags=["cis_k8s_4_1_2"]), files)
    assert owner_only["files"] == files["wrong_owners"]
    skipped = decide(dict(inputs, skip_tags=["cis_k8s_4_1_9"]), files)
    assert "/var/lib/kubelet/config.yaml" not in [f["path"] for f in skipped["files"]]


def test_skipping_one_control_runs_no_write_step_as_the_tagged_include_did() -> None:
    """The write steps were one include tagged with every control of the role: --skip-tags naming
    any of them skipped it all. The include is tagged always now, so the plan says the same: a
    loose config.yaml (4.1.9) and a key to write (4.2.4) change nothing under --skip-tags
    cis_k8s_4_1_1, and a skip of another role's control leaves them to change."""
    files = {"loose_modes": [{"id": "cis_k8s_4_1_9", "path": "/var/lib/kubelet/config.yaml",
                              "mode": "0644", "fixed": "0600"}], "wrong_owners": [], "loaded": {}}  # fmt: skip
    inputs = RECORDED["kubeadm"]["inputs"]
    skipped = decide(dict(inputs, skip_tags=["cis_k8s_4_1_1"]), files)
    assert skipped["files"] and skipped["write"]
    assert skipped["apply"] is False
    other = decide(dict(inputs, skip_tags=["cis_docker_2_2"]), files)
    assert other["apply"] is True


def test_one_selected_control_changes_only_its_key() -> None:
    decided = decide(dict(RECORDED["kubeadm"]["inputs"], run_tags=["cis_k8s_4_2_4"]))
    assert decided["settings"] == {"readOnlyPort": 0}
    assert decided["remove"] == ["--read-only-port"]
    assert decided["write"] is True


def test_a_broken_file_skips_the_kubelet_and_is_recorded() -> None:
    inputs = RECORDED["kubeadm"]["inputs"]
    env = [
        dict(inputs["env"][0]),
        {"item": "/etc/default/kubelet", "broken": "/etc/default/kubelet: bad"},
    ]
    decided = PLAN.plan({"path": "/var/lib/kubelet/config.yaml", "config": inputs["config"]}, env,
                        {"container": "docker"}, {"loose_modes": [{"id": "cis_k8s_4_1_1"}]},
                        settings({}), ["all"], [])  # fmt: skip
    assert decided["broken"] == [{"component": "kubelet", "path": "/var/lib/kubelet/config.yaml",
                                  "broken": True, "reason": "/etc/default/kubelet: bad"}]  # fmt: skip
    assert (decided["apply"], decided["files"], decided["settings"]) == (False, [], {})


def test_the_plan_knows_every_control_the_role_tags() -> None:
    """A control tagged in the role's tasks but unknown to the module would never be selected."""
    tagged = set()
    for path in (ROLE / "tasks").glob("*.yml"):
        tagged |= set(re.findall(r"cis_k8s_\d+_\d+_\d+", path.read_text()))
    assert tagged <= set(PLAN.CONTROLS)


def test_a_host_without_config_yaml_is_refused_with_the_former_message() -> None:
    assert PLAN.missing_config("/srv/kubelet/config.yaml") == (
        "/srv/kubelet/config.yaml does not exist: this role hardens a kubeadm kubelet, which keeps"
        " its settings in that KubeletConfiguration file (set kube_kubelet_config_path if it lives"
        " elsewhere)."
    )
