"""A harden or drift run plays playbooks/harden.yml trimmed to the plays its hosts match and the
roles its controls need (roleset.trimmed): ansible-playbook parses every role of every play before
its first task, so what is left out is parse time saved. The trimmed playbook must run exactly the
tasks the whole one runs with the same --limit, --tags and --skip-tags: ansible-playbook itself
lists both here, on the real roles."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate import roleset
from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.harden import PLAYBOOK, names_of
from casemate.inventory import Inventory

ROOT = Path(__file__).resolve().parents[2]
WHOLE = ROOT / "playbooks" / PLAYBOOK
K8S_ROLES = {"etcd", "kube_control_plane", "kube_policies", "kube_kubelet"}

INVENTORY = {
    "all": {
        "children": {
            "docker_hosts": {"hosts": {"d1": {"ansible_connection": "community.docker.docker"}}},
            "k8s_control_plane": {"hosts": {"k1": {"ansible_connection": "local"}}},
            "etcd": {"hosts": {"k1": {}}},
        }
    }
}
RAW = {  # what ansible-inventory --list says of INVENTORY
    "_meta": {"hostvars": {"d1": {}, "k1": {}}},
    "all": {"children": ["ungrouped", "docker_hosts", "k8s_control_plane", "etcd"]},
    "docker_hosts": {"hosts": ["d1"]},
    "k8s_control_plane": {"hosts": ["k1"]},
    "etcd": {"hosts": ["k1"]},
}


def plays() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = yaml.safe_load(WHOLE.read_text())
    return found


def played_roles(kept: list[dict[str, Any]]) -> set[str]:
    return {str(r["role"]) for p in kept for r in p.get("roles") or []}


def test_a_docker_host_run_leaves_out_every_kubernetes_play() -> None:
    inv = Inventory(Path("inv.yml"), RAW)
    kept = roleset.trimmed(plays(), names_of(inv, ["d1"]), None)
    assert not played_roles(kept) & K8S_ROLES
    assert "docker_daemon" in played_roles(kept)
    names = [p["name"] for p in kept]
    assert names[0] == "Snapshot the files this run may change"
    assert names[-1] == "Record what this run changed"
    assert "Fail the hosts where a Kubernetes component was skipped" not in names


def test_a_kubernetes_host_run_keeps_its_plays_and_leaves_out_docker() -> None:
    inv = Inventory(Path("inv.yml"), RAW)
    kept = roleset.trimmed(plays(), names_of(inv, ["k1"]), None)
    assert played_roles(kept) >= K8S_ROLES
    assert "docker_daemon" not in played_roles(kept)
    assert kept[-1]["name"] == "Fail the hosts where a Kubernetes component was skipped"


def test_a_subset_keeps_only_its_roles_and_every_task_play() -> None:
    inv = Inventory(Path("inv.yml"), RAW)
    kept = roleset.trimmed(plays(), names_of(inv, ["d1", "k1"]), ["docker_daemon"])
    assert played_roles(kept) == {"docker_daemon"}
    assert [p["name"] for p in kept] == [
        "Snapshot the files this run may change",
        "Harden Docker hosts (CIS Docker Benchmark 1.6.0)",
        "Record what this run changed",
        "Fail the hosts where a Kubernetes component was skipped",
    ]


@pytest.mark.parametrize("pattern", ["all", "docker*", "etcd:&k8s_workers", "!etcd", ["x", "*"]])
def test_a_host_pattern_casemate_cannot_judge_is_kept(pattern: object) -> None:
    play = {"name": "p", "hosts": pattern, "tasks": [{"name": "t"}]}
    assert roleset.trimmed([play], {"nothing"}, None) == [play]


# `--list-hosts --list-tasks`: per play, its header, how many hosts it matched and its tasks
_PLAY = re.compile(r"^  play #\d+ \((?P<pattern>.*)\): (?P<name>.*?)\tTAGS:")
_HOSTS = re.compile(r"^    hosts \((?P<n>\d+)\):")
_TASK = re.compile(r"^      (?P<task>\S.*\tTAGS: .*)$")


def listed(playbook: Path, inventory: Path, limit: str, tags: list[str], skip: list[str]) -> Any:
    """Each play ansible-playbook would play on `limit` with its tasks, as ansible-playbook lists
    them: a play that matched no host, or has no task left to run (every role skipped by tag;
    the plays gather no facts), does nothing."""
    argv = ["-i", str(inventory), "--limit", limit, "--list-hosts", "--list-tasks", str(playbook)]
    argv += [f"--tags={','.join(tags)}"] if tags else []
    argv += [f"--skip-tags={','.join(skip)}"] if skip else []
    env = os.environ | {"ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_NOCOLOR": "True"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), *argv],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    out: list[dict[str, Any]] = []
    for line in done.stdout.splitlines():
        if m := _PLAY.match(line):
            out.append({"name": m["name"], "pattern": m["pattern"], "hosts": 0, "tasks": []})
        elif m := _HOSTS.match(line):
            out[-1]["hosts"] = int(m["n"])
        elif m := _TASK.match(line):
            out[-1]["tasks"].append(m["task"])
    return [p for p in out if p["hosts"] and p["tasks"]]


def without_argument_checks(listing: Any) -> Any:
    """A listing without the tasks that validate roles' arguments: Ansible's one per role, or
    the trimmed playbook's one per play (roleset.validated_once)."""
    return [p | {"tasks": [t for t in p["tasks"] if not is_argument_check(t)]} for p in listing]


def is_argument_check(task: str) -> bool:
    return any(x in task for x in ("Validating arguments against arg spec", roleset.VALIDATE_TASK))


CASES = {
    "docker-full": (["d1"], [], None),
    "docker-one-control": (["d1"], ["cis_docker_2_2"], "subset"),
    "kubernetes-full": (["k1"], [], None),
    "kubernetes-one-control": (["k1"], ["cis_k8s_1_2_1"], "subset"),
}


@pytest.mark.ansible
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_trimmed_playbook_runs_the_tasks_the_whole_one_runs(tmp_path: Path, case: str) -> None:
    hosts, tags, subset = CASES[case]
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump(INVENTORY))
    catalog = load_catalog(None, builtin_kinds())
    roles = roleset.needed(list(catalog.entries), tags) if subset else None
    assert roles is None or roles  # a subset names its roles
    skip = roleset.skipped(roleset.playbook_roles(WHOLE), roles) if roles is not None else []
    names = names_of(Inventory(inventory, RAW), hosts)
    trimmed = roleset.write_trimmed(WHOLE, tmp_path / "trimmed.yml", names, roles)
    limit = ",".join(hosts)
    whole = listed(WHOLE, inventory, limit, tags, skip)
    played = listed(trimmed, inventory, limit, tags, skip)
    # each role's own argument check is one check per play in the trimmed playbook
    # (tests/unit/test_role_arguments_once.py): every other task is the same, in the same order
    assert without_argument_checks(played) == without_argument_checks(whole)
    assert any(p["tasks"] for p in whole)
    left_out = {p["name"] for p in plays()} - {
        p["name"] for p in yaml.safe_load(trimmed.read_text())
    }
    assert left_out  # something was trimmed: it is not parsed
