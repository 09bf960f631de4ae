"""The etcd role decides every control in one module call (library/etcd_plan.py) and decides what
its per-control steps decided: the recorded inputs of tests/fixtures/k8s/etcd_plans.json
(kubeadm's flags, loose flags, a site's own files and flags, an etcd CA shared with the cluster,
an account or a data directory missing, tag subsets, --skip-tags) were run through the role's
former per-control steps by real Ansible in check mode (record_etcd_plans.py), and the manifest
edit, which data directory steps changed and every message they printed were kept; the plan must
give the same. A selection changes only what it selects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from .role_modules import play_role_locally, role_library

ROLE = content_root() / "roles" / "etcd"
RECORDED = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "k8s" / "etcd_plans.json").read_text()
)
PLAN = role_library("etcd", "etcd_plan")
FIXTURES = Path(__file__).parent.parent / "fixtures" / "k8s"
# the former steps of section_1_files.yml, by the step of the plan that stands for each
STEPS = {
    "group": "Create the etcd system group | cis_k8s_1_1_12",
    "user": "Create the etcd system user | cis_k8s_1_1_12",
    "mode": "Make the data directory 0700 | cis_k8s_1_1_11",
    "owner": "Give the data directory to etcd:etcd | cis_k8s_1_1_12",
}
PROBE = {"scheme": "http", "host": "127.0.0.1", "port": 2381, "path": "/health"}


def settings(overrides: dict[str, Any]) -> dict[str, Any]:
    """etcd_settings as the role hands it over: the defaults, then the site's values."""
    env = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    env.update(overrides)
    env.update(etcd_trusted_ca_file="CASE/etcd-ca.crt", etcd_cluster_ca_file="CASE/cluster-ca.crt")
    table = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["etcd_settings"]
    return {key: env[ref.strip("{} ")] for key, ref in table.items()}


def host(inputs: dict[str, Any]) -> dict[str, Any]:
    """What read_host would find on the recorded host."""
    role_vars, data_dir = inputs["vars"], inputs["data_dir"]
    absent = "casemate-rec-absent"
    return {
        "user": role_vars.get("etcd_user", "etcd") != absent,
        "group": role_vars.get("etcd_group", "etcd") != absent,
        "data_dir": {"exists": False} if data_dir is None else
                    {"exists": True, "mode": data_dir[0], "owner": data_dir[1], "group": data_dir[2]},
        "cas_same": inputs["cas"] == "same",
        "process": {"running": True, "pid": 1, "start": 1, "argv": ["etcd"]},
    }  # fmt: skip


def decide(inputs: dict[str, Any], check_mode: bool = True) -> dict[str, Any]:
    s = settings(dict(inputs["vars"], etcd_data_dir="CASE/data"))
    selected = PLAN.selected_controls(list(PLAN.CONTROLS), inputs["run_tags"], inputs["skip_tags"])
    found = {"flags": inputs["flags"], "command": ["etcd"], "probe": PROBE}
    return PLAN.plan(found, host(inputs), s, selected, check_mode)  # type: ignore[no-any-return]


@pytest.mark.parametrize("scenario", sorted(RECORDED))
def test_the_plan_edits_the_manifest_as_the_per_control_steps_did(scenario: str) -> None:
    recorded = RECORDED[scenario]
    assert decide(recorded["inputs"])["edit"] == recorded["old"]["edit"]


@pytest.mark.parametrize("scenario", sorted(RECORDED))
def test_the_plan_changes_the_data_directory_as_the_per_control_steps_did(scenario: str) -> None:
    recorded = RECORDED[scenario]
    files = decide(recorded["inputs"])["files"]
    for step, title in STEPS.items():
        assert files[step] == (recorded["old"]["steps"].get(title) == "changed"), step
    assert files["apply"] == any(files[step] for step in STEPS)


@pytest.mark.parametrize("scenario", sorted(RECORDED))
def test_the_plan_says_what_the_per_control_steps_said(scenario: str) -> None:
    recorded = RECORDED[scenario]
    assert decide(recorded["inputs"])["notes"] == recorded["old"]["messages"]


def test_a_compliant_host_applies_nothing() -> None:
    decided = decide(RECORDED["compliant"]["inputs"], check_mode=False)
    assert not any(decided["files"].values())
    assert decided["health_url"] == "http://127.0.0.1:2381/health"
    assert decided["usable"] and decided["broken"] == []


