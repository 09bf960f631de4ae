"""The apparmor role's one read: a host whose packages are installed and whose profile file holds
what the role writes calls no package manager and reads no file again."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

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
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    steps = [t for t in tasks if "block" not in t] + [
        s for t in tasks if "block" in t for s in t["block"]
    ]
    modules = {k for t in steps for k in t if "." in k or k.endswith("_facts")}
    assert "ansible.builtin.slurp" not in modules  # the facts module compares the profile
    (install,) = [t for t in steps if "ansible.builtin.package" in t]
    assert "apparmor_found.missing_packages | length > 0" in install["when"]


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
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    steps = [s for t in tasks if "block" in t for s in t["block"]]
    (profile,) = [s for s in steps if "ansible.builtin.include_tasks" in s]
    assert profile["ansible.builtin.include_tasks"] == "profile.yml"
    assert "not apparmor_found.profile_current" in profile["when"]
    assert set(profile["tags"]) == {"cm_rt_3_2", "cm_rt_3_3"}
    included = yaml.safe_load((ROLE / "tasks" / "profile.yml").read_text())
    modules = {k for t in included for k in t if "." in k}
    assert "ansible.builtin.template" in modules  # what the include writes, tagged as before
    assert all(t.get("tags") for t in included)
