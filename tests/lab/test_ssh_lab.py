"""SSH hardening and SSH off on real lab nodes, reached over SSH at their bridge addresses (the only
address a test targets) or through the Docker connection: logins before and after, the lockout
guard, commit-confirmed with its host-side rollback, validation, and profile immutable. Hardening and
drift run on a lab of the default release, the guard and the refused or rolled-back changes on one of
Debian 13 (CI's split, docs/testing.md): CASEMATE_TEST_RELEASE runs them all on one release."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import ssh
from .conftest import (
    CASEMATE,
    FIXTURES,
    Lab,
    harden_stats,
    lab_name,
    last_run,
    open_lab,
    report_of,
    results,
)

NAME = lab_name("sshtest")
HARDENING = tuple(f"cm_host_1_{n}" for n in (*range(1, 19), 23, 24, 25))
OFF = tuple(f"cm_host_1_{n}" for n in range(19, 23))
CONTROLS = ",".join(HARDENING)
# what sshd reads and what it makes of it: equal before and after means nothing changed
SNAPSHOT = (
    "sha256sum /etc/ssh/sshd_config /etc/ssh/sshd_config.d/* /etc/ssh/ssh_host_* 2>&1; "
    "sshd -T | sha256sum; systemctl is-active ssh"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Two nodes for hardening over SSH, drift, the Match block and the break-glass path."""
    with open_lab(tmp_path_factory, NAME, 2) as bed:
        yield bed


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Two nodes for the lockout guard, refused and rolled-back changes and profile immutable: on
    Debian 13 in CI's split (docs/testing.md), where (OpenSSH 10, systemd 257) the reload job itself
    fails when sshd dies at a reload (Debian 12's reload succeeds and sshd stops just after)."""
    with open_lab(tmp_path_factory, lab_name("sshguard"), 2, ci_release="trixie") as bed:
        yield bed


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ssh.keypair(tmp_path_factory.mktemp("keys"), ssh.USER)


def wait_for_sshd(lab: Lab, node: str) -> None:
    for _ in range(60):
        if lab.sh(node, "systemctl is-active ssh || true").strip() == "active":
            return
        time.sleep(0.5)
    pytest.fail(f"{node}: sshd did not start")


def ssh_node(lab: Lab, node: str, key: Path, tmp: Path, **hostvars: Any) -> tuple[str, Path]:
    """The node's bridge address and an inventory reaching it over SSH as the sudo user."""
    wait_for_sshd(lab, node)
    ssh.add_user(lab, node, ssh.USER, key, password=ssh.PASSWORD)
    inventory = ssh.ssh_inventory(
        lab, tmp / f"{node}.yml", {node: hostvars}, user=ssh.USER, key=key
    )
    return ssh.bridge_ip(node), inventory


def ssh_results(lab: Lab, inventory: Path, out: Path, *, ids: tuple[str, ...] = HARDENING,
                profile: str = "standard", check: int | None = None) -> dict[str, str]:  # fmt: skip
    lab.casemate("verify", "-i", str(inventory), "--controls", ",".join(ids), "--profile", profile,
                 "--report-dir", str(out), check=check)  # fmt: skip
    report = report_of(out)
    (host,) = {r["host"] for r in report["results"]}
    return {c: r["status"] for c, r in results(report, host).items() if c in ids}


def failure_message(lab: Lab, node: str) -> str:
    meta = json.loads((last_run(lab.state, "harden") / "run.json").read_text())
    message: str = meta["messages"][node][-1]
    return message


def test_harden_over_ssh_keeps_key_login_and_open_sessions(
    lab: Lab, key: Path, tmp_path: Path
) -> None:
    node = lab.nodes[0]
    ip, inventory = ssh_node(lab, node, key, tmp_path, sshd_allow_groups=[ssh.GROUP])
    ssh.authorize_root(lab, node, key)
    assert ssh.login(ip, ssh.USER, password=ssh.PASSWORD) == "ok"  # before: passwords work
    assert ssh.login(ip, ssh.USER, key=key) == "ok"
    assert ssh.login(ip, "root", key=key) == "ok"  # Debian lets root in with a key
    before = ssh_results(lab, inventory, tmp_path / "before", check=1)
    # Debian's defaults already meet four controls; casemate changes the other seventeen
    passing = {"cm_host_1_3", "cm_host_1_4", "cm_host_1_15", "cm_host_1_17"}
    assert {c for c, s in before.items() if s == "pass"} == passing
    assert {c for c, s in before.items() if s == "fail"} == set(HARDENING) - passing

    snapshot = lab.sh(node, SNAPSHOT)
    lab.casemate(
        "harden", "-i", str(inventory), "--controls", CONTROLS, "--check", "--diff", check=0
    )
    assert harden_stats(lab.state)[node]["changed"] > 0
    assert lab.sh(node, SNAPSHOT) == snapshot  # a dry run changes nothing

    session = ssh.Session.open(ip, ssh.USER, key)
    try:
        lab.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=0)
        # the confirmation was a new login after the reload, not the shared connection: read the
        # journal now, before this test logs in by itself
        log = lab.sh(node, "journalctl -u ssh --no-pager -o cat")
        assert harden_stats(lab.state)[node]["changed"] > 0
        assert session.run("echo still-here").strip() == "still-here"  # survived the reload
    finally:
        session.close()
    reload_at = log.rindex("Received SIGHUP")
    assert f"Accepted publickey for {ssh.USER}" in log[reload_at:]
    assert ssh.login(ip, ssh.USER, key=key) == "ok"
    assert ssh.login(ip, ssh.USER, password=ssh.PASSWORD).startswith("refused")
    assert ssh.login(ip, "root", key=key).startswith("refused")
    lab.sh(node, "sshd -t")
    assert lab.sh(node, "ls /etc/ssh/sshd_config.d/").split() == ["00-casemate-hardening.conf"]

    lab.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=0)
    assert harden_stats(lab.state)[node]["changed"] == 0  # idempotent
    after = ssh_results(lab, inventory, tmp_path / "after", check=0)
    assert after == dict.fromkeys(HARDENING, "pass")


