"""One broken file stops one component, not the host (the lab proves it on a kubeadm node,
tests/lab/test_k8s_broken_file_lab.py): the skip record and the last play that fails the host for
it, run by ansible-playbook on this machine; the broken file's mode and owner are left alone; the
playbook ends with that play on every Kubernetes host."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from casemate.locations import content_root

ROOT = content_root()
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def load_facts() -> ModuleType:
    path = ROOT / "roles" / "kube_node" / "library" / "kube_node_facts.py"
    spec = importlib.util.spec_from_file_location("casemate_test_kube_node_facts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_excluded_file_keeps_its_mode_and_owner(tmp_path: Path) -> None:
    facts = load_facts()
    broken, fine = tmp_path / "kube-scheduler.yaml", tmp_path / "kube-apiserver.yaml"
    for path in (broken, fine):
        path.write_text("x\n")
        path.chmod(0o644)
    specs = [{"id": "cis_k8s_1_1_x", "glob": str(tmp_path / "*.yaml"), "max": "0600"}]
    loose = facts.loose_modes(specs, [str(broken)])
    assert [x["path"] for x in loose] == [str(fine)]
    assert [x["path"] for x in facts.loose_modes(specs)] == sorted([str(fine), str(broken)])
    owners = [{"id": "cis_k8s_1_1_y", "glob": str(tmp_path / "*.yaml"), "owner": "nobody"}]
    assert [x["path"] for x in facts.wrong_owners(owners, [str(broken)])] == [str(fine)]


PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.import_role: {name: kube_node, tasks_from: skip}
      vars:
        kube_node_skips: %s
    - ansible.builtin.debug: {msg: "the play goes on after a skip"}
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.debug: {msg: "a later play runs too"}
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.import_role: {name: kube_node, tasks_from: skipped}
"""


def run(tmp_path: Path, skips: list[dict[str, object]]) -> subprocess.CompletedProcess[str]:
    play = tmp_path / "play.yml"
    play.write_text(PLAY % json.dumps(skips))
    env = os.environ | {
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_STDOUT_CALLBACK": "json",
    }
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-c", "local", str(play)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


@pytest.mark.ansible
def test_a_skipped_component_fails_the_host_only_at_the_end(tmp_path: Path) -> None:
    reason = "/etc/kubernetes/manifests/kube-scheduler.yaml: the current file is not valid YAML"
    done = run(
        tmp_path, [{"component": "kube-scheduler", "path": "x", "broken": True, "reason": reason}]
    )
    assert done.returncode == 2, done.stdout + done.stderr
    out = json.loads(done.stdout)
    stats = out["stats"]["localhost"]
    assert stats["failures"] == 1
    tasks = [t for play in out["plays"] for t in play["tasks"]]
    names = [t["task"]["name"] for t in tasks]
    assert "a later play runs too" in str([t["hosts"]["localhost"].get("msg") for t in tasks])
    failed = [t["hosts"]["localhost"] for t in tasks if t["hosts"]["localhost"].get("failed")]
    assert len(failed) == 1 and names[-1].endswith("Fail the host for the components it skipped")
    assert failed[0]["msg"] == f"kube-scheduler skipped, nothing changed for it: {reason}"


@pytest.mark.ansible
def test_no_skip_no_failure(tmp_path: Path) -> None:
    done = run(tmp_path, [])
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_playbook_ends_by_failing_kubernetes_hosts_with_skipped_components() -> None:
    plays = yaml.safe_load((ROOT / "playbooks" / "harden.yml").read_text())
    last = plays[-1]
    assert set(last["hosts"].split(":")) == {"k8s_control_plane", "k8s_workers", "etcd"}
    assert last["tasks"] == [
        {
            "name": "Report the skipped components",
            "ansible.builtin.import_role": {"name": "kube_node", "tasks_from": "skipped"},
        }
    ]
    report = yaml.safe_load((ROOT / "roles" / "kube_node" / "tasks" / "skipped.yml").read_text())
    assert report[0]["tags"] == ["always"]  # whatever controls --tags selects


# --- a broken etcd manifest on one member holds the next member's restart ---------------------

