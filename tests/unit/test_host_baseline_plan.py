"""The host_baseline role decides every control in its one facts call
(library/host_baseline_facts.py) and decides what its former layout decided: the recorded inputs
of tests/fixtures/host_baseline/plans.json (a compliant and a fresh host, every control, one tag,
a tag mix, --skip-tags, a site's own values, /tmp in fstab or in tmp.mount, and each refusal) were
run through the old role's per-control `set_fact` steps, preflight asserts and section `when`s by
real Ansible (tests/fixtures/host_baseline/record_plans.py); the login.defs keys it wanted, the
controls whose steps it did not skip and the refusal it printed were kept, and the module must
give the same. A compliant host then skips the rest of the role in one step."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from casemate.locations import content_root

from .role_modules import role_library

ROLE = content_root() / "roles" / "host_baseline"
RECORDED: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "host_baseline" / "plans.json").read_text()
)
BANNER = "Authorised access only. Activity on this system is logged and may be monitored."
F = role_library("host_baseline", "host_baseline_facts")


def role_vars(overrides: dict[str, Any]) -> dict[str, Any]:
    """defaults and vars as Ansible hands them to the facts call (the banner as it renders
    without casemate's group variables, the files' contents rendered), then the site's values."""
    env: dict[str, Any] = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    env.update(yaml.safe_load((ROLE / "vars" / "main.yml").read_text()))
    env.update(host_baseline_banner_text=BANNER)
    env.update(overrides)
    jinja = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True)
    jinja.filters["regex_escape"] = re.escape
    for name in ("limits", "coredump", "modprobe", "apt", "aide", "issue"):
        key = f"host_baseline_{name}_wanted"
        env[key] = jinja.from_string(env[key]).render(env)
    return env


def params(env: dict[str, Any], run_tags: list[str], skip_tags: list[str]) -> dict[str, Any]:
    """The facts call's arguments, as tasks/main.yml passes them."""
    return {
        "services": env["host_baseline_disabled_services"],
        "login_defs_values": env["host_baseline_login_defs"],
        "login_defs_controls": env["host_baseline_login_defs_controls"],
        "files_wanted": {
            "limits": env["host_baseline_limits_wanted"],
            "coredump": env["host_baseline_coredump_wanted"],
            "modprobe": env["host_baseline_modprobe_wanted"],
            "apt_updates": env["host_baseline_apt_wanted"],
            "aide_rules": env["host_baseline_aide_wanted"]
            if env["host_baseline_aide_rules"]
            else None,
            "issue": env["host_baseline_issue_wanted"],
        },
        "issue_files": list(env["host_baseline_issue_files"]),
        "control_packages": env["host_baseline_control_packages"],
        "control_units": env["host_baseline_control_units"],
        "unattended_upgrades": env["host_baseline_unattended_upgrades"],
        "disabled_modules": env["host_baseline_disabled_modules"],
        "protected_services": env["host_baseline_protected_services"],
        "protected_modules": env["host_baseline_protected_modules"],
        "supported_os": env["host_baseline_supported_os"],
        "faillock": {
            "admin_group": env["host_baseline_faillock_admin_group"],
            "deny": env["host_baseline_faillock_deny"],
        },
        "run_tags": run_tags,
        "skip_tags": skip_tags,
    }


def decide(inputs: dict[str, Any]) -> tuple[dict[str, Any], list[str], str, list[str]]:
    env = role_vars(inputs["vars"])
    p = params(env, inputs["run_tags"], inputs["skip_tags"])
    selected = F.selected_controls(F.CONTROLS, p["run_tags"], p["skip_tags"])
    found = inputs["found"]
    wanted = F.login_wanted(p["login_defs_values"], p["login_defs_controls"], selected)
    refused = F.refusal(p, found["os"], selected, found["connecting_user"])
    return wanted, selected, refused, F.todo(found, p, selected, True)  # recorded under --check


def acted(recorded: dict[str, Any], selected: list[str]) -> list[str]:
    """The selected controls named by the steps the old role did not skip after its facts call
    (before it, and in Preflight and Prep steps, it decided, refused or backed up), in order."""
    names = [name.split(" : ", 1)[-1] for name in recorded["acted"]]
    read = next(i for i, n in enumerate(names) if n.startswith("Preflight | Read"))
    work = [n for n in names[read + 1 :] if not n.startswith(("Preflight |", "Prep |"))]
    named = {i for name in work for i in re.findall(r"cm_host_\d+_\d+", name)}
    named |= {UNNAMED[n] for n in work if n in UNNAMED}
    return [i for i in selected if i in named]


# steps of the old role whose name carried no id
UNNAMED = {"Say what the options do not survive": "cm_host_4_4"}
DECIDED = sorted(n for n, r in RECORDED.items() if not r["old"]["refused"])
REFUSED = sorted(n for n, r in RECORDED.items() if r["old"]["refused"])


@pytest.mark.parametrize("scenario", DECIDED)
def test_the_module_acts_where_the_old_steps_acted(scenario: str) -> None:
    recorded = RECORDED[scenario]["old"]
    wanted, selected, refused, todo = decide(RECORDED[scenario]["inputs"])
    assert refused == ""
    assert wanted == recorded["login_wanted"]
    assert todo == acted(recorded, selected)


@pytest.mark.parametrize("scenario", REFUSED)
def test_a_refusal_says_what_the_old_preflight_said(scenario: str) -> None:
    _, _, refused, _ = decide(RECORDED[scenario]["inputs"])
    # the same words; the old message broke its line where its YAML template did
    assert refused == " ".join(RECORDED[scenario]["old"]["refused"][0].split())


def test_a_compliant_host_has_nothing_to_do() -> None:
    inputs = json.loads(json.dumps(RECORDED["compliant_all"]["inputs"]))
    env = role_vars({})
    for name in ("limits", "coredump"):  # as written: the state recorded lacks their last newline
        inputs["found"]["files"][name] = env[f"host_baseline_{name}_wanted"]
    assert decide(inputs)[3] == []
    inputs["run_tags"] = ["cm_host_4_13"]
    assert decide(inputs)[3] == []


def test_one_tag_wants_only_its_login_defs_key_and_acts_only_for_it() -> None:
    wanted, _, _, todo = decide(RECORDED["fresh_one_tag"]["inputs"])
    assert wanted == {"ENCRYPT_METHOD": "YESCRYPT"}
    assert todo == ["cm_host_4_5"]


def test_an_unbuilt_aide_database_is_work_only_outside_check_mode() -> None:
    """Under --check the background build is not started (the old step skipped it too); a real
    run starts it, so the role must not skip itself."""
    inputs = RECORDED["compliant_all"]["inputs"]
    env = role_vars(inputs["vars"])
    p = params(env, ["cm_host_4_22"], [])
    found = json.loads(json.dumps(inputs["found"]))
    found["aide"] = {"database": False, "building": False}
    assert F.todo(found, p, ["cm_host_4_22"], True) == []
    assert F.todo(found, p, ["cm_host_4_22"], False) == ["cm_host_4_22"]
    found["aide"]["building"] = True
    assert F.todo(found, p, ["cm_host_4_22"], False) == []


def test_the_role_is_one_decision_and_one_include() -> None:
    """No step per control on the idempotent path: main.yml is the facts call and the include
    of the steps, skipped as one when the module has nothing to do."""
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    assert tasks[0]["name"].startswith("Preflight | Read")
    assert len(tasks) == 2
    include = tasks[1]
    assert include["ansible.builtin.include_tasks"] == "apply.yml"
    assert include["when"] == "host_baseline_found.act"
    assert set(include["tags"]) == set(F.CONTROLS)
