"""The gvisor role decides every control in its one facts call (library/gvisor_facts.py) and
decides what its former layout decided: the recorded inputs of tests/fixtures/gvisor/plans.json
(a compliant and a fresh host, check mode with and without a package dry run, one tag, --skip-tags,
runsc's own shim, containerd missing, stopped or running an older config, another default runtime)
were run through the old role's per-step `when`s and its containerd `set_fact` by real Ansible
(tests/fixtures/gvisor/record_plans.py); the steps it did not skip and the containerd settings it
worked out were kept, and the module must give the same. A compliant host then skips the rest of
the role in one step."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from .role_modules import role_library

ROLE = content_root() / "roles" / "gvisor"
RECORDED: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "gvisor" / "plans.json").read_text()
)
F = role_library("gvisor", "gvisor_facts")
S = role_library("sysctl", "sysctl_facts")  # casemate_selection, as every facts module imports it
DEFAULTS: dict[str, Any] = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
# the old role's step names -> what gvisor_facts decides instead
INSTALL = "gvisor : Install runsc | cm_rt_1_1"
NOTICE = "gvisor : Say what a real run would install | cm_rt_1_1"
CONTAINERD = "gvisor : Register runsc in containerd and restart it | cm_rt_1_3"
MANIFEST_DIR = "gvisor : Prep | Make the manifests directory"
MANIFEST = "gvisor : Write the gvisor RuntimeClass manifest | cm_rt_1_5"


def decided(inputs: dict[str, Any], state: dict[str, bool]) -> dict[str, Any]:
    env = dict(DEFAULTS, **inputs["vars"])
    selected = S.selected_controls(F.CONTROLS, inputs["run_tags"], inputs["skip_tags"])
    params = {
        "runsc_path": env["gvisor_runsc_path"],
        "install": env["gvisor_install"],
        "package": env["gvisor_package"],
        "manifests_dir": env["gvisor_manifests_dir"],
        "manifest_state": state,
    }
    out: dict[str, Any] = F.decide(inputs["found"], params, selected, inputs["check_mode"])
    return out


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_gvisor_facts_decides_what_the_old_steps_decided(name: str) -> None:
    recorded = RECORDED[name]
    acted = set(recorded["acted"])
    # the old role wrote the manifest whatever was on disk: the new one where it is not so yet
    plan = decided(recorded["inputs"], {"dir": False, "file": False})
    assert plan["install"] == (INSTALL in acted)
    assert bool(plan["install_notice"]) == (NOTICE in acted)
    assert plan["containerd"]["apply"] == (CONTAINERD in acted)
    assert plan["manifest"] == {"dir": MANIFEST_DIR in acted, "file": MANIFEST in acted}
    facts = recorded["facts"]
    if facts["settings"] is not None:  # the old set_fact ran (cm_rt_1_3, a config to change)
        assert plan["containerd"]["settings"] == facts["settings"]
        assert plan["containerd"]["write"] == facts["write"]
        assert plan["containerd"]["running"] == facts["running"]
    assert plan["act"] == bool(acted & {INSTALL, NOTICE, CONTAINERD, MANIFEST_DIR, MANIFEST})


def test_a_compliant_host_has_nothing_to_do() -> None:
    compliant = RECORDED["compliant_all"]["inputs"]
    assert not decided(compliant, {"dir": True, "file": True})["act"]
    plan = decided(compliant, {"dir": True, "file": False})
    assert plan["act"] and plan["manifest"] == {"dir": False, "file": True}


def test_the_runtime_for_docker_daemon_is_what_the_old_set_fact_made() -> None:
    """gvisor_docker_runtimes is a role var now, read by docker_daemon where it is used."""
    import jinja2

    text = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["gvisor_docker_runtimes"]
    jinja = jinja2.Environment()
    jinja.filters["combine"] = lambda a, b: {**a, **b}
    for name in ("fresh_all", "fresh_args"):
        env = dict(DEFAULTS, **RECORDED[name]["inputs"]["vars"])
        runsc = jinja.from_string(text["runsc"]).render(env)
        assert yaml.safe_load(runsc) == RECORDED[name]["facts"]["docker_runtimes"]["runsc"]


def test_the_manifest_on_disk_is_judged_by_content_owner_and_mode(tmp_path: Path) -> None:
    manifest = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())[
        "gvisor_runtimeclass_manifest"
    ]
    path = tmp_path / F.MANIFEST_NAME
    assert not F.written_as(str(path), manifest, 0o644)
    path.write_text(manifest)
    path.chmod(0o644)
    assert F.written_as(str(path), manifest, 0o644) == (os.geteuid() == 0)
    path.chmod(0o664)
    assert not F.written_as(str(path), manifest, 0o644)
    path.chmod(0o644)
    path.write_text(manifest + "# edited\n")
    assert not F.written_as(str(path), manifest, 0o644)
    tmp_path.chmod(0o755)
    assert F.written_as(str(tmp_path), None, 0o755, kind="directory") == (os.geteuid() == 0)
