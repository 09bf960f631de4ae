"""The auditd_rules role decides its rule files in its one facts call
(library/auditd_rules_facts.py) and decides what its former per-control `set_fact` steps decided:
the recorded inputs of tests/fixtures/auditd/plans.json (every control, one Docker tag, one host
tag over a host file with rules of its own, a tag mix, --skip-tags, a site's keys with paths
missing, install only, a host without Docker) were run through those steps by real Ansible
(tests/fixtures/auditd/record_plans.py), and the two rule files they worked out were kept; the
module must give the same. A compliant host then skips the rest of the role in one step."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from .role_modules import role_library

ROLE = content_root() / "roles" / "auditd_rules"
RECORDED = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "auditd" / "plans.json").read_text()
)
_ONE_VAR = re.compile(r"^\{\{ (auditd_rules_\w+) \}\}$")


F = role_library("auditd_rules", "auditd_rules_facts")
VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())


def host_controls(env: dict[str, Any]) -> dict[str, Any]:
    """vars/main.yml's auditd_rules_host_controls with its `{{ var }}` keys resolved."""
    out = {}
    for ident, spec in VARS["auditd_rules_host_controls"].items():
        whole = _ONE_VAR.match(spec["key"])
        assert whole, spec
        out[ident] = dict(spec, key=env[whole.group(1)])
    return out


def decide(inputs: dict[str, Any]) -> tuple[str, str]:
    env = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()) | inputs["vars"]
    docker, hosts = VARS["auditd_rules_docker_controls"], host_controls(env)
    ids = [*docker, "cm_host_2_1", *hosts]
    selected = F.selected_controls(ids, inputs["run_tags"], inputs["skip_tags"])
    paths, current = inputs["found"]["paths"], inputs["found"]["host_current"]
    return (
        F.docker_rules(
            paths, docker, selected, env["auditd_rules_key"], inputs["found"].get("current", "")
        ),
        F.host_rules(paths, hosts, selected, current),
    )


@pytest.mark.parametrize("scenario", sorted(RECORDED))
def test_the_module_writes_what_the_per_control_steps_wrote(scenario: str) -> None:
    recorded = RECORDED[scenario]
    content, host_content = decide(recorded["inputs"])
    assert content == recorded["old"]["content"]
    assert host_content == recorded["old"]["host_content"]


def test_the_module_knows_every_control_the_role_tags() -> None:
    tags = set(
        re.findall(
            r"(?:cis_docker|cm_host)_\d+_\d+(?:_\d+)?", (ROLE / "tasks" / "main.yml").read_text()
        )
    )
    known = {
        *VARS["auditd_rules_docker_controls"],
        "cm_host_2_1",
        *VARS["auditd_rules_host_controls"],
    }
    assert tags == known
    assert set(VARS["auditd_rules_host_controls"]) == set(F.HOST_IDS)
    targets = set(VARS["auditd_rules_targets"]) | set(VARS["auditd_rules_host_targets"])
    for spec in [*VARS["auditd_rules_docker_controls"].values(),
                 *(s["targets"] for s in VARS["auditd_rules_host_controls"].values())]:  # fmt: skip
        assert set(spec) <= targets


def compliant() -> dict[str, Any]:
    """What the facts read on a host whose auditd runs and has every rule loaded."""
    return {
        "installed": True,
        "container": "",
        "active": True,
        "auditctl": True,
        "enabled": 1,
        "missing": [],
    }


EVERY = [*VARS["auditd_rules_docker_controls"], "cm_host_2_1", *VARS["auditd_rules_host_controls"]]
WRITTEN = {"docker": False, "host": False}


def test_a_compliant_host_has_nothing_left_to_do() -> None:
    assert F.act_of(compliant(), "enabled", WRITTEN, EVERY) is False
    # in a container: auditd cannot run there and nothing can be loaded, the files are all it has
    inside = compliant() | {
        "container": "docker",
        "active": False,
        "auditctl": False,
        "enabled": None,
    }
    assert F.act_of(inside, "enabled", WRITTEN, EVERY) is False
    # locked until reboot: a missing rule loads at the next boot, not now
    assert (
        F.act_of(
            compliant() | {"enabled": 2, "missing": ["-w /etc/x -k docker"]},
            "enabled",
            WRITTEN,
            EVERY,
        )
        is False
    )
    # nothing of the role selected
    assert (
        F.act_of(compliant() | {"installed": False}, "disabled", {"docker": True, "host": True}, [])
        is False
    )


