"""The apparmor role's one read: a host whose packages are installed and whose profile file holds
what the role writes calls no package manager and reads no file again."""

from __future__ import annotations

import importlib.util
import itertools
import os
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from casemate.locations import content_root

ROLE = content_root() / "roles" / "apparmor"


def _facts() -> Any:
    path = ROLE / "library" / "apparmor_facts.py"
    spec = importlib.util.spec_from_file_location("casemate_test_apparmor_facts", path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_installed_packages_are_not_installed_again_and_unknown_ones_are() -> None:
    states = {"apparmor": {"installed": True}, "apparmor-utils": {"installed": False}}
    missing = _facts().missing_packages(
        ["apparmor", "apparmor-utils", "apparmor=3.0"], lambda n: states.get(n, {"error": "?"})
    )
    assert missing == ["apparmor-utils", "apparmor=3.0"]


def test_the_profile_is_the_same_only_when_the_file_holds_it_byte_for_byte(tmp_path: Path) -> None:
    facts = _facts()
    profile = tmp_path / "casemate-container"
    profile.write_text("profile casemate-container {\n}\n")
    assert facts.same_content(str(profile), "profile casemate-container {\n}\n")
    assert not facts.same_content(str(profile), "profile casemate-container {\n}")
    assert not facts.same_content(str(tmp_path / "absent"), "")
    assert not facts.same_content(None, "x")


def test_a_compliant_host_costs_the_role_its_read_and_no_package_call() -> None:
    main = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    steps = yaml.safe_load((ROLE / "tasks" / "apply.yml").read_text())
    modules = {k for t in main + steps for k in t if "." in k or k.endswith("_facts")}
    assert "ansible.builtin.slurp" not in modules  # the facts module compares the profile
    (install,) = [t for t in steps if "ansible.builtin.package" in t]
    assert install["when"] == "apparmor_found.install"
    installed = {"debian_family": True, "missing_packages": [], "packages_dry_run": False}
    plan = _facts().decide({**OLD_STATE, **installed}, ["cm_rt_3_1"], False)
    assert not plan["install"] and not plan["act"]


def test_the_profile_is_current_only_with_its_content_and_root_0644(tmp_path: Path) -> None:
    facts = _facts()
    profile = tmp_path / "casemate-container"
    profile.write_text("profile casemate-container {\n}\n")
    profile.chmod(0o644)
    assert facts.written_as_the_role_writes(str(profile)) == (os.geteuid() == 0)
    profile.chmod(0o664)
    assert not facts.written_as_the_role_writes(str(profile))
    assert not facts.written_as_the_role_writes(str(tmp_path / "absent"))
    (tmp_path / "link").symlink_to(profile)
    assert not facts.written_as_the_role_writes(str(tmp_path / "link"))


def test_a_host_whose_profile_is_current_skips_the_write_and_load_as_one_task() -> None:
    steps = yaml.safe_load((ROLE / "tasks" / "apply.yml").read_text())
    (profile,) = [s for s in steps if "ansible.builtin.include_tasks" in s]
    assert profile["ansible.builtin.include_tasks"] == "profile.yml"
    assert profile["when"] == "apparmor_found.profile"
    assert set(profile["tags"]) == {"cm_rt_3_2", "cm_rt_3_3"}
    included = yaml.safe_load((ROLE / "tasks" / "profile.yml").read_text())
    modules = {k for t in included for k in t if "." in k}
    assert "ansible.builtin.template" in modules  # what the include writes, tagged as before
    assert all(t.get("tags") for t in included)


# The conditions of the former layout's steps (main at 91ec670), each under its tags: the facts
# module's decide must take the same steps for every state and selection.
OLD_STATE: dict[str, Any] = {
    "debian_family": True,
    "container": "docker",
    "kernel_enabled": False,
    "loaded": False,
    "packages_dry_run": False,
    "missing_packages": [],
    "profile_current": True,
}
OLD_STEPS = {
    "not_debian": (["always"], "not apparmor_found.debian_family"),
    "install": (
        ["cm_rt_3_1"],
        "apparmor_found.debian_family and apparmor_found.missing_packages | length > 0"
        " and (not ansible_check_mode or apparmor_found.packages_dry_run)",
    ),
    "profile": (
        ["cm_rt_3_2", "cm_rt_3_3"],
        "apparmor_found.debian_family and (not apparmor_found.profile_current"
        " or (not apparmor_found.loaded and apparmor_found.kernel_enabled"
        " and apparmor_found.container | length == 0))",
    ),
    "not_loaded": (
        ["cm_rt_3_3"],
        "apparmor_found.debian_family and (apparmor_found.container | length > 0"
        " or not apparmor_found.kernel_enabled)",
    ),
}


def _old(state: dict[str, Any], selected: list[str], check_mode: bool) -> set[str]:
    jinja = jinja2.Environment()
    env = {"apparmor_found": state, "ansible_check_mode": check_mode}
    taken = set()
    for step, (tags, when) in OLD_STEPS.items():
        runs = "always" in tags or set(tags) & set(selected)
        if runs and jinja.from_string("{{ " + when + " }}").render(env) == "True":
            taken.add(step)
    return taken


def _states() -> list[dict[str, Any]]:
    keys = ["debian_family", "container", "kernel_enabled", "loaded", "packages_dry_run"]
    values = {"container": ["", "docker"]}
    out = []
    for combo in itertools.product(*[values.get(k, [False, True]) for k in keys]):
        for missing, current in itertools.product([[], ["apparmor"]], [False, True]):
            out.append(
                dict(
                    zip(keys, combo, strict=True), missing_packages=missing, profile_current=current
                )
            )
    return out


@pytest.mark.parametrize(
    "selected", [["cm_rt_3_1", "cm_rt_3_2", "cm_rt_3_3"], ["cm_rt_3_1"], ["cm_rt_3_2"], []]
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_decide_takes_the_steps_the_former_layout_took(
    selected: list[str], check_mode: bool
) -> None:
    facts = _facts()
    for state in _states():
        old = _old(state, selected, check_mode)
        plan = facts.decide(state, selected, check_mode)
        assert plan["install"] == ("install" in old), state
        assert plan["profile"] == ("profile" in old), state
        said = " ".join(plan["notes"])
        assert ("not a Debian or Ubuntu host" in said) == ("not_debian" in old), state
        assert ("not loaded" in said) == ("not_loaded" in old), state
        # a compliant host has nothing to do: no step, and nothing said but as data
        assert plan["act"] == bool(old - {"not_loaded"}), state