HOLD_PLAY = """\
- hosts: members
  gather_facts: false
  serial: 1
  max_fail_percentage: 0
  tasks:
    - ansible.builtin.import_role: {name: kube_node, tasks_from: apply_manifest}
      vars:
        kube_node_path: "%(dir)s/{{ inventory_hostname }}/etcd.yaml"
        kube_node_component: etcd
        kube_node_edit: {flags: {"--quota-backend-bytes": "8589934592"}}
        kube_node_backup_dir: "%(dir)s/backup/{{ inventory_hostname }}"
        kube_node_before: {running: false, pid: 0, start: 0, argv: []}
        kube_node_health_url: ""
        kube_node_timeout: 1
        kube_node_restore: []
        kube_node_ids: cis_k8s_2_1
        kube_node_quorum: true
- hosts: members
  gather_facts: false
  tasks:
    - ansible.builtin.import_role: {name: kube_node, tasks_from: skipped}
"""


def run_members(tmp_path: Path, manifests: dict[str, str]) -> dict[str, object]:
    for host, text in manifests.items():
        (tmp_path / host).mkdir()
        (tmp_path / host / "etcd.yaml").write_text(text)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "members": {
                    "hosts": {h: {} for h in manifests},
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                    },
                }
            }
        )
    )
    play = tmp_path / "play.yml"
    play.write_text(HOLD_PLAY % {"dir": tmp_path})
    env = os.environ | {
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_STDOUT_CALLBACK": "json",
    }
    done = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(play)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    out: dict[str, object] = json.loads(done.stdout)
    return out


def failures(out: dict[str, object]) -> dict[str, str]:
    found = {}
    for play in out["plays"]:  # type: ignore[attr-defined]
        for task in play["tasks"]:
            for host, res in task["hosts"].items():
                if res.get("failed"):
                    found[host] = res["msg"]
    return found


ETCD = (Path(__file__).parent.parent / "fixtures" / "k8s" / "etcd.yaml").read_text()


@pytest.mark.ansible
def test_a_broken_etcd_manifest_holds_the_next_members_restart(tmp_path: Path) -> None:
    out = run_members(tmp_path, {"cp1": ":\n  - [\n", "cp2": ETCD})
    failed = failures(out)
    assert set(failed) == {"cp1", "cp2"}
    assert failed["cp1"].startswith("etcd skipped, nothing changed for it: ")
    assert "not valid YAML" in failed["cp1"]
    assert "held: etcd's manifest on cp1 is broken" in failed["cp2"]
    assert (tmp_path / "cp2" / "etcd.yaml").read_text() == ETCD  # the change was only dry-run
    assert (tmp_path / "cp1" / "etcd.yaml").read_text() == ":\n  - [\n"
    assert not (tmp_path / "backup").exists()


@pytest.mark.ansible
def test_a_member_with_nothing_to_change_is_not_held(tmp_path: Path) -> None:
    compliant = ETCD.replace(
        "    - --client-cert-auth=true\n",
        "    - --client-cert-auth=true\n    - --quota-backend-bytes=8589934592\n",
    )
    out = run_members(tmp_path, {"cp1": ":\n  - [\n", "cp2": compliant})
    assert set(failures(out)) == {"cp1"}


@pytest.mark.ansible
def test_without_a_broken_member_the_change_is_made(tmp_path: Path) -> None:
    out = run_members(tmp_path, {"cp1": ETCD, "cp2": ETCD})
    assert failures(out) == {}
    for host in ("cp1", "cp2"):
        assert "--quota-backend-bytes=8589934592" in (tmp_path / host / "etcd.yaml").read_text()


@pytest.mark.ansible
def test_an_unchanged_manifest_runs_only_the_edit_step(tmp_path: Path) -> None:
    """On a no-change run a component costs one edit (which reads and judges the manifest) and
    one skipped step: the confirm, notice and skip-record steps are not evaluated one by one."""
    compliant = ETCD.replace(
        "    - --client-cert-auth=true\n",
        "    - --client-cert-auth=true\n    - --quota-backend-bytes=8589934592\n",
    )
    out = run_members(tmp_path, {"cp1": compliant})
    apply_play = out["plays"][0]  # type: ignore[index]
    tasks = [t for t in apply_play["tasks"] if "Validating arguments" not in t["task"]["name"]]
    results = [t["hosts"]["cp1"] for t in tasks]
    assert [bool(r.get("skipped")) for r in results] == [False, True]
    assert not any(r.get("changed") for r in results)