@pytest.mark.parametrize(
    ("found", "unit_file_state", "written", "selected"),
    [
        ({"installed": False}, "", WRITTEN, ["cm_host_2_1"]),
        ({}, "disabled", WRITTEN, ["cm_host_2_2"]),
        ({"active": False}, "enabled", WRITTEN, ["cis_docker_1_1_3"]),
        ({"missing": ["-w /etc/passwd -p wa -k identity"]}, "enabled", WRITTEN, ["cm_host_2_2"]),
        ({}, "enabled", {"docker": True, "host": False}, ["cis_docker_1_1_5"]),
        ({}, "enabled", {"docker": False, "host": True}, ["cm_host_2_4"]),
    ],
    ids=["install", "enable", "start", "load", "docker_file", "host_file"],
)
def test_anything_to_install_write_enable_start_or_load_runs_the_steps(
    found: dict[str, Any], unit_file_state: str, written: dict[str, bool], selected: list[str]
) -> None:
    assert F.act_of(compliant() | found, unit_file_state, written, selected) is True


def _over_a_full_file(run_tags: list[str], skip_tags: list[str]) -> tuple[str, str]:
    everything = RECORDED["everything"]
    inputs = dict(everything["inputs"], run_tags=run_tags, skip_tags=skip_tags)
    inputs["found"] = dict(inputs["found"], current=everything["old"]["content"])
    return everything["old"]["content"], decide(inputs)[0]


def test_one_docker_control_run_on_a_hardened_host_keeps_the_other_controls_watches() -> None:
    """`--tags cis_docker_1_1_5` on a host whose Docker rule file is complete leaves it complete
    (it rewrote the file with 1.1.5's one watch, dropping fifteen controls' rules)."""
    full, content = _over_a_full_file(["cis_docker_1_1_5"], [])
    assert content == full


def test_a_skipped_docker_control_keeps_its_watch_as_found() -> None:
    full, content = _over_a_full_file(["all"], ["cis_docker_1_1_9"])
    assert content == full
    fresh = decide(RECORDED["skip_tags"]["inputs"])[0]
    assert fresh == RECORDED["skip_tags"]["old"]["content"]
    assert set(full.splitlines()) - set(fresh.splitlines())


def test_a_run_of_every_docker_control_drops_watches_it_does_not_own() -> None:
    everything = RECORDED["everything"]
    inputs = dict(everything["inputs"])
    inputs["found"] = dict(
        inputs["found"], current=everything["old"]["content"] + "-w /srv/mine -k docker\n"
    )
    assert decide(inputs)[0] == everything["old"]["content"]


def test_a_file_of_another_selection_is_not_written_for_this_one() -> None:
    """--tags cm_host_2_3 leaves the Docker rule file alone, even where it differs."""
    assert (
        F.act_of(compliant(), "enabled", {"docker": True, "host": False}, ["cm_host_2_3"]) is False
    )
    assert (
        F.act_of(compliant(), "enabled", {"docker": False, "host": True}, ["cis_docker_1_1_5"])
        is False
    )


def test_a_rule_file_is_rewritten_for_its_content_mode_or_owner(tmp_path: Path) -> None:
    path = tmp_path / "casemate-docker.rules"
    assert F.needs_write(str(path), "x\n")
    path.write_text("x\n")
    path.chmod(0o640)
    os.chown(path, 0, 0)
    assert not F.needs_write(str(path), "x\n")
    assert F.needs_write(str(path), "y\n")
    path.chmod(0o644)
    assert F.needs_write(str(path), "x\n")


def test_a_compliant_host_skips_the_role_in_one_step() -> None:
    tasks = yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())
    modules = [next(k for k in t if k.startswith(("ansible.", "auditd_rules_"))) for t in tasks]
    # the "not loaded here" message is the include's last step: said where this run changed
    # something, not on every run (issue 16)
    assert modules == ["auditd_rules_facts", "ansible.builtin.include_tasks"]
    assert tasks[1]["when"] == "auditd_rules_found.act"
