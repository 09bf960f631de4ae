"""login.defs password ageing on one real node: PASS_MIN_DAYS (cm_host_4_15) and PASS_WARN_AGE
(cm_host_4_16) fail where they are wrong, a dry run changes nothing, harden sets them in one write
of login.defs (backed up first), a second harden changes nothing, and verify then passes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Lab, harden_stats, lab_name, open_lab, report_of, results

CONTROLS = "cm_host_4_15,cm_host_4_16"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("logindefs"), 1, ci_release="trixie") as bed:
        yield bed


def verify(lab: Lab, out: Path) -> dict[str, str]:
    lab.casemate("verify", "-i", str(lab.inventory), "--controls", CONTROLS, "--report-dir",
                 str(out))  # fmt: skip
    return {c: r["status"] for c, r in results(report_of(out), lab.nodes[0]).items()}


def harden(lab: Lab, *extra: str) -> int:
    lab.casemate("harden", "-i", str(lab.inventory), "--controls", CONTROLS, *extra, check=0)
    return harden_stats(lab.state)[lab.nodes[0]]["changed"]


def test_password_ageing_defaults_fail_then_are_set(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    lab.sh(node, "sed -i 's/^PASS_WARN_AGE.*/PASS_WARN_AGE 0/' /etc/login.defs")  # drifted
    assert verify(lab, tmp_path / "before") == {"cm_host_4_15": "fail", "cm_host_4_16": "fail"}
    before = lab.sh(node, "md5sum /etc/login.defs")
    assert harden(lab, "--check", "--diff") > 0
    assert lab.sh(node, "md5sum /etc/login.defs") == before  # a dry run changes nothing
    assert harden(lab) > 0
    assert harden(lab) == 0
    assert verify(lab, tmp_path / "after") == {"cm_host_4_15": "pass", "cm_host_4_16": "pass"}
    lines = lab.sh(node, "grep -E '^PASS_(MIN_DAYS|WARN_AGE)' /etc/login.defs").split("\n")
    assert [line.split() for line in lines if line] == [
        ["PASS_MIN_DAYS", "1"],
        ["PASS_WARN_AGE", "7"],
    ]
    assert lab.sh(node, "ls /var/backups/casemate/host_baseline").count("login.defs.") == 1
