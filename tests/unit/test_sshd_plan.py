"""The sshd role decides every control in its one facts call (library/sshd_facts.py) and decides
what its former per-control `set_fact` steps decided: the recorded inputs of
tests/fixtures/sshd/plans.json (defaults, level 1, one tag, a tag mix, --skip-tags, a site's own
values and options, profile immutable, a MaxSessions of 0) were run through those steps by real
Ansible (tests/fixtures/sshd/record_plans.py), and the options they set and owned, whether weak
host keys go and the banner text were kept; the module must give the same. A compliant host then
skips the rest of the role in one step."""

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

ROLE = content_root() / "roles" / "sshd"
RECORDED = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "sshd" / "plans.json").read_text()
)
DEFAULT_BANNER = "Authorised access only. Activity on this system is logged and may be monitored."


F = role_library("sshd", "sshd_facts")
_ONE_VAR = re.compile(r"^\{\{ (sshd_\w+) \}\}$")


def role_vars(overrides: dict[str, Any]) -> dict[str, Any]:
    """The role's knobs as Ansible hands them over: defaults (the two templated ones as they render
    without casemate's group variables), then the site's values."""
    env = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    env.update(sshd_state="hardened", sshd_banner_text=DEFAULT_BANNER)
    env.update(overrides)
    return env  # type: ignore[no-any-return]


def controls(env: dict[str, Any]) -> dict[str, Any]:
    """vars/main.yml's sshd_controls with its `{{ var }}` references resolved (all it uses)."""
    table = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["sshd_controls"]
    out: dict[str, Any] = {}
    for ident, options in table.items():
        out[ident] = {}
        for name, ref in options.items():
            whole = _ONE_VAR.match(ref)
            assert whole, f"{ident} {name}: {ref!r} is not one variable"
            out[ident][name] = env[whole.group(1)]
    return out


def decide(inputs: dict[str, Any]) -> dict[str, Any]:
    env = role_vars(inputs["vars"])
    selected = F.selected_controls(list(F.HARDENING), inputs["run_tags"], inputs["skip_tags"])
    return F.decide(  # type: ignore[no-any-return]
        env["sshd_state"],
        controls(env),
        env["sshd_extra_options"],
        env["sshd_banner_text"],
        selected,
    )


DECIDED = sorted(n for n, r in RECORDED.items() if not r["old"]["failed"])
REFUSED = sorted(n for n, r in RECORDED.items() if r["old"]["failed"])


@pytest.mark.parametrize("scenario", DECIDED)
def test_the_module_sets_what_the_per_control_steps_set(scenario: str) -> None:
    recorded = RECORDED[scenario]["old"]
    decided = decide(RECORDED[scenario]["inputs"])
    assert decided["settings"] == recorded["settings"]
    assert decided["owned"] == recorded["owned"]
    assert decided["remove_weak_keys"] == recorded["remove_weak_keys"]
    assert decided["banner_text"] == recorded["banner_text"]


@pytest.mark.parametrize("scenario", REFUSED)
def test_a_max_sessions_below_one_is_refused_with_the_same_message(scenario: str) -> None:
    inputs = RECORDED[scenario]["inputs"]
    env = role_vars(inputs["vars"])
    assert not F.max_sessions_ok(env["sshd_max_sessions"])
    tasks = yaml.safe_load((ROLE / "tasks" / "steps.yml").read_text())
    (check,) = [t for t in tasks if t["name"].startswith("Preflight | Refuse a MaxSessions")]
    said = jinja2.Environment().from_string(check["ansible.builtin.assert"]["fail_msg"]).render(env)
    assert [said] == RECORDED[scenario]["old"]["failed"]
    # and the steps holding that refusal run: the module says there is something to do
    assert F.act_of({"state": "hardened", "max_sessions": env["sshd_max_sessions"], "guard": True},
                    compliant(), ["cm_host_1_1"])  # fmt: skip


def test_one_selected_control_sets_only_its_options() -> None:
    decided = decide({"run_tags": ["cm_host_1_7"], "skip_tags": [], "vars": {}})
    assert decided == {"settings": {"LoginGraceTime": 30}, "owned": ["LoginGraceTime"],
                       "remove_weak_keys": False, "banner_text": ""}  # fmt: skip
    skipped = decide(
        {"run_tags": ["all"], "skip_tags": ["cm_host_1_7", "cm_host_1_16"], "vars": {}}
    )
    assert "LoginGraceTime" not in skipped["settings"] and "Banner" not in skipped["settings"]
    assert skipped["banner_text"] == ""


def compliant() -> dict[str, Any]:
    """What sshd_facts reports for a host whose sshd already runs casemate's file."""
    return {"os_supported": True, "installed": True, "pending": False, "reload_pending": False,
            "candidate": {"valid": True, "error": ""}, "overridden": [],
            "guard": {"ok": True}, "reached_over_ssh": True}  # fmt: skip


PARAMS = {"state": "hardened", "max_sessions": 2, "guard": True}


def test_a_compliant_host_has_nothing_left_to_do() -> None:
    assert F.act_of(PARAMS, compliant(), list(F.HARDENING)) is False
    # nothing selected of profile standard (--tags cm_host_1_19 under it): nothing to do either
    assert F.act_of(PARAMS, compliant() | {"pending": True}, []) is False


@pytest.mark.parametrize(
    ("params", "found"),
    [
        ({"state": "off"}, {}),
        ({}, {"os_supported": False}),
        ({"max_sessions": 0}, {}),
        ({"max_sessions": "none"}, {}),
        ({}, {"pending": True}),
        ({}, {"reload_pending": True}),
        ({}, {"candidate": {"valid": False, "error": "line 3: Bad configuration option"}}),
        ({}, {"overridden": ["PermitRootLogin yes (/etc/ssh/sshd_config line 1)"]}),
        ({}, {"guard": {"ok": False}}),
        ({"guard": False}, {}),
    ],
    ids=[
        "immutable",
        "os",
        "max_sessions_0",
        "max_sessions_text",
        "pending",
        "reload",
        "sshd_t",
        "overridden",
        "lockout_guard",
        "guard_off_note",
    ],
)
def test_anything_to_refuse_say_or_change_runs_the_steps(
    params: dict[str, Any], found: dict[str, Any]
) -> None:
    assert F.act_of(PARAMS | params, compliant() | found, list(F.HARDENING)) is True


def test_a_compliant_host_skips_the_role_in_one_step() -> None:
    """The idempotent path: the facts call and one skipped include; no set_fact or debug."""
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    assert [next(k for k in t if "." in k or k == "sshd_facts") for t in tasks] == [
        "sshd_facts", "ansible.builtin.include_tasks"
    ]  # fmt: skip
    assert tasks[1]["when"] == "sshd_found.act"


def test_the_module_knows_every_control_the_role_sets() -> None:
    table = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["sshd_controls"]
    assert list(table) == list(F.HARDENING)
    apply = (ROLE / "tasks" / "apply.yml").read_text()
    hardening = re.search(r"&sshd_hardening_ids\s*\[([^\]]*)\]", apply)
    assert hardening is not None
    assert [t.strip() for t in hardening.group(1).split(",")] == list(F.HARDENING)
