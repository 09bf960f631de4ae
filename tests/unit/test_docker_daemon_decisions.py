"""docker_daemon decides every control in its one facts module call (library/docker_daemon_facts.py,
`plan`) and decides what its former per-control `set_fact` steps decided: the recorded inputs of
tests/fixtures/docker/daemon_plans.json (levels, single tags, a tag mix, flags on the dockerd
command line, TLS on a TCP socket, userns-remap, a site's own keys, log drivers, gvisor and seccomp
present or absent, SELinux hosts) were run through those steps by real Ansible, and the daemon.json
they would write, the keys they changed and every message they printed were kept; the plan must
give the same. A selection changes only what it selects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from .role_modules import role_library

ROLE = content_root() / "roles" / "docker_daemon"
RECORDED = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "docker" / "daemon_plans.json").read_text()
)
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())


FACTS = role_library("docker_daemon", "docker_daemon_facts")


def _template(variables: dict[str, Any], value: Any) -> Any:
    import ansible.template  # Ansible's own templating, as a run uses it
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    trusted = getattr(ansible.template, "trust_as_template", lambda s: s)
    if isinstance(value, dict):
        return {k: _template(variables, v) for k, v in value.items()}
    if isinstance(value, str) and "{{" in value:
        return Templar(loader=DataLoader(), variables=variables).template(trusted(value))
    return value


def role_variables(inputs: dict[str, Any]) -> dict[str, Any]:
    """The role's variables as a run resolves them: defaults, role vars, the site's values and the
    gvisor and seccomp roles' variables."""
    env = DEFAULTS | VARS | inputs["outer"] | inputs["vars"]
    resolved = {k: _template(env, v) for k, v in env.items() if k != "docker_daemon_settings"}
    return resolved | {
        "docker_daemon_settings": _template(resolved, VARS["docker_daemon_settings"])
    }


