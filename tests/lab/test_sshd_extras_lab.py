"""dev-sec's sshd extras (cm_host_1_23 Compression no, cm_host_1_24 MaxSessions 2, cm_host_1_25
TCPKeepAlive no with ClientAliveInterval kept) and the banner in /etc/issue.net (cm_host_1_16) on
one real node reached over SSH: failing before, a dry run changes nothing, hardened through the
lockout guard and the commit-confirmed reload, the connecting user still logs in (and Ansible,
which opens its sessions over one shared connection, still works: a second harden changes
nothing), and a node whose casemate file was edited back fails them again until harden puts them
back. spoil_ssh.sh drifts them on a fresh node for test_ssh_lab.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import ssh
from .conftest import Lab, harden_stats, lab_name, open_lab
from .test_ssh_lab import HARDENING, SNAPSHOT, ssh_node, ssh_results

EXTRAS = ("cm_host_1_16", "cm_host_1_23", "cm_host_1_24", "cm_host_1_25")
CONTROLS = ",".join(HARDENING)
EFFECTIVE = (
    "sshd -T | grep -E '^(banner|compression|maxsessions|tcpkeepalive|clientaliveinterval) ' | sort"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("sshextras"), 1, ci_release="trixie") as bed:
        yield bed


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ssh.keypair(tmp_path_factory.mktemp("keys"), ssh.USER)


def test_sshd_extras_hardened_over_ssh_and_drift_fails(lab: Lab, key: Path, tmp_path: Path) -> None:
    node = lab.nodes[0]
    ip, inventory = ssh_node(lab, node, key, tmp_path, sshd_allow_groups=[ssh.GROUP])
    before = ssh_results(lab, inventory, tmp_path / "before", ids=EXTRAS, check=1)
    assert before == dict.fromkeys(EXTRAS, "fail")

    snapshot = lab.sh(node, SNAPSHOT)
    lab.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, "--check", "--diff",
                 check=0)  # fmt: skip
    assert harden_stats(lab.state)[node]["changed"] > 0
    assert lab.sh(node, SNAPSHOT) == snapshot  # a dry run changes nothing

    session = ssh.Session.open(ip, ssh.USER, key)
    try:
        lab.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=0)
        assert harden_stats(lab.state)[node]["changed"] > 0
        assert session.run("echo still-here").strip() == "still-here"  # survived the reload
    finally:
        session.close()
    assert lab.sh(node, EFFECTIVE).split("\n")[:5] == [
        "banner /etc/issue.net",
        "clientaliveinterval 300",
        "compression no",
        "maxsessions 2",
        "tcpkeepalive no",
    ]
    assert ssh.login(ip, ssh.USER, key=key) == "ok"
    lab.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=0)
    assert harden_stats(lab.state)[node]["changed"] == 0  # Ansible still gets in; idempotent
    after = ssh_results(lab, inventory, tmp_path / "after", ids=HARDENING, check=0)
    assert after == dict.fromkeys(HARDENING, "pass")

    # drift: someone edits casemate's file back to OpenSSH's defaults and reloads
    lab.sh(node, "sed -i -E 's/^(Compression) .*/\\1 yes/; s/^(MaxSessions) .*/\\1 10/;"
                 " s/^(TCPKeepAlive) .*/\\1 yes/' /etc/ssh/sshd_config.d/00-casemate-hardening.conf"
                 " && systemctl reload ssh")  # fmt: skip
    bad = ssh_results(lab, inventory, tmp_path / "bad", ids=EXTRAS[1:], check=1)
    assert bad == dict.fromkeys(EXTRAS[1:], "fail"), "a check that cannot fail is a bug"
    lab.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=0)
    good = ssh_results(lab, inventory, tmp_path / "good", ids=HARDENING, check=0)
    assert good == dict.fromkeys(HARDENING, "pass")
    assert ssh.login(ip, ssh.USER, key=key) == "ok"
