"""Catalog and roles stay in step: every remediated control has a tagged task in its role, every
variable the catalog names is a documented default, and defaults match argument_specs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.locations import content_root

ROOT = content_root()
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
CATALOG = load_catalog(None, builtin_kinds())


def role_yaml(role: str, *parts: str) -> Any:
    return yaml.safe_load((ROOT / "roles" / role).joinpath(*parts).read_text())


def task_tags(role: str) -> set[str]:
    """Every tag on every task (blocks included) of a role."""
    tags: set[str] = set()

    def walk(items: Any) -> None:
        for item in items or []:
            if not isinstance(item, dict):
                continue
            found = item.get("tags", [])
            tags.update([found] if isinstance(found, str) else found)
            for key in ("block", "rescue", "always"):
                walk(item.get(key))

    for path in (ROOT / "roles" / role / "tasks").glob("*.yml"):
        walk(yaml.safe_load(path.read_text()))
    return tags


def test_there_are_roles() -> None:
    assert {"docker_daemon", "docker_files"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_argument_specs(role: str) -> None:
    defaults = role_yaml(role, "defaults", "main.yml") or {}
    spec = role_yaml(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(defaults) == set(spec)
    for name, option in spec.items():
        assert name.startswith(f"{role}_"), f"{name} lacks the role prefix"
        assert option.get("description"), f"{name} is undocumented"
        assert option.get("type"), f"{name} has no type"


@pytest.mark.parametrize(
    "entry", [e for e in CATALOG.entries if e.control.remediation], ids=lambda e: e.id
)
def test_remediated_control_has_tagged_task_and_known_vars(entry: Any) -> None:
    role = entry.control.remediation.role
    assert role in ROLES, f"{entry.id}: role {role} does not exist"
    assert entry.id in task_tags(role), f"{entry.id}: no task in {role} carries the tag"
    defaults = role_yaml(role, "defaults", "main.yml") or {}
    for var in entry.control.remediation.vars:
        assert var in defaults, f"{entry.id}: {var} is not a default of {role}"


@pytest.mark.parametrize("role", ROLES)
def test_every_tag_is_a_control_or_always(role: str) -> None:
    known = set(CATALOG.ids()) | {"always", "never"}
    assert task_tags(role) <= known, task_tags(role) - known
