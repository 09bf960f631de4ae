"""kube_control_plane decides every control in one module call (library/kube_control_plane_plan.py)
and decides what its per-control steps decided: the recorded inputs of
tests/fixtures/k8s/control_plane_plans.json (kubeadm's flags, a site's own files and flags, loose
values, each anonymous-auth setting, tag subsets, --skip-tags) were run through the role's former
per-control `set_fact` steps by real Ansible, and each component's edit and every message they
printed were kept; the plan must give the same. A selection changes only what it selects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from .role_modules import role_library

ROLE = content_root() / "roles" / "kube_control_plane"
RECORDED = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "k8s" / "control_plane_plans.json").read_text()
)
COMPONENTS = ("apiserver", "controller_manager", "scheduler")


PLAN = role_library("kube_control_plane", "kube_control_plane_plan")
_ONE_VAR = re.compile(r"^\{\{ (kube_control_plane_\w+) \}\}$")
_VAR = re.compile(r"\{\{ (kube_control_plane_\w+) \}\}")


def _render(value: Any, env: dict[str, Any]) -> Any:
    """The role's simple `{{ var }}` references resolved (all the settings use)."""
    if isinstance(value, dict):
        return {k: _render(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, env) for v in value]
    if isinstance(value, str):
        whole = _ONE_VAR.match(value)
        if whole:
            return _render(env[whole.group(1)], env)
        return _VAR.sub(lambda m: str(_render(env[m.group(1)], env)), value)
    return value


def settings(overrides: dict[str, Any]) -> dict[str, Any]:
    """kube_control_plane_settings as the role hands it over: defaults, then the site's values."""
    env = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    env.update({k: v for k, v in role_vars.items() if k != "kube_control_plane_settings"})
    env.update(overrides)
    return _render(role_vars["kube_control_plane_settings"], env)  # type: ignore[no-any-return]


def found(apiserver: dict[str, Any], controller_manager: dict[str, Any]) -> dict[str, Any]:
    """What the Preflight read: three manifests that exist and parse, with these flags."""
    out = {}
    for name, flags in (("apiserver", apiserver), ("controller_manager", controller_manager),
                        ("scheduler", {})):  # fmt: skip
        probe = {"scheme": "https", "host": "127.0.0.1", "port": 6443, "path": "/readyz"}
        out[name] = {"exists": True, "path": f"/m/{name}.yaml", "process": f"kube-{name}",
                     "health_path": "", "read": {"flags": flags, "probe": probe}}  # fmt: skip
    return out


def decide(inputs: dict[str, Any], node: dict[str, Any] | None = None) -> dict[str, Any]:
    selected = PLAN.selected_controls(list(PLAN.CONTROLS), inputs["run_tags"], inputs["skip_tags"])
    return PLAN.plan(  # type: ignore[no-any-return]
        found(inputs["apiserver_flags"], inputs["controller_manager_flags"]),
        node or {"verified": [inputs["verified"]]},
        settings(inputs["vars"]),
        selected,
    )


DECIDED = sorted(n for n, r in RECORDED.items() if not r["old"]["failed"])
REFUSED = sorted(n for n, r in RECORDED.items() if r["old"]["failed"])


@pytest.mark.parametrize("scenario", DECIDED)
def test_the_plan_wants_what_the_per_control_steps_wanted(scenario: str) -> None:
    recorded = RECORDED[scenario]
    decided = decide(recorded["inputs"])
    for component in COMPONENTS:
        assert decided["edits"][component] == recorded["old"]["edits"][component], component


@pytest.mark.parametrize("scenario", DECIDED)
def test_the_plan_says_what_the_per_control_steps_said(scenario: str) -> None:
    recorded = RECORDED[scenario]
    assert decide(recorded["inputs"])["notes"] == recorded["old"]["notes"]


@pytest.mark.parametrize("scenario", REFUSED)
def test_restricted_anonymous_auth_is_refused_next_to_another_authenticator(scenario: str) -> None:
    recorded = RECORDED[scenario]
    with pytest.raises(PLAN.RefusedError) as refused:
        decide(recorded["inputs"])
    assert [str(refused.value)] == recorded["old"]["failed"]