def test_a_real_run_creates_the_account_then_gives_it_the_data_directory() -> None:
    decided = decide(RECORDED["kubeadm_fresh"]["inputs"], check_mode=False)
    assert decided["files"] == {"group": True, "user": True, "mode": False, "owner": True,
                                "apply": True}  # fmt: skip
    assert decided["notes"] == []
    missing = decide(RECORDED["data_dir_missing"]["inputs"], check_mode=False)
    assert missing["files"]["mode"] and missing["files"]["owner"]


def test_a_missing_data_directory_is_not_chowned_unless_it_is_made() -> None:
    """--tags cis_k8s_1_1_12 alone on a host without the directory: nothing to chown (the former
    step failed the host on it)."""
    inputs = dict(RECORDED["data_dir_missing"]["inputs"], run_tags=["cis_k8s_1_1_12"])
    assert not decide(inputs, check_mode=False)["files"]["owner"]


def test_a_broken_manifest_is_recorded_and_nothing_is_decided() -> None:
    s = settings({})
    decided = PLAN.plan({"path": s["manifest_path"], "broken": "bad"},
                        host(RECORDED["loose"]["inputs"]), s, list(PLAN.CONTROLS), False)  # fmt: skip
    assert decided["broken"] == [{"component": "etcd", "path": "/etc/kubernetes/manifests/etcd.yaml",
                                  "broken": True, "reason": "bad"}]  # fmt: skip
    assert not decided["usable"] and not decided["files"]["apply"]
    assert decided["edit"] == {"flags": {}, "defaults": {}, "remove": []}


def test_the_plan_reads_the_data_directory_and_the_cas_of_this_host(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o750)
    (tmp_path / "ca.crt").write_text("one CA\n")
    (tmp_path / "other.crt").write_text("another CA\n")
    s = settings({"etcd_data_dir": str(tmp_path / "data"), "etcd_user": "root",
                  "etcd_process_name": "casemate-no-such-process"})  # fmt: skip
    s["cluster_ca_file"] = str(tmp_path / "ca.crt")
    found = {"flags": {"--trusted-ca-file": str(tmp_path / "ca.crt")}, "command": []}
    read = PLAN.read_host(found, s)
    assert read["data_dir"] == {"exists": True, "mode": "0750", "owner": "root", "group": "root"}
    assert read["user"] and read["cas_same"] and not read["process"]["running"]
    found["flags"]["--trusted-ca-file"] = str(tmp_path / "other.crt")
    assert not PLAN.read_host(found, s)["cas_same"]


def test_the_plan_knows_every_control_the_role_tags() -> None:
    """A control tagged in the role's tasks but unknown to the module would never be selected."""
    tagged = set()
    for path in (ROLE / "tasks").glob("*.yml"):
        tagged |= set(re.findall(r"cis_k8s_\d+_\d+_\d+|cis_k8s_\d+_\d+\b", path.read_text()))
    assert tagged == set(PLAN.CONTROLS)


@pytest.mark.ansible
def test_skipping_one_data_directory_control_still_runs_the_other(tmp_path: Path) -> None:
    """The role in check mode on a loose local etcd: `--skip-tags cis_k8s_1_1_12` still narrows the
    data directory's mode (1.1.11) and touches neither the account nor the owner."""
    manifests, data = tmp_path / "manifests", tmp_path / "data"
    manifests.mkdir()
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (manifests / "etcd.yaml").write_text((FIXTURES / "etcd.yaml").read_text())
    role_vars = {"etcd_manifest_path": str(manifests / "etcd.yaml"), "etcd_data_dir": str(data),
                 "etcd_backup_dir": str(tmp_path / "backup"), "etcd_user": "casemate-rec-absent",
                 "etcd_group": "casemate-rec-absent", "etcd_process_name": "casemate-no-such-etcd"}  # fmt: skip
    done = play_role_locally(
        tmp_path, "etcd", role_vars, ["--check", "--skip-tags", "cis_k8s_1_1_12"]
    )
    assert done.returncode == 0, done.stdout[-3000:]
    recap = re.search(r"changed=(\d+)", done.stdout.split("PLAY RECAP")[-1])
    assert recap is not None and recap.group(1) == "1", done.stdout[-3000:]
    assert "Make the data directory 0700" in done.stdout
    assert (
        "Create the etcd system" not in done.stdout and "Give the data directory" not in done.stdout
    )
    assert data.stat().st_mode & 0o777 == 0o755  # check mode: nothing changed