def test_drifted_node_fails_every_control_then_recovers(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[1]
    wait_for_sshd(lab, node)
    lab.sh(node, "sh -s", stdin=(FIXTURES / "spoil_ssh.sh").read_text())
    inventory = lab.inventory_with(tmp_path / "inv.yml", {node: {"sshd_allow_groups": ["root"]}})
    bad = ssh_results(lab, inventory, tmp_path / "bad", check=1)
    assert bad == dict.fromkeys(HARDENING, "fail"), "a check that cannot fail is a bug"

    lab.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=0)
    lab.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=0)
    assert harden_stats(lab.state)[node]["changed"] == 0
    good = ssh_results(lab, inventory, tmp_path / "good", check=0)
    assert good == dict.fromkeys(HARDENING, "pass")
    # the drifted lines came first in the main file: casemate's block now opens it
    assert lab.sh(node, "head -n 1 /etc/ssh/sshd_config").startswith("# BEGIN casemate sshd")
    assert lab.sh(node, "ls /etc/ssh/ssh_host_rsa2048_key 2>&1 || true").endswith(
        "No such file or directory\n"
    )
    assert "# disabled by casemate (weak host key): HostKey /etc/ssh/ssh_host_rsa2048_key" in (
        lab.sh(node, "cat /etc/ssh/sshd_config.d/10-legacy-keys.conf")
    )
    # the Match block at the end no longer gives passwords, root login or X11 back
    main = lab.sh(node, "cat /etc/ssh/sshd_config")
    for line in ("PasswordAuthentication yes", "PermitRootLogin yes", "X11Forwarding yes"):
        assert f"# disabled by casemate (a Match block undid casemate's setting): {line}" in main


def test_match_block_that_gives_passwords_back_fails_the_check(
    lab: Lab, key: Path, tmp_path: Path
) -> None:
    """Plain sshd -T leaves a Match User block out: a hardened node whose Match block turns
    password login back on for every user must fail cm_host_1_2 (and passwords really work there), and the next
    harden takes the line out again."""
    node = lab.nodes[1]
    wait_for_sshd(lab, node)
    ssh.add_user(lab, node, ssh.USER, key, password=ssh.PASSWORD)
    ip = ssh.bridge_ip(node)
    inventory = lab.inventory_with(tmp_path / "inv.yml", {node: {"sshd_allow_groups": [ssh.GROUP]}})
    lab.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=0)
    assert ssh.login(ip, ssh.USER, password=ssh.PASSWORD).startswith("refused")
    lab.sh(node, "printf 'Match User *\\n    PasswordAuthentication yes\\n' >> /etc/ssh/sshd_config"
                 " && sshd -t && systemctl reload ssh")  # fmt: skip
    wait_for_sshd(lab, node)
    assert wait_until(lambda: ssh.login(ip, ssh.USER, password=ssh.PASSWORD) == "ok", 10)
    out = tmp_path / "match"
    lab.casemate("verify", "-i", str(inventory), "--controls", CONTROLS, "--report-dir", str(out),
                 check=1)  # fmt: skip
    got = results(report_of(out), node)
    assert got["cm_host_1_2"]["status"] == "fail"
    assert (
        "passwordauthentication yes in /etc/ssh/sshd_config line " in got["cm_host_1_2"]["observed"]
    )
    assert "(Match User *)" in got["cm_host_1_2"]["observed"]
    assert got["cm_host_1_2"]["observed"].startswith(
        "passwordauthentication no (effective, sshd -T), but "
    )
    assert {c for c, r in got.items() if r["status"] != "pass"} == {"cm_host_1_2"}

    lab.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=0)
    assert ssh.login(ip, ssh.USER, password=ssh.PASSWORD).startswith("refused")
    assert ssh_results(lab, inventory, tmp_path / "fixed", check=0) == dict.fromkeys(
        HARDENING, "pass"
    )