def found(inputs: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    """What the module reads before it plans, from the recorded host: daemon.json, the command
    line, the host's family; a daemon that runs daemon.json as found."""
    names = (variables["docker_daemon_flag_names"] | variables["docker_daemon_tls_flag_names"]
             | variables["docker_daemon_read_flag_names"])  # fmt: skip
    given = {}
    for key, flags in names.items():
        values = FACTS.flag_values(inputs["argv"], flags)
        if values:
            given[key] = values
    config = inputs["config"]
    log_opts = FACTS.log_opts_for(
        config, variables["docker_daemon_log_driver"], variables["docker_daemon_log_opts"],
        variables["docker_daemon_log_driver_opts"], variables["docker_daemon_log_common_opts"],
    )  # fmt: skip
    return {"config": config, "argv": inputs["argv"], "flag_keys": sorted(given),
            "flag_values": given, "selinux_host": inputs["selinux_host"], "log_opts": log_opts,
            "pending": {"apply": False, "restart": False, "why": "loaded"}, "notice": ""}  # fmt: skip


def decide(inputs: dict[str, Any]) -> dict[str, Any]:
    variables = role_variables(inputs)
    selected = FACTS.selected_controls(
        list(FACTS.CONTROLS), inputs["run_tags"], inputs["skip_tags"]
    )
    return FACTS.plan(  # type: ignore[no-any-return]
        found(inputs, variables), variables["docker_daemon_settings"], selected,
        variables["docker_daemon_reloadable_keys"],
    )  # fmt: skip


_LEFT = re.compile(r"^(?P<keys>[a-z, -]+) set by dockerd flags \(")


def _unordered(notices: list[str]) -> list[Any]:
    """The notices, the keys left to dockerd flags as a set: the former step listed them in the
    order of a Python set (Ansible's intersect)."""
    out: list[Any] = []
    for notice in notices:
        left = _LEFT.match(notice)
        out.append((set(left["keys"].split(", ")), notice[left.end() :]) if left else notice)
    return out


DECIDED = sorted(n for n, r in RECORDED.items() if r["old"]["merged"] is not None)


@pytest.mark.parametrize("scenario", DECIDED)
def test_the_plan_writes_what_the_per_control_steps_wrote(scenario: str) -> None:
    recorded = RECORDED[scenario]
    decided = decide(recorded["inputs"])
    assert decided["merged"] == recorded["old"]["merged"]
    assert decided["changed_keys"] == recorded["old"]["changed_keys"]
    assert decided["apply"] == bool(recorded["old"]["changed_keys"])
    assert decided["restart"] == recorded["old"]["restart"]


@pytest.mark.parametrize("scenario", DECIDED)
def test_the_plan_says_what_the_per_control_steps_said(scenario: str) -> None:
    recorded = RECORDED[scenario]
    decided = decide(recorded["inputs"])
    assert _unordered(decided["notices"]) == _unordered(recorded["old"]["notices"])


def test_a_skipped_control_is_left_alone() -> None:
    """The former steps never got this far: --skip-tags of any id skipped their shared merge
    step (and the write step still does, tagged with every id); the plan itself leaves exactly
    the skipped controls out."""
    inputs = RECORDED["skip_tags_level_2"]["inputs"]
    assert RECORDED["skip_tags_level_2"]["old"]["merged"] is None
    skipped = decide(inputs)
    every = decide(dict(inputs, skip_tags=[]))
    assert "userns-remap" in every["merged"] and "log-driver" in every["merged"]
    assert {k: v for k, v in every["merged"].items()
            if k not in ("userns-remap", "log-driver")} == skipped["merged"]  # fmt: skip


def test_one_selected_control_changes_only_its_key() -> None:
    inputs = RECORDED["site_override"]["inputs"]
    for control, key in (("cis_docker_2_2", "icc"), ("cis_docker_2_16", "userland-proxy"),
                         ("cis_docker_2_10", "cgroup-parent")):  # fmt: skip
        decided = decide(dict(inputs, run_tags=[control]))
        extra = set(inputs["vars"]["docker_daemon_extra_settings"])
        assert set(decided["changed_keys"]) - {"debug", "registry-mirrors"} == {key}, control
        assert extra >= {"debug", "registry-mirrors"}  # a site's own keys ride on every run


def test_nothing_selected_applies_nothing_even_when_dockerd_lags() -> None:
    inputs = RECORDED["hardened_level_1_changes_nothing"]["inputs"]
    variables = role_variables(inputs)
    lagging = found(inputs, variables) | {
        "pending": {"apply": True, "restart": True, "why": "daemon.json is not in effect"}
    }
    settings, reload = (
        variables["docker_daemon_settings"],
        variables["docker_daemon_reloadable_keys"],
    )
    idle = FACTS.plan(lagging, settings, [], reload)
    assert (idle["apply"], idle["changed_keys"], idle["notices"]) == (False, [], [])
    one = FACTS.plan(lagging, settings, ["cis_docker_2_2"], reload)
    assert one["apply"] and one["restart"] and one["changed_keys"] == []
    assert one["notices"] == ["daemon.json is not in effect: dockerd is restarted."]


def test_the_reason_to_apply_names_this_run_s_changes_and_says_reload_when_enough() -> None:
    inputs = RECORDED["one_tag"]["inputs"]
    variables = role_variables(inputs)
    lagging = found(inputs, variables) | {
        "pending": {"apply": True, "restart": False, "why": "the running dockerd differs"}
    }
    settings, reload = (
        variables["docker_daemon_settings"],
        variables["docker_daemon_reloadable_keys"],
    )
    live = FACTS.plan(lagging, settings, ["cis_docker_2_15"], reload)
    assert live["notices"] == [
        "the running dockerd differs: dockerd is reloaded (this run changes live-restore too)."
    ]
    icc = FACTS.plan(lagging, settings, ["cis_docker_2_2"], reload)
    assert (
        icc["restart"] and "dockerd is restarted (this run changes icc too)." in icc["notices"][0]
    )


def test_the_plan_knows_every_control_the_role_tags() -> None:
    """A control tagged in the role's tasks but unknown to the module would never be selected."""
    tagged = set()
    for path in (ROLE / "tasks").glob("*.yml"):
        tagged |= set(re.findall(r"\b(?:cis_docker|cm_rt)_\d+_\d+\b", path.read_text()))
    assert tagged == set(FACTS.CONTROLS)


def test_daemon_json_keys_left_to_dockerd_flags_are_read_and_reported() -> None:
    """Every key the role sets is looked for on dockerd's command line (the facts module is asked
    for its flags); given there, the plan leaves it to the flag and the run names it."""
    inputs = RECORDED["level_2_with_gvisor_and_seccomp"]["inputs"]
    variables = role_variables(inputs | {"selinux_host": True})
    main = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    (facts,) = [t for t in main if "docker_daemon_facts" in t]
    read = set(_template(variables, facts["docker_daemon_facts"]["flags"]))
    settings = variables["docker_daemon_settings"] | {"authorization_plugins": ["authz"]}
    sets = set(FACTS.plan(found(inputs, variables) | {"selinux_host": True}, settings,
                          list(FACTS.CONTROLS), [])["merged"])  # fmt: skip
    assert sets - {"runtimes"} <= read, f"flags not looked for: {sorted(sets - read)}"
    assert {"icc", "seccomp-profile", "selinux-enabled", "authorization-plugins"} <= sets

    flagged = found(inputs, variables) | {"flag_keys": sorted(read), "selinux_host": True}
    flagged["config"] = {"hosts": ["tcp://0.0.0.0:2376"]}
    decided = FACTS.plan(flagged, settings, list(FACTS.CONTROLS), [])
    assert set(decided["merged"]) & read == {"hosts"}  # nothing set twice
    left = _LEFT.match(decided["notices"][-1])
    assert left is not None, decided["notices"]
    reported = set(left["keys"].split(", "))
    managed = set(variables["docker_daemon_flag_names"]) | set(
        variables["docker_daemon_tls_flag_names"]
    )
    assert reported == managed, "a key left to a flag without a word, or one the role never sets"
