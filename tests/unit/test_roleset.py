"""A run of a subset of controls plays only the roles they need (casemate/roleset.py): every
control maps to roles the playbook plays, the facts one role reads from another are declared
(FACT_READS) exactly as the roles read them, and Ansible, given the run's --skip-tags, lists no
task of any other role while the needed role keeps its preflight and the snapshot and record
plays stay."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate import cli, roleset
from casemate.catalog.loader import Catalog, load_catalog
from casemate.checks import builtin_kinds
from casemate.harden import snapshot_roles
from casemate.locations import content_root
from casemate.runner import HostStats, PlaybookOutcome

from .locks import every_host_free
from .test_waivers import inventory_file

ROOT = content_root()
PLAYBOOK = ROOT / "playbooks" / "harden.yml"
_SET_FACT = ("ansible.builtin.set_fact", "set_fact")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(None, builtin_kinds())


def tasks(
    node: Any, inherited: frozenset[str] = frozenset()
) -> Iterator[tuple[dict[str, Any], frozenset[str]]]:
    """Every task of a task file, with its tags and those of the blocks around it."""
    if isinstance(node, list):
        for item in node:
            yield from tasks(item, inherited)
    elif isinstance(node, dict):
        tags = inherited | frozenset(node.get("tags") or ())
        if any(k in node for k in ("block", "rescue", "always")):
            for key in ("block", "rescue", "always"):
                yield from tasks(node.get(key), tags)
        else:
            yield node, tags


def set_by(role: str) -> dict[str, set[str]]:
    """The facts a role's tasks set (set_fact, register), each with the tags of those tasks."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "roles" / role / "tasks").glob("**/*.yml")):
        for task, tags in tasks(yaml.safe_load(path.read_text())):
            names = [str(task["register"])] if "register" in task else []
            for module in _SET_FACT:
                if isinstance(task.get(module), dict):
                    names += [k for k in task[module] if k != "cacheable"]
            for name in names:
                found.setdefault(name, set()).update(tags)
    return found


def role_text(role: str) -> str:
    """What a role's tasks, defaults, vars and templates say (where it reads variables)."""
    parts = ("tasks", "defaults", "vars", "templates", "handlers")
    return "\n".join(
        p.read_text()
        for part in parts
        for p in sorted((ROOT / "roles" / role / part).glob("**/*"))
        if p.is_file()
    )


def test_every_remediated_control_maps_to_roles_the_playbook_plays(catalog: Catalog) -> None:
    played = set(roleset.playbook_roles(PLAYBOOK))
    for entry in catalog.entries:
        roles = roleset.fix_roles([entry])
        assert roles <= played, (entry.id, roles - played)
        for role in roles:
            assert (ROOT / "roles" / role / "tasks" / "main.yml").is_file(), (entry.id, role)


def test_every_role_the_playbook_plays_carries_its_role_tag() -> None:
    """--skip-tags casemate_role_X leaves out role X whole only if the playbook tags it so."""
    plays = yaml.safe_load(PLAYBOOK.read_text())
    entries = [r for p in plays for r in p.get("roles") or []]
    assert entries
    for entry in entries:
        assert f"{roleset.ROLE_TAG}{entry['role']}" in entry.get("tags", []), entry


def test_the_declared_fact_reads_are_exactly_what_the_roles_read() -> None:
    """Every fact a role the playbook plays sets and another role reads (declared: FACT_READS),
    and the tags under which it is set: no read left undeclared, none declared that is gone."""
    played = roleset.playbook_roles(PLAYBOOK)
    setters = {role: set_by(role) for role in played}
    found: dict[tuple[str, str, str], set[str]] = {}
    for reader in sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir()):
        text = role_text(reader)
        for setter, facts in setters.items():
            if setter == reader:
                continue
            for fact, tags in facts.items():
                if re.search(rf"(?<![\w.]){re.escape(fact)}\b(?!\s*:)", text):  # a key is no read
                    found[(reader, fact, setter)] = tags
    declared = {(r.reader, r.fact, r.setter): set(r.tags) for r in roleset.FACT_READS}
    assert found == declared


def test_a_run_needs_the_roles_of_its_controls_and_the_setters_of_what_they_read(
    catalog: Catalog,
) -> None:
    entries = catalog.entries
    assert roleset.needed(entries, ["cis_docker_2_2"]) == ["docker_daemon"]
    assert roleset.needed(entries, ["cis_docker_2_2", "cm_host_1_4"]) == ["docker_daemon", "sshd"]
    # docker_daemon reads what gvisor sets for cm_rt_1_2: gvisor runs with it
    assert roleset.needed(entries, ["cm_rt_1_2"]) == ["docker_daemon", "gvisor"]
    # the dependency by itself, whatever the catalog's `also` says
    read = roleset.FactRead("docker_daemon", "x_fact", "sysctl", ("cis_docker_2_2",))
    assert roleset.needed(entries, ["cis_docker_2_2"], [read]) == ["docker_daemon", "sysctl"]
    always = roleset.FactRead("sysctl", "y_fact", "apparmor", ("always",))
    assert roleset.needed(entries, ["cis_docker_2_2"], [read, always]) == [
        "apparmor",
        "docker_daemon",
        "sysctl",
    ]
    assert roleset.needed(entries, ["cm_host_1_4"], [read]) == ["sshd"]