def test_lockout_guard_skips_the_host_and_changes_nothing(
    guard: Lab, key: Path, tmp_path: Path
) -> None:
    node = guard.nodes[0]
    ip, _ = ssh_node(guard, node, key, tmp_path)
    other = ssh.keypair(tmp_path, "legacy")
    ssh.add_user(guard, node, "legacy", other, keys_file=".ssh/authorized_keys2")
    assert ssh.login(ip, "legacy", key=other) == "ok"  # Debian reads authorized_keys2 too
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{other}.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    cases = [
        ("legacy", other, {}, (
            f"skipped, nothing changed: after this change legacy could no longer log in over SSH: "
            f"legacy's key (ssh-ed25519 {fingerprint}) is not in /home/legacy/.ssh/authorized_keys "
            "(AuthorizedKeysFile after the change); fix the access first, or set "
            "sshd_lockout_guard: false to force it (commit-confirmed still rolls back a failed login)"
        )),
        (ssh.USER, key, {"sshd_allow_groups": ["wheel"]}, (
            f"skipped, nothing changed: after this change {ssh.USER} could no longer log in over "
            f"SSH: {ssh.USER} (groups {ssh.USER}, {ssh.GROUP}) is in none of AllowGroups (wheel); "
            "fix the access first"
        )),
    ]  # fmt: skip
    snapshot = guard.sh(node, SNAPSHOT)
    for user, user_key, extra, message in cases:
        inventory = ssh.ssh_inventory(guard, tmp_path / f"{user}.yml", {node: extra}, user=user, key=user_key)  # fmt: skip
        guard.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=3)
        stats = harden_stats(guard.state)[node]
        assert (stats["changed"], stats["failed"]) == (0, 1)
        said = failure_message(guard, node)
        assert said.startswith(
            "Preflight | Lockout guard, the connecting user must still be let in: "
        )
        assert message in said
        assert "\n" not in said
        assert guard.sh(node, SNAPSHOT) == snapshot
    assert ssh.login(ip, "legacy", key=other) == "ok"


def test_invalid_option_is_refused_and_sshd_keeps_its_config(
    guard: Lab, key: Path, tmp_path: Path
) -> None:
    node = guard.nodes[0]
    ip, inventory = ssh_node(guard, node, key, tmp_path, sshd_extra_options={"NoSuchOption": "yes"})
    snapshot = guard.sh(node, SNAPSHOT)
    session = ssh.Session.open(ip, ssh.USER, key)
    try:
        guard.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=3)
        said = failure_message(guard, node)
        assert "nothing changed: sshd -t refused the new configuration: " in said
        assert "/etc/ssh/sshd_config.d/00-casemate-hardening.conf: line " in said
        assert ": Bad configuration option: NoSuchOption" in said
        assert guard.sh(node, SNAPSHOT) == snapshot
        assert session.run("echo still-here").strip() == "still-here"
    finally:
        session.close()
    assert ssh.login(ip, ssh.USER, password=ssh.PASSWORD) == "ok"  # the old config is in force


def test_failed_fresh_login_rolls_back_at_once(guard: Lab, key: Path, tmp_path: Path) -> None:
    node = guard.nodes[0]
    # forced through the guard: the change excludes the very user Ansible connects as
    ip, inventory = ssh_node(
        guard, node, key, tmp_path, sshd_lockout_guard=False, sshd_allow_users=["somebody-else"]
    )
    snapshot = guard.sh(node, SNAPSHOT)
    guard.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=3)
    stats = harden_stats(guard.state)[node]
    assert stats["unreachable"] == 0  # the refused login is handled, the host is not lost
    said = failure_message(guard, node)
    assert said.startswith(f"Fail loudly for this host: rolled back: a fresh SSH login as {ssh.USER} failed after the reload")  # fmt: skip
    # the connection's own words: OpenSSH's (linear) or mitogen's (the default strategy)
    assert "Permission denied" in said or "SSH authentication is incorrect" in said, said
    assert said.endswith("; the previous configuration is back")
    assert guard.sh(node, SNAPSHOT) == snapshot
    assert ssh.login(ip, ssh.USER, key=key) == "ok"
    assert decided_by(guard, node) == "controller"


