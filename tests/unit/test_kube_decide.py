"""kube_control_plane_decide and etcd_decide judge on the controller what the role's own tasks
judged on the node before (issue 16): a manifest read from its whole text is what the editor's
read task returned, and the API server's checksum annotations are the ones vars/main.yml computes
from what the write steps return. Real Ansible runs the old tasks on this machine, against files
under pytest's temporary directory only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from .test_kube_manifest import _load, km

ROOT = content_root()
FIXTURES = Path(__file__).parent.parent / "fixtures" / "k8s"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
decide = _load(
    ROOT / "roles" / "kube_control_plane" / "action_plugins" / "kube_control_plane_decide.py",
    "kube_control_plane_decide_action",
)

# manifests as a node may hold them: kubeadm's, edited, and broken in the ways the editor reports
MANIFESTS = {
    "apiserver.yaml": (FIXTURES / "kube-apiserver.yaml").read_text(),
    "scheduler.yaml": (FIXTURES / "kube-scheduler.yaml").read_text(),
    "etcd.yaml": (FIXTURES / "etcd.yaml").read_text(),
    "crlf.yaml": (FIXTURES / "kube-scheduler.yaml").read_text().replace("\n", "\r\n"),
    "not-yaml.yaml": "apiVersion: v1\nkind: Pod\nspec: [\n",
    "two-docs.yaml": "apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Pod\n",
    "no-command.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: x\n",
    "configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    "empty.yaml": "",
}


def play(tmp_path: Path, tasks: list[dict[str, Any]], out: str) -> dict[str, Any]:
    """Run `tasks` on this machine; the value of the variable `out` afterwards."""
    dump = tmp_path / "out.json"
    tasks = [
        *tasks,
        {"ansible.builtin.copy": {"content": f"{{{{ {out} | to_json }}}}", "dest": str(dump)}},
    ]
    (tmp_path / "play.yml").write_text(
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])
    )
    env = os.environ | {
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_LIBRARY": str(ROOT / "roles" / "kube_node" / "library"),
        "ANSIBLE_ACTION_PLUGINS": str(ROOT / "roles" / "kube_node" / "action_plugins"),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
    }
    done = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", "play.yml"],
        cwd=tmp_path, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(dump.read_text())  # type: ignore[no-any-return]


# what a looped task result holds besides the module's own, and the file mode (the plan never read it)
LOOP_AND_MODE = {
    "item",
    "ansible_loop_var",
    "_ansible_item_label",
    "_ansible_no_log",
    "failed",
    "previous_mode",
}


@pytest.mark.ansible
def test_a_manifest_read_whole_is_what_the_editors_read_task_returned(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    for name, text in MANIFESTS.items():
        (files / name).write_bytes(text.encode())
    names = [*MANIFESTS, "missing.yaml"]
    # the read task the roles ran before (etcd's, and kube_control_plane's for each manifest)
    read = {
        "name": "Read",
        "kube_manifest": {
            "path": f"{files}/{{{{ item }}}}",
            "backup_dir": str(tmp_path / "backup"),
            "if_broken": "report",
        },
        "loop": names,
        "register": "old",
    }
    old = play(tmp_path, [read], "old.results")
    assert len(old) == len(names)
    for name, result in zip(names, old, strict=True):
        path = str(files / name)
        text = MANIFESTS.get(name)
        new = km.read_result(path, {"exists": text is not None, "text": text})
        assert new == {k: v for k, v in result.items() if k not in LOOP_AND_MODE}, name
    # and what the node read gives for each: the reader the decide actions call
    readers = ROOT / "roles" / "host_common" / "module_utils" / "casemate_host.py"
    host = _load(readers, "casemate_host_for_decide")
    for name, text in MANIFESTS.items():
        assert host.exact_text(str(files / name)) == {"exists": True, "text": text}
    assert host.exact_text(str(files / "missing.yaml")) == {"exists": False, "text": None}
    assert host.exact_text(str(files)) == {"exists": True, "text": None}


def test_a_missing_control_plane_manifest_is_a_skipped_read() -> None:
    # kube_control_plane read a manifest only where it existed (`when: exists`)
    assert decide.read_result(km, "/x.yaml", {"exists": False, "text": None}) == {
        "skipped": True,
        "changed": False,
    }


WRITTEN = [  # what the write steps returned (checksum only where the step ran), and the settings
    ({"authentication": "a" * 64, "admission": "b" * 64, "event_rate_limit": "c" * 64,
      "audit_policy": "d" * 64}, True, "e" * 64),
    ({"admission": "b" * 64, "event_rate_limit": "c" * 64}, True, ""),
    ({"admission": "b" * 64}, False, "f" * 64),
    ({"audit_policy": "0123456789abcdef" * 4}, True, ""),
    ({}, True, ""),
]  # fmt: skip


@pytest.mark.ansible
def test_the_annotations_are_the_ones_vars_main_gives_from_the_writes(tmp_path: Path) -> None:
    role_vars = yaml.safe_load(
        (ROOT / "roles" / "kube_control_plane" / "vars" / "main.yml").read_text()
    )
    tasks = []
    for n, (checksums, rate_limit, fingerprint) in enumerate(WRITTEN):

        def ran(name: str, c: dict[str, str] = checksums) -> dict[str, Any]:
            return {"checksum": c[name]} if name in c else {"skipped": True}

        variables = {
            "kube_control_plane_written": role_vars["kube_control_plane_written"],
            "kube_control_plane_event_rate_limit": rate_limit,
            "kube_control_plane_authn_written": ran("authentication"),
            "kube_control_plane_admission_written": ran("admission"),
            "kube_control_plane_events_written": ran("event_rate_limit"),
            "kube_control_plane_audit_written": ran("audit_policy"),
            "kube_control_plane_encryption": {"fingerprint": fingerprint}
            if fingerprint
            else {"skipped": True},
        }
        tasks.append({
            "ansible.builtin.set_fact": {f"case{n}": role_vars["kube_control_plane_annotations"]},
            "vars": variables,
        })  # fmt: skip
    out = "[" + ", ".join(f"case{n}" for n in range(len(WRITTEN))) + "]"
    tasks.append({"ansible.builtin.set_fact": {"all_cases": f"{{{{ {out} }}}}"}})
    expected = play(tmp_path, tasks, "all_cases")
    for (checksums, rate_limit, fingerprint), want in zip(WRITTEN, expected, strict=True):
        assert decide.annotations(checksums, rate_limit, fingerprint) == want
    assert expected[0] and expected[-1] == {}  # the cases differ: the comparison can fail
