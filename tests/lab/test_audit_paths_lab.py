"""CIS Docker 1.1.x audit watches agree with every checker on a real Debian node: a binary is
watched at each path it is reached by and at the path the benchmark documents. On Debian, dockerd
lives in /usr/sbin (the benchmark says /usr/bin/dockerd) and /usr/bin/runc is a symlink to
/usr/sbin/runc: a rule for only one of the two paths is a finding for whoever reads the other one.
The rules are written (not loaded: the kernel refuses audit in a container, so verify says
not_verifiable, never pass); a node missing one path's rule fails, and harden puts it back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Lab, harden_stats, lab_name, open_lab, report_of, results

LAB = lab_name("auditpaths")
CONTROLS = "cis_docker_1_1_3,cis_docker_1_1_18"
RULES = "/etc/audit/rules.d/casemate-docker.rules"
WANTED = {"/usr/sbin/dockerd", "/usr/bin/dockerd", "/usr/sbin/runc", "/usr/bin/runc"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, LAB, 1, ci_release="trixie") as bed:
        yield bed


def watched(lab: Lab) -> set[str]:
    text = lab.sh(lab.nodes[0], f"cat {RULES} 2>/dev/null || true")
    return {line.split()[1] for line in text.splitlines() if line.startswith("-w ")}


def verify(lab: Lab, out: Path) -> dict[str, dict[str, object]]:
    lab.casemate("verify", "-i", str(lab.inventory), "--level", "2", "--controls", CONTROLS,
                 "--report-dir", str(out))  # fmt: skip
    return results(report_of(out), lab.nodes[0])


def harden(lab: Lab, *extra: str) -> int:
    lab.casemate("harden", "-i", str(lab.inventory), "--level", "2", "--controls", CONTROLS,
                 *extra, check=0)  # fmt: skip
    return harden_stats(lab.state)[lab.nodes[0]]["changed"]


def test_binaries_are_watched_at_every_path_a_checker_reads(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    # the node is Debian's layout, which is what this test is about
    assert lab.sh(node, "readlink -f /usr/bin/runc; command -v dockerd").split() == [
        "/usr/sbin/runc",
        "/usr/sbin/dockerd",
    ]
    assert harden(lab, "--check", "--diff") > 0
    assert watched(lab) == set()  # a dry run writes nothing

    assert harden(lab) > 0
    assert watched(lab) >= WANTED
    assert harden(lab) == 0
    after = verify(lab, tmp_path / "after")
    for cid, paths in (("cis_docker_1_1_3", "/usr/sbin/dockerd, /usr/bin/dockerd"),
                       ("cis_docker_1_1_18", "/usr/sbin/runc, /usr/bin/runc")):  # fmt: skip
        assert after[cid]["status"] == "not_verifiable", after[cid]
        assert f"rule for {paths} in /etc/audit/rules.d" in str(after[cid]["observed"])

    # a rule file that watches only the path runc is called by (as casemate wrote it before)
    lab.sh(node, f"sed -i '\\#^-w /usr/bin/runc #d; \\#^-w /usr/bin/dockerd #d' {RULES}")
    drifted = verify(lab, tmp_path / "drifted")
    assert drifted["cis_docker_1_1_18"]["status"] == "fail"
    assert (
        drifted["cis_docker_1_1_18"]["observed"]
        == "no rule for /usr/bin/runc in /etc/audit/rules.d"
    )
    assert drifted["cis_docker_1_1_3"]["status"] == "fail"
    assert harden(lab) > 0
    assert watched(lab) >= WANTED