def test_host_side_rollback_fires_without_a_confirmation(
    guard: Lab, key: Path, tmp_path: Path
) -> None:
    """The controller dies between the reload and the confirmation: the host puts the old
    configuration back by itself once the rollback delay has passed."""
    node = guard.nodes[0]
    control = tmp_path / "cp"
    control.mkdir()
    ip, inventory = ssh_node(
        guard, node, key, tmp_path,
        sshd_rollback_delay=30, ansible_timeout=150,
        ansible_control_path_dir=str(control), ansible_control_path="%(directory)s/master",
    )  # fmt: skip
    snapshot = guard.sh(node, SNAPSHOT)
    # Ansible's own connection exists before new connections are blocked; the fresh login that
    # would confirm the change then hangs, and the controller is killed while it waits.
    master = ["ssh", "-i", str(key), *ssh.NO_HOST_KEY_CHECK.split(), "-o", f"ControlPath={control}/master"]  # fmt: skip
    subprocess.run([*master, "-o", "ControlMaster=yes", "-o", "ControlPersist=300", "-N", "-f",
                    f"{ssh.USER}@{ip}"], check=True)  # fmt: skip
    block = "INPUT -p tcp --dport 22 -m conntrack --ctstate NEW -j DROP"
    guard.sh(node, f"iptables -I {block}")
    try:
        # linear: the play must ride the OpenSSH control master made before the block; mitogen
        # opens connections of its own, which the block refuses (the timer is the host's either way)
        controller = subprocess.Popen(
            [CASEMATE, "--state-dir", str(guard.state), "harden", "-i", str(inventory),
             "--controls", "cm_host_1_1,cm_host_1_2", "--strategy", "linear"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            # a bound, not a timing: the controller starts and plays up to the apply (ansible_timeout
            # 150 s); 60 s ran out on a machine under load 40
            applied = wait_until(lambda: armed_and_applied(guard, node), 240)
            assert applied, "never applied and armed"
            time.sleep(1)
        finally:
            os.killpg(controller.pid, signal.SIGKILL)
            controller.wait()
            # a killed run leaves its host lock until it expires (docs/schedule.md): the next
            # tests play this node at once, so it is removed by hand, as an operator would
            guard.sh(node, "rm -f /run/casemate/lock")
        assert guard.sh(node, SNAPSHOT) != snapshot  # applied, and nobody left to confirm it
        assert wait_until(lambda: guard.sh(node, SNAPSHOT) == snapshot, 60), "no rollback"
        assert decided_by(guard, node) == "timer"
    finally:
        guard.sh(node, f"iptables -D {block}")
        subprocess.run([*master, "-O", "exit", "x"], capture_output=True, check=False)
    assert ssh.login(ip, ssh.USER, password=ssh.PASSWORD) == "ok"


def test_sshd_that_dies_at_the_reload_is_started_again(
    guard: Lab, key: Path, tmp_path: Path
) -> None:
    """sshd -t accepts a ListenAddress the node does not have (it never binds), the reload then
    stops sshd for good (exit 255, not restarted by systemd): the rollback must start it again."""
    node = guard.nodes[0]
    ip, inventory = ssh_node(
        guard, node, key, tmp_path, sshd_extra_options={"ListenAddress": "192.0.2.1"}
    )
    snapshot = guard.sh(node, SNAPSHOT)
    guard.casemate("harden", "-i", str(inventory), "--controls", CONTROLS, check=3)
    said = failure_message(guard, node)
    assert said.startswith("Fail loudly for this host: rolled back: rolled back at once: ssh.service stopped at the reload; the previous configuration is back; ssh.service is running")  # fmt: skip
    assert guard.sh(node, "systemctl is-active ssh").strip() == "active"
    assert guard.sh(node, SNAPSHOT) == snapshot
    assert ssh.login(ip, ssh.USER, key=key) == "ok"
    assert ssh.login(ip, ssh.USER, password=ssh.PASSWORD) == "ok"  # the old config is in force
    assert decided_by(guard, node) == "apply"


def armed_and_applied(lab: Lab, node: str) -> bool:
    timers = "systemctl list-units --all --no-legend 'casemate-sshd-rollback-*.timer' || true"
    applied = "sshd -T | grep -x 'permitrootlogin no' || true"
    return bool(lab.sh(node, timers).strip()) and bool(lab.sh(node, applied).strip())


def decided_by(lab: Lab, node: str) -> str:
    """Who settled the node's latest sshd change: confirmed, timer, controller or apply."""
    latest = "ls -1d /var/backups/casemate/sshd/*/ | tail -n 1"
    return lab.sh(node, f'cat "$({latest})decided/by"').split()[0]


def wait_until(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def test_immutable_over_ssh_is_refused_and_over_docker_turns_ssh_off(
    guard: Lab, key: Path, tmp_path: Path
) -> None:
    node = guard.nodes[1]
    ip, inventory = ssh_node(guard, node, key, tmp_path)
    snapshot = guard.sh(node, SNAPSHOT)
    done = guard.casemate("harden", "-i", str(inventory), "--profile", "immutable", check=2)
    assert done.stderr == (
        f"casemate: error: profile immutable turns SSH off, but this run reaches {node} over SSH; "
        "name the break-glass path with --break-glass console|serial|docker|ssm (nothing was changed)\n"
    )
    assert guard.sh(node, SNAPSHOT) == snapshot

    # plain ansible-playbook, no casemate in front: the role refuses by itself
    play = subprocess.run(
        [str(Path(CASEMATE).parent / "ansible-playbook"), "-i", str(inventory),
         str(Path(__file__).parents[2] / "playbooks" / "harden.yml"),
         "-e", "casemate_profile=immutable", "--tags", ",".join(OFF)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(Path(__file__).parents[2] / "roles")},
    )  # fmt: skip
    assert play.returncode != 0
    assert (
        f"refusing to turn SSH off, nothing changed: Ansible reaches {node} over SSH as {ssh.USER}"
        in play.stdout
    )
    assert guard.sh(node, SNAPSHOT) == snapshot

    docker_inventory = guard.inventory_with(tmp_path / "docker.yml", {node: {}})
    before = ssh_results(
        guard, docker_inventory, tmp_path / "off-before", ids=OFF, profile="immutable", check=1
    )
    assert before == dict.fromkeys(OFF, "fail")
    guard.casemate("harden", "-i", str(docker_inventory), "--profile", "immutable", "--level", "2",
                 "--controls", ",".join(OFF), check=0)  # fmt: skip
    proof = json.loads((last_run(guard.state, "harden") / "breakglass.json").read_text())
    assert (
        proof["hosts"][node] | {"proven": True, "path": "docker", "rc": 0} == proof["hosts"][node]
    )
    assert proof["hosts"][node]["stdout"].split() == ["casemate-break-glass", "root", node]
    guard.casemate("harden", "-i", str(docker_inventory), "--profile", "immutable", "--level", "2",
                 "--controls", ",".join(OFF), check=0)  # fmt: skip
    assert harden_stats(guard.state)[node]["changed"] == 0
    after = ssh_results(
        guard, docker_inventory, tmp_path / "off-after", ids=OFF, profile="immutable", check=0
    )
    assert after == dict.fromkeys(OFF, "pass")
    assert guard.sh(node, "systemctl is-enabled ssh.service ssh.socket || true").split() == [
        "masked",
        "masked",
    ]
    assert ssh.login(ip, ssh.USER, key=key).startswith("failed")  # nothing answers on port 22


def test_immutable_over_ssh_with_the_docker_break_glass_path(
    lab: Lab, key: Path, tmp_path: Path
) -> None:
    """A host reached over SSH goes SSH-off when the operator names the Docker connection as its
    break-glass path: casemate proves that path first, then SSH goes off."""
    node = lab.nodes[0]
    glass = {"ansible_connection": "community.docker.docker", "ansible_host": node}
    ip, inventory = ssh_node(lab, node, key, tmp_path, casemate_break_glass=glass)
    lab.casemate("harden", "-i", str(inventory), "--profile", "immutable", "--level", "2",
                 "--controls", ",".join(OFF), "--break-glass", "docker", check=0)  # fmt: skip
    proof = json.loads((last_run(lab.state, "harden") / "breakglass.json").read_text())
    entry = proof["hosts"][node]
    assert entry | {"proven": True, "path": "docker", "rc": 0} == entry
    assert entry["stdout"].split() == ["casemate-break-glass", "root", node]
    docker_inventory = lab.inventory_with(tmp_path / "docker.yml", {node: {}})
    after = ssh_results(
        lab, docker_inventory, tmp_path / "off", ids=OFF, profile="immutable", check=0
    )
    assert after == dict.fromkeys(OFF, "pass")
    assert ssh.login(ip, ssh.USER, key=key).startswith("failed")  # nothing answers on port 22