def test_skip_tags_name_every_played_role_but_the_needed_ones() -> None:
    played = roleset.playbook_roles(PLAYBOOK)
    assert played[0] == "sshd" and "host_baseline" in played and len(played) == len(set(played))
    skip = roleset.skipped(played, ["docker_daemon"])
    assert "casemate_role_docker_daemon" not in skip
    assert len(skip) == len(played) - 1
    assert roleset.skipped(played, played) == []


def listed(tags: str, skip: list[str]) -> list[str]:
    """The `role : task` lines ansible-playbook --list-tasks gives for harden.yml."""
    env = os.environ | {"ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_NOCOLOR": "1"}
    args = ["--tags", tags, *(["--skip-tags", ",".join(skip)] if skip else [])]
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--list-tasks",
            "-i",
            str(ROOT / "inventories" / "example" / "hosts.yml"),
            str(PLAYBOOK),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return [ln.strip() for ln in done.stdout.splitlines() if " : " in ln]


@pytest.mark.ansible
def test_a_subset_run_lists_no_task_of_a_role_it_does_not_need(catalog: Catalog) -> None:
    """A run of cis_docker_2_2 alone: docker_daemon with its preflight (`always`), the snapshot
    and record plays; not one task (argument validation, always-run preflight) of sshd, gvisor,
    seccomp, docker_files, auditd_rules, sysctl, host_baseline or any other role."""
    played = roleset.playbook_roles(PLAYBOOK)
    skip = roleset.skipped(played, roleset.needed(catalog.entries, ["cis_docker_2_2"]))
    lines = listed("cis_docker_2_2", skip)
    roles = {ln.split(" : ", 1)[0] for ln in lines}
    assert roles == {"docker_daemon", "casemate_rollback", "kube_node"}, roles
    assert any("docker_daemon : Preflight" in ln for ln in lines)
    # the include of the notices and the write-and-apply steps (its own steps carry the controls'
    # tags: tests/unit/test_tag_selection.py)
    assert any(ln.startswith("docker_daemon : Say what this run leaves, and write") for ln in lines)
    assert any("Snapshot the files this run may change" in ln for ln in lines)
    assert any("Record what this run changed" in ln for ln in lines)
    # a full harden skips nothing: every role's steps are listed as before
    every = {ln.split(" : ", 1)[0] for ln in listed("cis_docker_2_2", [])}
    assert {"sshd", "gvisor", "seccomp", "docker_files", "sysctl", "host_baseline"} <= every


def harden_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The run_playbook calls of one `casemate harden` (faked: no host), and its run.json."""
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> PlaybookOutcome:
        calls.append(kwargs)
        return PlaybookOutcome("successful", 0, {h: HostStats(ok=1) for h in kwargs["hosts"]})

    monkeypatch.setattr("casemate.harden.run_playbook", fake)
    monkeypatch.setattr("casemate.hostlock.acquire", every_host_free)
    monkeypatch.setattr("casemate.hostlock.release", lambda *a, **k: {})
    state = tmp_path / "s"
    argv = ["--state-dir", str(state), "harden", "-i", str(inventory_file(tmp_path)), *args]
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code in (0, None)
    (run,) = (state / "runs").glob("*-harden-*")
    return calls, json.loads((run / "run.json").read_text())


@pytest.mark.ansible
def test_harden_of_named_controls_skips_every_role_they_do_not_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls, meta = harden_calls(tmp_path, monkeypatch, "--controls", "cis_docker_2_2")
    (call,) = calls
    played = roleset.playbook_roles(PLAYBOOK)
    assert call["skip_tags"] == [f"casemate_role_{r}" for r in played if r != "docker_daemon"]
    # the snapshot covers the paths of the roles that run
    assert call["extravars"]["casemate_rollback_roles"] == ["docker_daemon"]
    assert meta["roles_played"] == [{"hosts": ["node-1", "node-2"], "roles": ["docker_daemon"]}]


@pytest.mark.ansible
def test_a_full_harden_skips_no_role(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls, meta = harden_calls(tmp_path, monkeypatch)
    (call,) = calls
    assert call["skip_tags"] == []
    assert call["extravars"]["casemate_rollback_roles"] == snapshot_roles(
        [e for e in load_catalog(None, builtin_kinds()).entries if e.id in call["tags"]]
    )
    assert "roles_played" not in meta
