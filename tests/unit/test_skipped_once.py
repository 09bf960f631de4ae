"""A compliant host skips a role's change steps as one include, not task by task (issue 16): the
steps each included file holds keep their controls' tags, so that selecting one control still runs
its change once the include is taken."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from casemate.locations import content_root

ROLES = content_root() / "roles"

# role, tasks file, included file -> the include's condition (a compliant host skips it)
GATES = [
    ("docker_files", "main.yml", "apply.yml", "not docker_files_found.socket_unit_ok"),
    ("docker_files", "apply.yml", "owners.yml", "docker_files_found.plan.changes | length > 0"),
    ("docker_files", "apply.yml", "socket.yml", "not docker_files_found.socket_unit_ok"),
    ("docker_probe", "main.yml", "image.yml", "docker_probe_found.version != docker_probe_version"),
    ("apparmor", "main.yml", "apply.yml", "apparmor_found.act"),
    ("apparmor", "apply.yml", "profile.yml", "apparmor_found.profile"),
    ("gvisor", "main.yml", "apply.yml", "gvisor_found.act"),
    ("sysctl", "main.yml", "apply.yml", "sysctl_found.act"),
]


def tasks_of(role: str, name: str) -> list[dict[str, Any]]:
    found = yaml.safe_load((ROLES / role / "tasks" / name).read_text())
    flat: list[dict[str, Any]] = []
    for task in found:
        flat.append(task)
        for inner in task.get("block") or []:  # a block's tags are its tasks' too
            flat.append({**inner, "tags": [*(task.get("tags") or []), *(inner.get("tags") or [])]})
    return flat


def as_list(when: Any) -> str:
    return " ".join(when) if isinstance(when, list) else str(when)


@pytest.mark.parametrize(("role", "parent", "included", "condition"), GATES)
def test_a_compliant_host_skips_the_change_steps_as_one_include(
    role: str, parent: str, included: str, condition: str
) -> None:
    (gate,) = [
        t for t in tasks_of(role, parent) if t.get("ansible.builtin.include_tasks") == included
    ]
    assert condition in as_list(gate["when"])
    steps = tasks_of(role, included)
    assert len(steps) >= 2, "an include of one task saves nothing"
    for step in steps:  # each carries a control of the include: selecting it runs the step
        assert set(gate["tags"]) & set(step.get("tags") or []), step["name"]
    assert set(gate["tags"]) <= {tag for step in steps for tag in step.get("tags") or []}


# roles whose tasks/main.yml is the one read and the one include of the change steps: a compliant
# host costs them their argument check, the read and one skipped task (issue 16)
READ_AND_ONE_INCLUDE = ["apparmor", "auditd_rules", "docker_files", "gvisor", "sysctl"]


@pytest.mark.parametrize("role", READ_AND_ONE_INCLUDE)
def test_a_compliant_host_runs_the_read_and_one_include_only(role: str) -> None:
    main = yaml.safe_load((ROLES / role / "tasks" / "main.yml").read_text())
    assert len(main) == 2, [t["name"] for t in main]
    read, gate = main
    assert read["name"].startswith("Preflight | ") and read["register"] == f"{role}_found"
    assert "always" in read["tags"]
    assert gate["ansible.builtin.include_tasks"] == "apply.yml"
    assert f"{role}_found." in as_list(gate["when"])
