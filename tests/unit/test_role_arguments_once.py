"""A harden plays its roles' argument checks once per play, not once per role: Ansible puts a
`validate_argument_spec` task before every role with an argument spec, and each costs controller
CPU on every host (roleset.validated_once). The check itself is kept: a bad role variable still
fails the host before any of its tasks. ansible-playbook itself lists and plays the trimmed
playbook here, on the real roles; the one host is a Docker container that does not exist, so
nothing on this machine is touched (the argument check needs no connection)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from casemate import roleset
from casemate.harden import PLAYBOOK

ROOT = Path(__file__).resolve().parents[2]
WHOLE = ROOT / "playbooks" / PLAYBOOK
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
# roleset.VALIDATE_TASK, spelt out: the same test runs on a tree without it
ONE_CHECK = "Preflight | Validate the arguments of the roles of this play"
NOWHERE = "casemate-start2-no-such-container"
GROUPS = {
    "docker": ("docker_hosts",),
    "kubernetes": ("k8s_control_plane", "etcd"),
}


def inventory(tmp_path: Path, groups: tuple[str, ...]) -> Path:
    host = {NOWHERE: {"ansible_connection": "community.docker.docker"}}
    doc = {"all": {"children": {g: {"hosts": host} for g in groups}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def playbook(tmp_path: Path, groups: tuple[str, ...]) -> Path:
    return roleset.write_trimmed(WHOLE, tmp_path / "trimmed.yml", {NOWHERE, *groups}, None)


def ansible_playbook(*argv: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_NOCOLOR": "True"}
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, *argv], capture_output=True, text=True, check=False, env=env
    )


def argument_checks(listing: str) -> list[list[str]]:
    """Per play of `ansible-playbook --list-tasks`, the tasks that check the arguments of the
    roles the playbook plays (a role's dependencies keep Ansible's own check: kube_node's)."""
    played = roleset.playbook_roles(WHOLE)
    plays: list[list[str]] = []
    for line in listing.splitlines():
        task = line.strip()
        role = task.split(" : ", 1)[0] if " : " in task else ""
        if line.startswith("  play #"):
            plays.append([])
        elif task.startswith(ONE_CHECK) or (
            role in played and "Validating arguments against arg spec" in task
        ):
            plays[-1].append(task)
    return plays


@pytest.mark.ansible
@pytest.mark.parametrize("kind", sorted(GROUPS))
def test_each_play_checks_its_roles_arguments_in_one_task(tmp_path: Path, kind: str) -> None:
    groups = GROUPS[kind]
    inv = inventory(tmp_path, groups)
    done = ansible_playbook("-i", str(inv), "--list-tasks", str(playbook(tmp_path, groups)))
    assert done.returncode == 0, done.stderr
    checks = argument_checks(done.stdout)
    assert any(checks), done.stdout
    assert all(len(found) <= 1 for found in checks), checks
    whole = ansible_playbook("-i", str(inv), "--list-tasks", str(WHOLE))
    assert sum(map(len, argument_checks(whole.stdout))) > sum(map(len, checks))


BAD = {  # a role of each kind of play, one of its variables and a value its spec refuses
    "docker": ("docker_daemon", "docker_daemon_icc", "not-a-bool"),
    "kubernetes": ("kube_kubelet", "kube_kubelet_read_only_port", "not-a-number"),
}


@pytest.mark.ansible
@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_bad_role_variable_still_fails_the_host_before_its_tasks(
    tmp_path: Path, kind: str
) -> None:
    groups = GROUPS[kind]
    role, name, value = BAD[kind]
    inv = inventory(tmp_path, groups)
    # as a run of that role's controls plays it: the trimmed playbook of that role alone
    trimmed = roleset.write_trimmed(WHOLE, tmp_path / "one.yml", {NOWHERE, *groups}, [role])
    done = ansible_playbook("-i", str(inv), "-e", f"{name}={value}", str(trimmed))
    assert done.returncode != 0
    assert "Validation of arguments failed" in done.stdout, done.stdout
    assert name in done.stdout
    assert "UNREACHABLE" not in done.stdout  # failed before any task reached for the host
    good = ansible_playbook("-i", str(inv), "-e", f"{name}=0", str(trimmed))
    assert "Validation of arguments failed" not in good.stdout, good.stdout
