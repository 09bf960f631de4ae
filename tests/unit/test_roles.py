"""Catalog and roles stay in step: a role's tags are exactly the controls the catalog gives it,
shared steps carry the generated list of them without repeating it in their names, every variable
the catalog names is a documented default, defaults match argument_specs, and the role's own tables
(daemon.json keys, section 3 files) say what the catalog's checks judge."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.generated import tag_lists
from casemate.locations import content_root

ROOT = content_root()
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
CATALOG = load_catalog(None, builtin_kinds())
TAG_LISTS = tag_lists(ROOT, CATALOG)
UNSELECTABLE = {"always", "never"}
ID = re.compile(r"^(cis|cm)_[a-z0-9]+(_[0-9]+)+$")


def role_yaml(role: str, *parts: str) -> Any:
    return yaml.safe_load((ROOT / "roles" / role).joinpath(*parts).read_text())


def tag_list(found: Any) -> list[str]:
    return [found] if isinstance(found, str) else list(found or [])


def role_tasks(role: str) -> Iterator[tuple[Path, dict[str, Any], set[str]]]:
    """Every task and block of a role with the tags it runs under: its own, its blocks' and those
    of the import_tasks that brings its file in."""
    tasks_dir = ROOT / "roles" / role / "tasks"
    imported: dict[str, set[str]] = {}

    def walk(
        path: Path, items: Any, inherited: set[str]
    ) -> Iterator[tuple[Path, dict[str, Any], set[str]]]:
        for item in items or []:
            if not isinstance(item, dict):
                continue
            tags = inherited | set(tag_list(item.get("tags")))
            yield path, item, tags
            target = item.get("ansible.builtin.import_tasks") or item.get("import_tasks")
            if isinstance(target, str):
                imported[target] = tags
            for key in ("block", "rescue", "always"):
                yield from walk(path, item.get(key), tags)

    files = sorted(tasks_dir.glob("*.yml"), key=lambda p: p.name != "main.yml")  # main first
    for path in files:
        yield from walk(path, yaml.safe_load(path.read_text()), imported.get(path.name, set()))


def task_tags(role: str) -> set[str]:
    """Every tag on every task (blocks included) of a role."""
    return {t for _, _, tags in role_tasks(role) for t in tags}


ROLE_TAGS = {role: task_tags(role) for role in ROLES}


def catalog_ids(role: str) -> set[str]:
    """The controls the catalog gives the role: it fixes them, or takes part (`also`)."""
    return {
        e.id
        for e in CATALOG.entries
        if e.control.remediation is not None
        and role in (e.control.remediation.role, *e.control.remediation.also)
    }


def named_ids(name: str) -> set[str]:
    """The ids a task name ends with (`... | id id`, `id - id` for a range of the catalog)."""
    words = name.rsplit(" | ", 1)[-1].split() if " | " in name else []
    if not words or not all(ID.match(w) or w == "-" for w in words):
        return set()
    ids = CATALOG.ids()
    out: set[str] = set()
    for i, word in enumerate(words):
        if word == "-":
            first, last = ids.index(words[i - 1]), ids.index(words[i + 1])
            out |= set(ids[first : last + 1])
        else:
            out.add(word)
    return out


def test_there_are_roles() -> None:
    assert {"docker_daemon", "docker_files"} <= set(ROLES)


@pytest.mark.parametrize("role", ["host_common", "kube_node"])
def test_a_role_without_settings_adds_no_argument_validation_task_to_a_play(role: str) -> None:
    """Ansible adds a validation task for a role's argument spec in every play the role (or a role
    depending on it: nearly all of them) is in, and for kube_node once under each Kubernetes role
    depending on it (3 on a k8s node): for a role with no settings, a task per play and host that
    checked nothing."""
    assert not role_yaml(role, "defaults", "main.yml")
    assert not (ROOT / "roles" / role / "meta" / "argument_specs.yml").exists()


@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_argument_specs(role: str) -> None:
    defaults = role_yaml(role, "defaults", "main.yml") or {}
    if not defaults and not (ROOT / "roles" / role / "meta" / "argument_specs.yml").exists():
        return  # no settings, nothing to validate (host_common)
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
    for name in (role, *entry.control.remediation.also):
        assert name in ROLES, f"{entry.id}: role {name} does not exist"
        assert entry.id in ROLE_TAGS[name], f"{entry.id}: no task in {name} carries the tag"
    defaults = role_yaml(role, "defaults", "main.yml") or {}
    for var in entry.control.remediation.vars:
        assert var in defaults, f"{entry.id}: {var} is not a default of {role}"


@pytest.mark.parametrize("role", ROLES)
def test_every_tag_is_a_control_or_always(role: str) -> None:
    known = set(CATALOG.ids()) | UNSELECTABLE
    assert ROLE_TAGS[role] <= known, ROLE_TAGS[role] - known


@pytest.mark.parametrize("role", ROLES)
def test_role_tags_are_exactly_the_controls_the_catalog_gives_it(role: str) -> None:
    """A tag no selection can name is a step that never runs (casemate selects remediated
    controls only); a control another role fixes belongs in the catalog's `also` of it."""
    tags = ROLE_TAGS[role] - UNSELECTABLE
    assert tags == catalog_ids(role), (
        f"tagged in {role} but not given to it by the catalog: {sorted(tags - catalog_ids(role))}; "
        f"given by the catalog but tagged nowhere in it: {sorted(catalog_ids(role) - tags)}"
    )


