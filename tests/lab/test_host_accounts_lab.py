"""Account controls of the host baseline on one real node.

Password quality (cm_host_4_17) and the failed-login lockout (cm_host_4_18), hardened over SSH as a
sudo user: the role refuses to run for a connecting user it could lock out, both controls fail
where they are wrong, a dry run changes nothing, harden puts pam_pwquality and pam_faillock into
the PAM stacks through pam-auth-update (backups first) and is idempotent, verify then passes them,
and the policy is real: wrong passwords over SSH lock a plain user (faillock shows it, its right
password is refused), while the connecting user, an admin, still logs in.

Process accounting (cm_host_4_19) and sysstat (cm_host_4_20): off, they fail; harden turns them on
(sysstat then really collects), a second run changes nothing, and acct's running state is
not_verifiable in the node, a container.

Automatic security updates (cm_host_4_21): switched off, it fails; with
host_baseline_unattended_upgrades false the role leaves apt alone; harden turns it on with a file of
casemate's that apt reads last, idempotent, and unattended-upgrade itself reads the security origin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from . import ssh
from .conftest import Lab, harden_stats, lab_name, open_lab, report_of, results

CONTROLS = "cm_host_4_17,cm_host_4_18"
DENY = 5  # host_baseline_faillock_deny
VICTIM, VICTIM_PASSWORD = "cmvictim", "lab-only-Victim-2x"
PLAIN = "cmplain"  # may sudo, but is not in the admin group (sudo)
SNAPSHOT = (
    "md5sum /etc/pam.d/common-* /etc/security/pwquality.conf /etc/security/faillock.conf;"
    " ls /usr/share/pam-configs; ls /var/backups/casemate/host_baseline 2>&1; true"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("accounts"), 1, ci_release="trixie") as bed:
        yield bed


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ssh.keypair(tmp_path_factory.mktemp("keys"), ssh.USER)


def verify(lab: Lab, inventory: Path, out: Path, controls: str = CONTROLS) -> dict[str, str]:
    lab.casemate("verify", "-i", str(inventory), "--controls", controls, "--report-dir", str(out))
    return {c: r["status"] for c, r in results(report_of(out), lab.nodes[0]).items()}


def harden(lab: Lab, inventory: Path, *extra: str, check: int = 0, controls: str = CONTROLS) -> str:
    done = lab.casemate("harden", "-i", str(inventory), "--controls", controls, *extra, check=check)
    return done.stdout + done.stderr


# OpenSSH 9.8+ (Debian 13) turns away, for a while, an address whose logins keep failing
# (PerSourcePenalties): this test fails a dozen logins from one address on purpose, to prove PAM's
# faillock, so the controller's address (the node's default gateway) is exempt from sshd's
# penalties by a drop-in of the test's own. Debian 12's OpenSSH 9.2 has no penalties.
EXEMPT = (
    "sshd -T | grep -qi '^persourcepenalties ' || exit 0; "
    "gw=$(ip -4 route show default | awk '{print $3; exit}'); "
    'printf "PerSourcePenaltyExemptList %s\n" "$gw" > /etc/ssh/sshd_config.d/00-test-exempt.conf; '
    "sshd -t && systemctl reload ssh"
)


def test_faillock_locks_a_guessed_account_never_the_connecting_admin(
    lab: Lab, key: Path, tmp_path: Path
) -> None:
    node = lab.nodes[0]
    ip = ssh.bridge_ip(node)
    ssh.add_user(lab, node, ssh.USER, key, password=ssh.PASSWORD, groups=(ssh.GROUP, "sudo"))
    ssh.add_user(lab, node, PLAIN, key, groups=(ssh.GROUP,))
    ssh.add_user(lab, node, VICTIM, None, password=VICTIM_PASSWORD, groups=())
    lab.sh(node, "sed -i '/^ *[A-Za-z_]*sudo/d' /etc/sudoers.d/90-cmvictim")  # no sudo for it
    lab.sh(node, EXEMPT)
    lab.sh(node, "DEBIAN_FRONTEND=noninteractive pam-auth-update --disable pwquality")  # drifted
    admin = ssh.ssh_inventory(lab, tmp_path / "admin.yml", {node: {}}, user=ssh.USER, key=key)
    plain = ssh.ssh_inventory(lab, tmp_path / "plain.yml", {node: {}}, user=PLAIN, key=key)

    assert verify(lab, admin, tmp_path / "before") == {
        "cm_host_4_17": "fail",
        "cm_host_4_18": "fail",
    }
    before = lab.sh(node, SNAPSHOT)
    # a connecting user outside the admin group could be locked out of sudo: refused, untouched
    said = harden(lab, plain, check=3)
    assert (
        f"{PLAIN}, the user Ansible connects as, is not in host_baseline_faillock_admin_group"
        in said
    )
    assert lab.sh(node, SNAPSHOT) == before

    harden(lab, admin, "--check", "--diff")
    assert harden_stats(lab.state)[node]["changed"] > 0
    assert lab.sh(node, SNAPSHOT) == before  # a dry run changes nothing

    harden(lab, admin)
    assert harden_stats(lab.state)[node]["changed"] > 0
    harden(lab, admin)
    assert harden_stats(lab.state)[node]["changed"] == 0
    assert verify(lab, admin, tmp_path / "after") == {
        "cm_host_4_17": "pass",
        "cm_host_4_18": "pass",
    }
    backups = lab.sh(node, "ls /var/backups/casemate/host_baseline")
    for name in ("common-auth.", "common-password.", "faillock.conf.", "pwquality.conf."):
        assert backups.count(name) == 1, backups

    # the policy is real: DENY wrong passwords lock the plain user, even for its right password
    assert ssh.login(ip, VICTIM, password=VICTIM_PASSWORD) == "ok"
    for n in range(DENY):
        assert ssh.login(ip, VICTIM, password=f"wrong-{n}").startswith("refused")
    assert ssh.login(ip, VICTIM, password=VICTIM_PASSWORD).startswith("refused")
    shown = lab.sh(node, f"faillock --user {VICTIM}").splitlines()
    assert sum(1 for line in shown if line.rstrip().endswith(" V")) == DENY, shown

    # the connecting user, in the admin group, is never locked: by key or password, after guesses
    for n in range(DENY + 1):
        assert ssh.login(ip, ssh.USER, password=f"wrong-{n}").startswith("refused")
    assert ssh.login(ip, ssh.USER, password=ssh.PASSWORD) == "ok"
    assert ssh.login(ip, ssh.USER, key=key) == "ok"
    harden(lab, admin)  # and Ansible still gets in and becomes root
    assert harden_stats(lab.state)[node]["changed"] == 0

    # pam_pwquality alone taken out: a dry run reports it and changes nothing, a run puts it back
    lab.sh(node, "DEBIAN_FRONTEND=noninteractive pam-auth-update --disable pwquality")
    drifted = lab.sh(node, SNAPSHOT)
    harden(lab, admin, "--check")
    assert harden_stats(lab.state)[node]["changed"] > 0
    assert lab.sh(node, SNAPSHOT) == drifted
    harden(lab, admin)
    assert verify(lab, admin, tmp_path / "again")["cm_host_4_17"] == "pass"


ACCOUNTING = "cm_host_4_19,cm_host_4_20"
UNITS = "systemctl is-enabled acct sysstat sysstat-collect.timer; cat /etc/default/sysstat; true"


def test_process_accounting_and_sysstat_are_switched_on(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    lab.sh(node, "systemctl disable --now --quiet acct sysstat-collect.timer")
    lab.sh(node, "sed -i 's/^ENABLED=.*/ENABLED=\"false\"/' /etc/default/sysstat")
    off = verify(lab, lab.inventory, tmp_path / "off", ACCOUNTING)
    assert off == {"cm_host_4_19": "fail", "cm_host_4_20": "fail"}
    before = lab.sh(node, UNITS)
    harden(lab, lab.inventory, "--check", "--diff", controls=ACCOUNTING)
    assert harden_stats(lab.state)[node]["changed"] > 0
    assert lab.sh(node, UNITS) == before  # a dry run changes nothing

    harden(lab, lab.inventory, controls=ACCOUNTING)
    assert harden_stats(lab.state)[node]["changed"] > 0
    harden(lab, lab.inventory, controls=ACCOUNTING)
    assert harden_stats(lab.state)[node]["changed"] == 0
    on = verify(lab, lab.inventory, tmp_path / "on", ACCOUNTING)
    # a container accounts only for its own processes: acct's running state is the machine's
    assert on == {"cm_host_4_19": "not_verifiable", "cm_host_4_20": "pass"}
    assert lab.sh(node, "systemctl is-enabled acct").strip() == "enabled"
    assert 'ENABLED="true"' in lab.sh(node, "cat /etc/default/sysstat").splitlines()
    assert lab.sh(node, "ls /var/backups/casemate/host_baseline").count("sysstat.") == 1
    # and the collector really collects now: two runs of it (a second apart: sar shows intervals
    # between samples) leave figures sar can read
    lab.sh(
        node,
        "systemctl start sysstat-collect.service; sleep 1; systemctl start sysstat-collect.service",
    )
    assert "Average:" in lab.sh(node, "sar -u -f /var/log/sysstat/sa$(date +%d)")


UPDATES = "cm_host_4_21"
OFF = 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "0";\n'


def test_security_updates_run_daily_unless_managed_elsewhere(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    lab.sh(node, "cat > /etc/apt/apt.conf.d/20auto-upgrades", stdin=OFF)  # the installer's "no"
    assert verify(lab, lab.inventory, tmp_path / "off", UPDATES) == {UPDATES: "fail"}
    before = lab.sh(node, "ls /etc/apt/apt.conf.d; apt-config dump | grep -i unattended")
    elsewhere = lab.inventory_with(
        tmp_path / "elsewhere.yml", {node: {"host_baseline_unattended_upgrades": False}}
    )
    harden(lab, elsewhere, controls=UPDATES)
    assert harden_stats(lab.state)[node]["changed"] == 0  # updates managed elsewhere: left alone
    harden(lab, lab.inventory, "--check", "--diff", controls=UPDATES)
    assert harden_stats(lab.state)[node]["changed"] > 0
    assert lab.sh(node, "ls /etc/apt/apt.conf.d; apt-config dump | grep -i unattended") == before

    harden(lab, lab.inventory, controls=UPDATES)
    assert harden_stats(lab.state)[node]["changed"] > 0
    harden(lab, lab.inventory, controls=UPDATES)
    assert harden_stats(lab.state)[node]["changed"] == 0
    assert verify(lab, lab.inventory, tmp_path / "on", UPDATES) == {UPDATES: "pass"}
    assert lab.sh(node, "cat /etc/apt/apt.conf.d/20auto-upgrades") == OFF  # Debian's file kept
    # unattended-upgrade itself (a dry run: the node has no mirror) takes the security origin
    said = lab.sh(
        node, "unattended-upgrade --dry-run --debug 2>&1 | grep -i 'allowed origins' || true"
    )
    assert "Debian-Security" in said, said
    held = lab.sh(node, "apt-config dump Unattended-Upgrade::Package-Blacklist")
    assert '"^docker\\.io$"' in held and '"^containerd$"' in held, held  # never restarted by it
