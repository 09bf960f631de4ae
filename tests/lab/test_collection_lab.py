"""The collection casemate.hardening hardens a node without the casemate CLI.

The tarball is built (`casemate collection build`), installed offline into a temporary collections
path with `ansible-galaxy collection install`, and its playbook run as a plain `ansible-playbook`
user runs it: `ansible-playbook casemate.hardening.harden --tags ...`, from a directory with no
casemate roles near it and no roles path. Then `casemate verify` judges the node: the selected
controls failed before and pass after."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Lab, lab_name, open_lab, report_of, results

BIN = Path(sys.executable).parent
# a docker_daemon key (a daemon.json write and a dockerd restart), docker_files' owner and mode of
# daemon.json, and an sshd option (validated, committed): modules of three roles, each importing
# the shared host readers (plugins/module_utils in the collection)
CONTROLS = ("cis_docker_2_2", "cis_docker_3_17", "cis_docker_3_18", "cm_host_1_5")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("coll"), 1) as bed:
        yield bed


def verdicts(lab: Lab, report_dir: Path) -> tuple[int, dict[str, str]]:
    done = lab.casemate(
        "verify", "-i", str(lab.inventory), "--controls", ",".join(CONTROLS),
        "--report-dir", str(report_dir), "--format", "json", "--no-waivers",
    )  # fmt: skip
    found = results(report_of(report_dir), lab.nodes[0])
    return done.returncode, {c: found[c]["status"] for c in CONTROLS}


def test_collection_playbook_hardens_a_node_that_verify_then_passes(
    lab: Lab, tmp_path: Path
) -> None:
    rc, before = verdicts(lab, tmp_path / "before")
    assert rc == 1
    assert before["cis_docker_2_2"] == "fail", before  # a fresh node lets containers talk
    assert before["cm_host_1_5"] == "fail", before

    built = lab.casemate("collection", "build", "--output", str(tmp_path / "dist"), check=0)
    (tarball,) = (tmp_path / "dist").glob("casemate-hardening-*.tar.gz")
    assert str(tarball) in built.stdout.replace("\n", "")

    collections = tmp_path / "collections"
    user = tmp_path / "user"  # where the user runs ansible-playbook: no roles/, no ansible.cfg
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "CASEMATE_"))} | {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_ROLES_PATH": str(user / "roles"),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_NOCOLOR": "True",
    }
    installed = subprocess.run(
        [BIN / "ansible-galaxy", "collection", "install", "--offline", str(tarball),
         "-p", str(collections)],
        cwd=user, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (collections / "ansible_collections/casemate/hardening/playbooks/harden.yml").is_file()

    played = subprocess.run(
        [BIN / "ansible-playbook", "-i", str(lab.inventory), "casemate.hardening.harden",
         "--tags", ",".join(CONTROLS)],
        cwd=user, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert played.returncode == 0, played.stdout[-3000:] + played.stderr[-2000:]
    # the collection's roles ran (the casemate checkout's roles are nowhere on a path)
    assert "TASK [casemate.hardening.docker_daemon :" in played.stdout
    assert "TASK [casemate.hardening.sshd :" in played.stdout

    rc, after = verdicts(lab, tmp_path / "after")
    assert after == dict.fromkeys(CONTROLS, "pass")
    assert rc == 0
    assert lab.daemon_json(lab.nodes[0])["icc"] is False
