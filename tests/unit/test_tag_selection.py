"""What Ansible itself selects from playbooks/harden.yml for a selection of controls
(`ansible-playbook --list-tasks --tags`, no host is contacted): one control runs its own step and
its role's shared steps, and nothing of another control; a step for a check-only control runs with
the controls casemate does select."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.locations import content_root

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
            out.append((role, name, set(found.strip("[]").split(", ")) - {""}))
    return out


@pytest.mark.ansible
def test_one_daemon_json_control_runs_its_step_and_the_shared_steps_only(tmp_path: Path) -> None:
    tasks = [
        (name, tags)
        for role, name, tags in listed(tmp_path, ["cis_docker_2_2"])
        if role == "docker_daemon"
    ]
    own = [name for name, tags in tasks if tags == {"cis_docker_2_2"}]
    shared = [name for name, tags in tasks if len(tags) > 1]
    assert own == ["Keep containers on the default bridge apart | cis_docker_2_2"]
    for step in (
        "Write the merged daemon.json root:root 0644 (dockerd --validate checks it first where it can)",
        "Apply daemon.json (reload when dockerd can, else restart)",
        "Confirm dockerd answers with the new configuration",
        "Record on the host that dockerd runs with this daemon.json",
    ):
        assert step in shared
    others = [
        name
        for name, tags in tasks
        if tags not in ({"always"}, {"cis_docker_2_2"}) and len(tags) == 1
    ]
    assert others == [], "a step of another control runs"


@pytest.mark.ansible
def test_the_node_name_notice_runs_with_casemate_s_selection(tmp_path: Path) -> None:
    """cis_k8s_4_2_7 is check-only: casemate never passes its tag, so its notice must ride on the
    kubelet controls casemate does select."""
    entries = select(load_catalog(None, builtin_kinds()), Selection(level=1))
    tags = [e.id for e in entries if e.control.remediation is not None]
    assert "cis_k8s_4_2_7" not in tags
    names = [name for role, name, _ in listed(tmp_path, tags) if role == "kube_kubelet"]
    assert any(name.startswith("Say that an overridden node name is left alone") for name in names)