def test_generated_tag_lists_belong_to_their_role() -> None:
    found = TAG_LISTS
    assert {t.role for t in found} >= {"docker_daemon", "docker_files", "sshd", "sysctl"}
    for t in found:
        assert t.path.relative_to(ROOT / "roles").parts[0] == t.role, t


@pytest.mark.parametrize("role", ROLES)
def test_task_names_end_with_ids_the_task_carries(role: str) -> None:
    for path, task, tags in role_tasks(role):
        name = str(task.get("name", ""))
        if "{{" in name:
            continue  # kube_node's shared steps name the ids their caller passes
        stray = named_ids(name) - tags
        assert not stray, f"{path.name}: {name!r} names {sorted(stray)} it is not tagged with"


@pytest.mark.parametrize("role", ROLES)
def test_shared_steps_do_not_repeat_their_ids_in_names(role: str) -> None:
    """A step tagged with a generated list runs for every control on it; its name says what it
    does and leaves the ids to its tags."""
    shared = [set(t.ids) for t in TAG_LISTS if t.role == role and len(t.ids) > 1]
    for path, task, tags in role_tasks(role):
        named = named_ids(str(task.get("name", "")))
        for ids in shared:
            assert not (tags == ids and named >= ids), (
                f"{path.name}: {task['name']!r} repeats its tag list"
            )


def _templar(variables: dict[str, Any]) -> Any:
    from ansible.parsing.dataloader import DataLoader  # Ansible's own templating, as a run uses it
    from ansible.template import Templar

    return Templar(loader=DataLoader(), variables=variables)


def _template(variables: dict[str, Any], expression: str) -> Any:
    import ansible.template

    trusted = getattr(ansible.template, "trust_as_template", lambda s: s)(expression)
    return _templar(variables).template(trusted)


def _resolved(value: Any, defaults: dict[str, Any]) -> Any:
    return _template(defaults, value) if isinstance(value, str) and "{{" in value else value


def _section_3_selections() -> list[tuple[str, str, str]]:
    """(control id, target name, owner|mode) of every entry of the role's docker_files_controls."""
    out = []
    controls = role_yaml("docker_files", "vars", "main.yml")["docker_files_controls"]
    for control, fixes in controls.items():
        for fix in fixes:
            target, aspect = fix.split(":")
            out.append((control, target, aspect))
    return out


