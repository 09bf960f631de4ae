"""What Ansible itself selects from playbooks/harden.yml for a selection of controls
(`ansible-playbook --list-tasks --tags`, no host is contacted): one control runs its own step and
its role's shared steps, and nothing of another control; a step for a check-only control runs with
the controls casemate does select."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate import roleset
from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.locations import content_root

from . import test_kube_kubelet_plan as kubelet_plan

ROOT = content_root()
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
GROUPS = ("docker_hosts", "k8s_control_plane", "k8s_workers", "etcd")


def listed(tmp_path: Path, tags: list[str]) -> list[tuple[str, str, set[str]]]:
    """(role, task name, tags) of every task the selection runs, in order."""
    inventory = tmp_path / "inventory.yml"
    groups = {g: {"hosts": {f"{g}-1": {}}} for g in GROUPS}
    inventory.write_text(yaml.safe_dump({"all": {"children": groups}}))
    env = os.environ | {
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
    }
    done = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(ROOT / "playbooks" / "harden.yml"),
         "--list-tasks", "--tags", ",".join(tags)],
        capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = []
    for line in done.stdout.splitlines():
        task, sep, found = line.strip().partition("\tTAGS: ")
        if sep and " : " in task:
            role, name = task.split(" : ", 1)
            tags = set(found.strip("[]").split(", ")) - {""}
            # the tag of the role itself (playbooks/harden.yml, for --skip-tags) is no control's
            out.append((role, name, {t for t in tags if not t.startswith(roleset.ROLE_TAG)}))
    return out


@pytest.mark.ansible
def test_one_daemon_json_control_runs_the_one_decision_and_the_shared_apply_only(
    tmp_path: Path,
) -> None:
    """docker_daemon decides its controls in the facts module (from ansible_run_tags); a run of
    one control lists the read and the one include (the notices, then the write-and-apply include
    tagged with every control of the role), no step per control."""
    tasks = [
        (name, tags)
        for role, name, tags in listed(tmp_path, ["cis_docker_2_2"])
        if role == "docker_daemon"
    ]
    always = [name for name, tags in tasks if tags == {"always"}]
    assert always[1].startswith("Preflight | Read daemon.json"), always
    assert always[2:] == ["Say what this run leaves, and write, apply and confirm daemon.json"]
    included = (ROOT / "roles" / "docker_daemon" / "tasks" / "apply.yml").read_text()
    inside = _tasks(yaml.safe_load(included))
    assert [task["name"] for task, _ in inside] == [
        "Say what this run leaves, drops or restarts, and why",
        "Write, apply and confirm daemon.json when the selected controls or the running daemon "
        "need it",
    ]
    assert inside[0][1] == {"always"}
    assert "cis_docker_2_2" in inside[1][1] and len(inside[1][1]) > 1
    others = [name for name, tags in tasks if len(tags - {"always"}) == 1]
    assert others == [], "a step per control runs"


@pytest.mark.ansible
def test_the_node_name_notice_runs_with_casemate_s_selection(tmp_path: Path) -> None:
    """cis_k8s_4_2_7 is check-only: casemate never passes its tag, so its notice must ride on the
    kubelet controls casemate does select."""
    entries = select(load_catalog(None, builtin_kinds()), Selection(level=1))
    tags = [e.id for e in entries if e.control.remediation is not None]
    assert "cis_k8s_4_2_7" not in tags
    names = [name for role, name, _ in listed(tmp_path, tags) if role == "kube_kubelet"]
    assert "Record a broken file, narrow the files, write, restart and confirm the kubelet" in names
    included = (ROOT / "roles" / "kube_kubelet" / "tasks" / "apply.yml").read_text()
    notice = [tags for task, tags in _tasks(yaml.safe_load(included))
              if task["name"] == "Say what is left alone and why"]  # fmt: skip
    assert notice and "always" in notice[0]
    # the plan, given casemate's selection, says it
    env = [
        {
            "item": "/etc/default/kubelet",
            "flags": {"KUBELET_EXTRA_ARGS": {"--hostname-override": "n"}},
        }
    ]
    node = {"container": "docker", "processes": {"kubelet": {"running": True, "argv": []}}}
    decided = kubelet_plan.PLAN.plan(
        {"config": {}}, env, node, {}, kubelet_plan.settings({}), tags, []
    )
    assert any(n.startswith("The kubelet is given --hostname-override") for n in decided["notes"])


# roles that decide every control in their one module call, and the most tasks each may list for a
# whole level 2 selection (its argument check, the read, the steps that change something)
ONE_CALL_ROLES = {
    "docker_daemon": 3,
    "docker_files": 8,
    "sysctl": 3,
    "kube_kubelet": 3,
    "kube_policies": 4,
    "host_baseline": 3,
    "gvisor": 6,
    "apparmor": 6,
}


@pytest.mark.ansible
@pytest.mark.parametrize("role", sorted(ONE_CALL_ROLES))
def test_a_role_decides_every_control_in_its_one_module_call(tmp_path: Path, role: str) -> None:
    """Every task costs controller CPU on every host, run or skipped: the role reads the host and
    decides the selected controls in one module call, with no step per control."""
    entries = select(load_catalog(None, builtin_kinds()), Selection(level=2))
    tags = [e.id for e in entries if e.control.remediation is not None]
    tasks = [(name, found) for r, name, found in listed(tmp_path, tags) if r == role]
    names = [name for name, _ in tasks]
    assert names[0].startswith("Validating arguments")
    assert names[1].startswith("Preflight | "), names
    # an `always` step runs for every selection: it is no step of one control
    per_control = [
        n for n, found in tasks if len(found - {"always"}) == 1 and "always" not in found
    ]
    assert per_control == [], "a step per control"
    assert len(tasks) <= ONE_CALL_ROLES[role], names


def _tasks(items: list[Any], inherited: frozenset[str] = frozenset()) -> list[tuple[Any, set[str]]]:
    """Every task of a task file, blocks opened, with the tags it runs under."""
    out: list[tuple[Any, set[str]]] = []
    for item in items:
        tags = set(inherited) | set(item.get("tags") or [])
        if "block" in item:
            for part in ("block", "rescue", "always"):
                out += _tasks(item.get(part) or [], frozenset(tags))
        else:
            out.append((item, tags))
    return out


@pytest.mark.ansible
def test_kube_control_plane_decides_every_control_in_its_one_module_call(tmp_path: Path) -> None:
    """kube_control_plane sets no fact and prints nothing per control: one module call decides
    every selected flag; what is left is its reads, the files it writes and the manifests."""
    role = ROOT / "roles" / "kube_control_plane" / "tasks"
    for path in sorted(role.glob("*.yml")):
        for task, tags in _tasks(yaml.safe_load(path.read_text()) or []):
            if {"ansible.builtin.set_fact", "ansible.builtin.debug"} & set(task):
                assert tags == {"always"}, f"{path.name}: {task['name']} is a step per control"
    entries = select(load_catalog(None, builtin_kinds()), Selection(level=2))
    tags = [e.id for e in entries if e.control.remediation is not None]
    names = [name for r, name, _ in listed(tmp_path, tags) if r == "kube_control_plane"]
    assert len(names) <= 16, names


def _module_utils(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"casemate_test_{name}", ROOT / "roles" / "host_common" / "module_utils" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.mark.parametrize(
    "run,skip,want",
    [
        ([], [], ["a", "b", "c"]),  # no --tags: Ansible runs all
        (["all"], [], ["a", "b", "c"]),
        (["tagged"], [], ["a", "b", "c"]),
        (["b"], [], ["b"]),
        (["c", "a", "other"], [], ["a", "c"]),
        (["all"], ["b"], ["a", "c"]),
        (["a", "b"], ["tagged"], []),
        (["a"], ["all"], []),
    ],
)
def test_a_role_module_selects_the_controls_ansible_would_run(
    run: list[str], skip: list[str], want: list[str]
) -> None:
    selection = _module_utils("casemate_selection")
    assert selection.selected_controls(["a", "b", "c"], run, skip) == want


def _docker_files_facts() -> Any:
    path = ROOT / "roles" / "docker_files" / "library" / "docker_files_facts.py"
    spec = importlib.util.spec_from_file_location("casemate_test_docker_files_facts", path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_docker_files_plans_only_what_a_selected_control_fixes() -> None:
    facts = _docker_files_facts()
    controls = yaml.safe_load((ROOT / "roles" / "docker_files" / "vars" / "main.yml").read_text())[
        "docker_files_controls"
    ]
    wrong = {
        "target": "config_dir", "path": "/etc/docker", "user": "nobody", "group": "root",
        "mode": "0777", "want_owner": "root", "want_group": "root", "want_mode": "0755",
        "owner_ok": False, "mode_ok": False,
    }  # fmt: skip
    right = dict(wrong, target="daemon_json", path="/etc/docker/daemon.json", owner_ok=True,
                 mode_ok=True)  # fmt: skip
    files = [wrong, right]
    mode_only = facts.plan(files, controls, ["cis_docker_3_6"])
    assert [(c["path"], c["fix_owner"], c["fix_mode"]) for c in mode_only["changes"]] == [
        ("/etc/docker", False, True)
    ]
    assert mode_only["previous"] == [
        {"path": "/etc/docker", "user": "nobody", "group": "root", "mode": "0777"}
    ]
    both = facts.plan(files, controls, sorted(controls))
    assert [(c["fix_owner"], c["fix_mode"]) for c in both["changes"]] == [(True, True)]
    other = facts.plan(files, controls, ["cis_docker_3_17", "cis_docker_3_18"])
    assert other == {"changes": [], "previous": []}


# the most tasks each role may list for a whole level 2 selection, summed over the plays it is in:
# the steps a host with nothing to change only skips sit behind one include
FEW_TASK_ROLES = {"selinux": 6}


@pytest.mark.ansible
@pytest.mark.parametrize("role", sorted(FEW_TASK_ROLES))
def test_a_host_with_nothing_to_change_skips_one_include_not_every_step(
    tmp_path: Path, role: str
) -> None:
    entries = select(load_catalog(None, builtin_kinds()), Selection(level=2))
    tags = [e.id for e in entries if e.control.remediation is not None]
    names = [name for r, name, _ in listed(tmp_path, tags) if r == role]
    assert len(names) <= FEW_TASK_ROLES[role], names
