"""A waiver on a real node: harden leaves the waived control as it was (daemon.json's `icc` stays
what the node had) while it fixes the other selected control in the same file, and says so in its
run record; verify then reports the waived control `waived` (with what the check saw: fail), never
pass, and exits 0 under the default gate because everything else passes. Without the waiver the
same node exits 1. Own lab: one fresh node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Lab, lab_name, last_run, open_lab, report_of, results

LAB = lab_name("waivers")
CONTROLS = "cis_docker_2_2,cis_docker_2_13"  # icc (waived) and the log driver, both in daemon.json


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, LAB, 1) as bed:
        yield bed


def daemon_json(lab: Lab) -> dict[str, Any]:
    text = lab.sh(lab.nodes[0], "cat /etc/docker/daemon.json 2>/dev/null || true")
    loaded: dict[str, Any] = json.loads(text) if text.strip() else {}
    return loaded


def verify(lab: Lab, out: Path, *args: str, check: int) -> dict[str, dict[str, Any]]:
    lab.casemate("verify", "-i", str(lab.inventory), "--controls", CONTROLS,
                 "--report-dir", str(out), *args, check=check)  # fmt: skip
    return results(report_of(out), lab.nodes[0])


def test_a_waived_control_is_left_as_it_was_and_reported_waived_never_pass(
    lab: Lab, tmp_path: Path
) -> None:
    node = lab.nodes[0]
    fresh = verify(lab, tmp_path / "fresh", "--no-waivers", check=1)
    assert {c: r["status"] for c, r in fresh.items()} == {
        "cis_docker_2_2": "fail",
        "cis_docker_2_13": "fail",
    }
    waivers = tmp_path / "waivers.yml"
    waivers.write_text(
        "waivers:\n"
        "  - control: cis_docker_2_2\n"
        f"    hosts: ['{node}']\n"
        "    reason: the legacy stack talks container to container on the default bridge\n"
        "    owner: platform-team\n"
        "    ticket: SEC-42\n"
        "    expires: 2999-12-31\n"
    )
    before = daemon_json(lab)
    done = lab.casemate("harden", "-i", str(lab.inventory), "--controls", CONTROLS,
                        "--waivers", str(waivers), check=0)  # fmt: skip
    after = daemon_json(lab)
    assert ("icc" in after, after.get("icc")) == ("icc" in before, before.get("icc"))
    assert after.get("log-driver") != before.get("log-driver")  # 2.13 was fixed in the same file
    meta = json.loads((last_run(lab.state, "harden") / "run.json").read_text())
    assert meta["waivers"]["waived"] == {node: ["cis_docker_2_2"]}
    assert meta["outcome"] == "succeeded"
    assert f"{node}: waived, not remediated: cis_docker_2_2" in " ".join(done.stdout.split())

    judged = verify(lab, tmp_path / "waived", "--waivers", str(waivers), check=0)
    icc = judged["cis_docker_2_2"]
    assert icc["status"] == "waived"
    assert icc["judged"] == "fail"  # what the check saw on the node, kept under the waiver
    assert icc["waiver"]["owner"] == "platform-team"
    assert judged["cis_docker_2_13"]["status"] == "pass"
    # the same node without the waiver: the gate fails on icc
    assert verify(lab, tmp_path / "plain", "--no-waivers", check=1)["cis_docker_2_2"]["status"] == (
        "fail"
    )