def test_every_section_3_control_of_the_catalog_fixes_one_thing() -> None:
    controls = role_yaml("docker_files", "vars", "main.yml")["docker_files_controls"]
    assert set(controls) == catalog_ids("docker_files")
    assert all(len(fixes) == 1 for fixes in controls.values()), controls


@pytest.mark.parametrize("control,target,aspect", _section_3_selections(), ids=str)
def test_section_3_targets_are_the_files_and_limits_the_catalog_checks(
    control: str, target: str, aspect: str
) -> None:
    defaults = role_yaml("docker_files", "defaults", "main.yml")
    targets = role_yaml("docker_files", "vars", "main.yml")["docker_files_targets"]
    (want,) = [t for t in targets if t["name"] == target]
    entry = CATALOG.get(control)
    assert entry is not None and entry.control.check is not None
    params = entry.control.check.params
    assert entry.control.check.kind == {"owner": "file_owner", "mode": "file_mode"}[aspect]
    for where in ("path", "unit", "glob"):
        assert _resolved(want.get(where), defaults) == params.get(where), f"{control}: {where}"
    assert want.get("ref") == (params.get("ref") or {}).get("key"), f"{control}: ref"
    fields = ("owner", "group") if aspect == "owner" else ("max_mode", "mode")
    for field in fields:
        assert _resolved(want.get(field), defaults) == params.get(field), f"{control}: {field}"


def _checks(control: str) -> list[tuple[str, dict[str, Any]]]:
    """(kind, params) of a control's check, with an all_of opened up."""
    entry = CATALOG.get(control)
    assert entry is not None, control
    check = entry.control.check
    if check is None:
        return []
    if check.kind == "all_of":
        return [(c["kind"], c["params"]) for c in check.params["checks"]]
    return [(check.kind, check.params)]


def test_auditd_rules_watch_everything_the_catalog_checks() -> None:
    """Every target an audit_rule check judges is one the role watches, a binary's documented
    paths (CIS Docker's /usr/bin/dockerd, /usr/bin/runc) included."""
    role_vars = role_yaml("auditd_rules", "vars", "main.yml")
    watched = {
        (how, what if isinstance(what, str) else tuple(what))
        for table in ("auditd_rules_targets", "auditd_rules_host_targets")
        for target in role_vars[table].values()
        for how, what in target.items()
    }
    checked = {
        (how, params[how] if isinstance(params[how], str) else tuple(params[how]))
        for control in catalog_ids("auditd_rules")
        for kind, params in _checks(control)
        if kind == "audit_rule"
        for how in ("command", "path", "unit", "documented")
        if how in params
    }
    assert checked <= watched, f"checked but never watched: {sorted(checked - watched)}"
    assert ("documented", ("/usr/bin/dockerd",)) in checked


@pytest.mark.parametrize(
    "table,kind",
    [
        ("kube_control_plane_mode_specs", "file_mode"),
        ("kube_control_plane_owner_specs", "file_owner"),
    ],
)
def test_control_plane_file_specs_are_the_files_and_limits_the_catalog_checks(
    table: str, kind: str
) -> None:
    defaults = role_yaml("kube_control_plane", "defaults", "main.yml")
    specs = role_yaml("kube_control_plane", "vars", "main.yml")[table]
    assert {s["id"] for s in specs} == {
        c for c in catalog_ids("kube_control_plane") if any(k == kind for k, _ in _checks(c))
    }
    for spec in specs:
        ((got_kind, params),) = _checks(spec["id"])
        assert got_kind == kind, spec["id"]
        if "glob" in spec:
            assert _resolved(spec["glob"], defaults) == params.get("path", params.get("glob")), (
                spec["id"]
            )
        if kind == "file_mode":
            assert spec["max"] == params["max_mode"], spec["id"]
        else:
            assert (params["owner"], params["group"]) == ("root", "root"), spec["id"]