def test_one_selected_control_changes_only_its_flag() -> None:
    inputs = dict(RECORDED["kubeadm"]["inputs"], run_tags=["cis_k8s_1_2_5"])
    decided = decide(inputs)
    assert decided["edits"]["apiserver"] == {
        "flags": {}, "defaults": {"--kubelet-certificate-authority": "/etc/kubernetes/pki/ca.crt"},
        "merge": {}, "prune": {}, "remove": [], "volumes": [],
    }  # fmt: skip
    assert all(decided["edits"][c]["flags"] == {} for c in ("controller_manager", "scheduler"))
    assert not any(decided["writes"].values())
    assert decided["dirs"] == []


def test_casemate_files_are_written_only_for_the_selected_controls() -> None:
    inputs = RECORDED["fresh"]["inputs"]
    every = decide(inputs)
    base = "/srv/casemate-rec/fresh"
    assert every["writes"] == {"authentication": False, "event_rate_limit": True,
                               "admission": True, "audit_policy": True, "encryption": True}  # fmt: skip
    assert every["dirs"] == [f"{base}/casemate", f"{base}/audit", f"{base}/encryption"]
    assert every["encryption_path"] == f"{base}/encryption/encryption-config.yaml"
    audit = decide(dict(inputs, run_tags=["cis_k8s_3_2_1"]))
    assert audit["writes"] == dict.fromkeys(every["writes"], False) | {"audit_policy": True}
    assert audit["dirs"] == [f"{base}/casemate"]
    site = decide(dict(inputs, apiserver_flags={"--encryption-provider-config": "/srv/enc.json"}))
    assert site["encryption_path"] == "/srv/enc.json"
    assert f"{base}/encryption" not in site["dirs"]  # the site's directory is not chmodded


def test_file_modes_and_owners_change_only_for_the_selected_controls() -> None:
    node = {
        "verified": [{"ok": True, "reason": ""}],
        "loose_modes": [
            {"id": "cis_k8s_1_1_21", "path": "/pki/ca.key", "mode": "0644", "fixed": "0600"},
            {"id": "cis_k8s_1_1_1", "path": "/m/apiserver.yaml", "mode": "0644", "fixed": "0600"},
        ],
        "wrong_owners": [
            {"id": "cis_k8s_1_1_2", "path": "/m/apiserver.yaml", "owner": "nobody", "group": "root"}
        ],
    }
    inputs = RECORDED["fresh"]["inputs"]
    every = decide(inputs, node)
    assert [(f["id"], f["path"]) for f in every["files"]] == [
        ("cis_k8s_1_1_1", "/m/apiserver.yaml"),
        ("cis_k8s_1_1_2", "/m/apiserver.yaml"),
        ("cis_k8s_1_1_21", "/pki/ca.key"),
    ]
    owner_only = decide(dict(inputs, run_tags=["cis_k8s_1_1_2"]), node)
    assert owner_only["files"] == [node["wrong_owners"][0]]
    skipped = decide(dict(inputs, skip_tags=["cis_k8s_1_1_21"]), node)
    assert "/pki/ca.key" not in [f["path"] for f in skipped["files"]]


def test_a_broken_or_missing_manifest_is_not_edited_and_is_recorded() -> None:
    inputs = RECORDED["fresh"]["inputs"]
    reads = found({}, {})
    reads["apiserver"]["read"] = {"path": "/m/apiserver.yaml", "broken": "/m/apiserver.yaml: bad"}
    reads["scheduler"] = {"exists": False, "path": "/m/scheduler.yaml", "process": "kube-scheduler",
                          "health_path": "", "read": {"skipped": True}}  # fmt: skip
    decided = PLAN.plan(reads, {"verified": [{"ok": True}]}, settings(inputs["vars"]),
                        list(PLAN.CONTROLS))  # fmt: skip
    assert decided["usable"] == {"apiserver": False, "controller_manager": True, "scheduler": False}
    assert decided["broken"] == [{"component": "kube-apiserver", "path": "/m/apiserver.yaml",
                                  "broken": True, "reason": "/m/apiserver.yaml: bad"}]  # fmt: skip
    assert decided["edits"]["apiserver"]["defaults"] == {}
    assert not any(decided["writes"].values()) and decided["dirs"] == []
    assert decided["health_urls"] == {"apiserver": "", "scheduler": "",
                                      "controller_manager": "https://127.0.0.1:6443/readyz"}  # fmt: skip


def test_the_plan_knows_every_control_the_role_tags() -> None:
    """A control tagged in the role's tasks but unknown to the module would never be selected."""
    tagged = set()
    for path in (ROLE / "tasks").glob("*.yml"):
        tagged |= set(re.findall(r"cis_k8s_\d+_\d+_\d+", path.read_text()))
    assert tagged <= set(PLAN.CONTROLS)
