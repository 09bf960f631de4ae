"""The host roles' planning, without a host: what the sysctl role writes and applies (never a
machine-wide parameter inside a container, what the engines need kept, stricter values kept, other
controls' keys left alone), and how host_baseline rewrites login.defs and narrows modes."""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from casemate.locations import content_root

ROLES = content_root() / "roles"


def module(role: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROLES / role / "library" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


SYSCTL = module("sysctl", "sysctl_facts")
BASELINE = module("host_baseline", "host_baseline_facts")
DEFAULTS = yaml.safe_load((ROLES / "sysctl" / "defaults" / "main.yml").read_text())
VARS = yaml.safe_load((ROLES / "sysctl" / "vars" / "main.yml").read_text())
EVERY_KEY = sorted({k for keys in VARS["sysctl_controls"].values() for k in keys})


def params(wanted: list[str] | None = None) -> dict[str, Any]:
    return {
        "wanted": EVERY_KEY if wanted is None else wanted,
        "settings": DEFAULTS["sysctl_settings"],
        "engine_settings": DEFAULTS["sysctl_engine_settings"],
        "no_engine_settings": DEFAULTS["sysctl_no_engine_settings"],
        "accepted": DEFAULTS["sysctl_accepted"],
        "cni_owned": DEFAULTS["sysctl_cni_owned"],
        "machine_wide": VARS["sysctl_machine_wide"],
    }


def running(**overrides: str | None) -> dict[str, str | None]:
    """A kernel where every key exists with a value none of the controls wants."""
    values: dict[str, str | None] = dict.fromkeys(EVERY_KEY, "7")
    values.update(overrides)
    return values


def keys_of(content: str) -> dict[str, str]:
    return SYSCTL.parse_file(content)  # type: ignore[no-any-return]


def test_inside_a_container_no_machine_wide_key_is_written_or_applied() -> None:
    old = "kernel.kptr_restrict = 1\nfs.suid_dumpable = 0\nnet.ipv4.tcp_syncookies = 1\n"
    content, apply, notes = SYSCTL.plan(params(), "docker", ["dockerd"], running(), old)
    written = keys_of(content)
    machine = ("kernel.", "fs.", "vm.")
    assert written and not [k for k in written if k.startswith(machine)]
    assert apply and not [a for a in apply if a.startswith(machine)]
    assert all(k.startswith("net.") for k in written)
    assert "kernel.*, fs.* and vm.* belong to the whole machine" in content
    assert any("not managed on this host" in n and "kernel.kptr_restrict" in n for n in notes)


def test_on_a_real_host_everything_is_written_and_applied() -> None:
    content, apply, _ = SYSCTL.plan(params(), "", [], running(), "")
    written = keys_of(content)
    assert written["kernel.kptr_restrict"] == "1"
    assert written["net.ipv4.ip_forward"] == "0"  # no engine: no forwarding
    assert "net.bridge.bridge-nf-call-iptables" not in written  # engine settings only with one
    assert "fs.suid_dumpable=0" in apply
    again, apply2, _ = SYSCTL.plan(params(), "", [], {**running(), **written}, content)
    assert (again, apply2) == (content, [])  # a second run changes nothing


def test_an_engine_keeps_forwarding_and_bridge_netfilter() -> None:
    content, apply, notes = SYSCTL.plan(params(), "", ["dockerd", "containerd"], running(), "")
    written = keys_of(content)
    assert written["net.ipv4.ip_forward"] == "1"
    assert written["net.bridge.bridge-nf-call-iptables"] == "1"
    assert "net.ipv4.ip_forward=1" in apply
    assert any(n.startswith("kept for the container engine (dockerd, containerd)") for n in notes)


def test_a_kubelet_leaves_rp_filter_to_the_cni_and_a_missing_key_is_skipped() -> None:
    kernel = running(**{"kernel.yama.ptrace_scope": None})
    content, apply, notes = SYSCTL.plan(params(), "", ["kubelet"], kernel, "")
    written = keys_of(content)
    assert "net.ipv4.conf.all.rp_filter" not in written
    assert "kernel.yama.ptrace_scope" not in written
    assert not [a for a in apply if "rp_filter" in a or "yama" in a]
    assert any("left to the CNI plugin" in n for n in notes)
    assert any(n == "not on this kernel: kernel.yama.ptrace_scope" for n in notes)


def test_stricter_running_values_are_kept() -> None:
    kernel = running(**{"kernel.yama.ptrace_scope": "3", "kernel.unprivileged_bpf_disabled": "1"})
    content, apply, notes = SYSCTL.plan(params(), "", [], kernel, "")
    assert not [a for a in apply if "ptrace_scope" in a or "unprivileged_bpf" in a]
    assert keys_of(content)["kernel.yama.ptrace_scope"] == "1"  # the file holds the setting
    assert any("kernel.yama.ptrace_scope=3" in n for n in notes)


def test_keys_of_controls_not_selected_stay_as_they_are() -> None:
    old = "net.ipv4.tcp_syncookies = 1\nnet.ipv4.conf.all.log_martians = 1\n"
    kernel = running(**{"net.ipv4.tcp_syncookies": "1", "net.ipv4.conf.all.log_martians": "1"})
    content, apply, _ = SYSCTL.plan(params(["kernel.dmesg_restrict"]), "", [], kernel, old)
    assert keys_of(content) == {
        "kernel.dmesg_restrict": "1",
        "net.ipv4.tcp_syncookies": "1",
        "net.ipv4.conf.all.log_martians": "1",
    }
    assert apply == ["kernel.dmesg_restrict=1"]


def test_login_defs_sets_each_key_once(tmp_path: Path) -> None:
    path = tmp_path / "login.defs"
    path.write_text(
        "# UMASK 077\nUMASK\t\t022\nPASS_MAX_DAYS 99999\nUMASK 002\nMAIL_DIR /var/mail\n"
    )
    wanted = {"UMASK": "027", "PASS_MAX_DAYS": 365, "ENCRYPT_METHOD": "YESCRYPT"}
    found = BASELINE.login_defs(str(path), wanted)
    assert found["new"].splitlines() == [
        "# UMASK 077",
        "UMASK\t027",
        "PASS_MAX_DAYS\t365",
        "# UMASK 002  (casemate: set above)",
        "MAIL_DIR /var/mail",
        "# set by casemate",
        "ENCRYPT_METHOD\tYESCRYPT",
    ]
    path.write_text(found["new"])
    assert BASELINE.login_defs(str(path), wanted)["new"] == found["new"]  # idempotent
    assert BASELINE.login_defs(str(tmp_path / "none"), wanted)["exists"] is False


def test_key_value_files_get_each_key_once_and_unwanted_flags_commented(tmp_path: Path) -> None:
    path = tmp_path / "faillock.conf"
    path.write_text("# deny = 3\ndeny=10\neven_deny_root\nsilent\ndeny = 2\n")
    wanted = {"deny": 5, "unlock_time": 900, "even_deny_root": None}
    found = BASELINE.assign_file(str(path), wanted)
    assert found["new"].splitlines() == [
        "# deny = 3",
        "deny = 5",
        "# even_deny_root  (casemate: off)",
        "silent",
        "# deny = 2  (casemate: set above)",
        "# set by casemate",
        "unlock_time = 900",
    ]
    path.write_text(found["new"])
    assert BASELINE.assign_file(str(path), wanted)["new"] == found["new"]  # idempotent
    path.write_text("deny   =   5\nunlock_time 900\n")  # other spellings of the same value stay
    assert BASELINE.assign_file(str(path), wanted)["new"] == "deny   =   5\nunlock_time 900\n"
    missing = BASELINE.assign_file(str(tmp_path / "none"), {"minlen": 14})
    assert missing == {"exists": False, "content": "", "new": "# set by casemate\nminlen = 14\n"}


# Debian 12's common-* stacks as pam-auth-update writes them, with and without casemate's profiles
AUTH = (
    "auth\t[success=1 default=ignore]\tpam_unix.so nullok\n"
    "auth\trequisite\t\t\tpam_deny.so\nauth\trequired\t\t\tpam_permit.so\n"
)
AUTH_FAILLOCK = (
    "auth\trequisite\t\t\tpam_faillock.so preauth\n"
    "auth\t[success=2 default=ignore]\tpam_unix.so nullok\n"
    "auth\t[default=die]\t\t\tpam_faillock.so authfail\n"
    "auth\trequisite\t\t\tpam_deny.so\nauth\trequired\t\t\tpam_permit.so\n"
)
ACCOUNT = "account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so\n"
PASSWORD = "password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt\n"
PASSWORD_QUALITY = "password\trequisite\t\t\tpam_pwquality.so retry=3\n" + PASSWORD.replace(
    "obscure", "obscure use_authtok try_first_pass"
)


def test_pam_state_finds_pwquality_and_faillock_only_where_they_work() -> None:
    plain = {"auth": AUTH, "account": ACCOUNT, "password": PASSWORD}
    assert BASELINE.pam_state(plain) == {"pwquality": False, "faillock": False}
    hardened = {
        "auth": AUTH_FAILLOCK,
        "account": "account\trequired\t\t\tpam_faillock.so\n" + ACCOUNT,
        "password": PASSWORD_QUALITY,
    }
    assert BASELINE.pam_state(hardened) == {"pwquality": True, "faillock": True}
    # commented out, or without its account line, or after pam_unix stored the password: no use
    commented = {
        **hardened,
        "auth": AUTH_FAILLOCK.replace("auth\trequisite\t\t\tpam_f", "#auth pam_f"),
    }
    assert BASELINE.pam_state(commented)["faillock"] is False
    assert BASELINE.pam_state({**hardened, "account": ACCOUNT})["faillock"] is False
    late = {**hardened, "password": PASSWORD + "password\trequisite\tpam_pwquality.so\n"}
    assert BASELINE.pam_state(late)["pwquality"] is False
    assert BASELINE.pam_state({}) == {"pwquality": False, "faillock": False}  # no stacks at all


def test_modes_are_narrowed_never_widened(tmp_path: Path) -> None:
    loose, tight = tmp_path / "crontab", tmp_path / "cron.d"
    loose.write_text("")
    loose.chmod(0o644)
    tight.mkdir()
    tight.chmod(0o500)
    fixes = BASELINE.mode_fixes(
        {str(loose): "0600", str(tight): "0700", str(tmp_path / "x"): "0600"}
    )
    by_path = {f["path"]: f for f in fixes}
    assert by_path[str(loose)]["fixed"] == "0600"
    if os.geteuid() == 0:  # as root the files are root:root, so only the mode can be wrong
        assert str(tight) not in by_path


class Systemctl:
    def __init__(self, fragment: str) -> None:
        self.fragment = fragment

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        assert argv == ["systemctl", "show", "tmp.mount", "-p", "FragmentPath"]
        return 0, f"FragmentPath={self.fragment}\n", ""


def test_tmp_mount_plans_the_fstab_line_or_the_unit(monkeypatch: Any, tmp_path: Path) -> None:
    files = {
        "/proc/self/mountinfo": "1 0 0:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:2 / /tmp rw,nodev - tmpfs tmpfs rw\n",
        "/etc/fstab": "# /tmp\ntmpfs /tmp tmpfs defaults,nodev 0 0\n",
    }
    monkeypatch.setattr(BASELINE, "read_text", files.get)
    found = BASELINE.tmp_mount(Systemctl(""), ["nosuid", "nodev", "noexec"])
    assert found["mounted"] and found["missing"] == ["nosuid", "noexec"]
    assert found["fstab"]["new"] == "tmpfs\t/tmp\ttmpfs\tdefaults,nodev,nosuid,noexec\t0\t0"
    assert found["unit"] is None
    unit = tmp_path / "tmp.mount"
    unit.write_text("[Mount]\nWhat=tmpfs\nOptions=mode=1777,strictatime,nosuid,nodev\n")
    files.update({"/etc/fstab": "", str(unit): unit.read_text()})
    found = BASELINE.tmp_mount(Systemctl(str(unit)), ["nosuid", "nodev", "noexec"])
    assert found["fstab"] is None
    assert found["unit"]["options"] == "mode=1777,strictatime,nosuid,nodev,noexec"


def test_the_sysctl_module_wants_the_keys_of_the_selected_controls_only() -> None:
    controls = VARS["sysctl_controls"]
    assert SYSCTL.wanted_keys(controls, ["cm_host_3_16"]) == ["net.ipv4.tcp_syncookies"]
    # cm_host_3_17 and cm_host_3_18 share ip_forward: asked for once
    assert SYSCTL.wanted_keys(controls, ["cm_host_3_18", "cm_host_3_17"]) == ["net.ipv4.ip_forward"]
    assert SYSCTL.wanted_keys(controls, list(controls)) == list(dict.fromkeys(EVERY_KEY_IN_ORDER))
    assert SYSCTL.wanted_keys(controls, []) == []


EVERY_KEY_IN_ORDER = [k for keys in VARS["sysctl_controls"].values() for k in keys]


def test_the_sysctl_module_refuses_a_system_the_role_does_not_support() -> None:
    supported = DEFAULTS["sysctl_supported_os"]
    assert SYSCTL.unsupported({"id": "debian", "version_id": "12"}, supported) is None
    refused = SYSCTL.unsupported({"id": "ubuntu", "version_id": "24.04"}, supported)
    assert refused is not None and refused.startswith("ubuntu 24.04 is not a supported system")
    assert refused.endswith("nothing was changed")
    assert SYSCTL.unsupported({"id": "", "version_id": ""}, supported).startswith("unknown ")


def test_the_sysctl_module_names_machine_wide_keys_a_plan_would_set() -> None:
    prefixes = VARS["sysctl_machine_wide"]
    content = "# kernel.kptr_restrict = 1 (a comment)\nnet.ipv4.tcp_syncookies = 1\nfs.suid_dumpable = 0\n"
    assert SYSCTL.machine_wide_in(content, ["kernel.dmesg_restrict=1"], prefixes) == [
        "fs.suid_dumpable",
        "kernel.dmesg_restrict",
    ]
    assert SYSCTL.machine_wide_in("net.ipv4.ip_forward = 1\n", [], prefixes) == []


def fake_proc(root: Path, tree: dict[int, tuple[str, int, int]], environ: dict[int, str]) -> str:
    """A /proc of real files: pid -> (command, parent, uid), and the environment of some."""
    for pid, (comm, ppid, uid) in tree.items():
        d = root / str(pid)
        d.mkdir(parents=True)
        (d / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1\n")
        (d / "status").write_text(f"Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
        (d / "environ").write_bytes(environ.get(pid, "").encode().replace(b"\n", b"\0"))
    return str(root)


def test_faillock_guard_reads_the_connecting_user_from_the_ssh_session(tmp_path: Path) -> None:
    """cm_host_4_18's guard names the user Ansible connected as the way the sshd lockout guard
    does (the host reader's find_session): over SSH with become through su there is no SUDO_USER,
    and the user who could be locked out is the session's, not root. Without an sshd among the
    parents (docker exec) sudo's SUDO_USER names it, else the process's own user."""
    nobody = pwd.getpwnam("nobody")
    # python3 (50, root) <- su (40) <- sh (30, nobody) <- sshd-session (20, nobody) <- sshd (10)
    tree = {50: ("python3", 40, 0), 40: ("su", 30, 0), 30: ("sh", 20, nobody.pw_uid),
            20: ("sshd-session", 10, nobody.pw_uid), 10: ("sshd", 1, 0)}  # fmt: skip
    proc = fake_proc(tmp_path / "ssh", tree, {30: "SSH_CONNECTION=10.0.0.5 50000 10.0.0.9 22"})
    found = BASELINE.connecting_user(50, proc, environ={})
    assert (found["name"], found["via_ssh"]) == ("nobody", True)
    assert found["groups"] == sorted(
        grp.getgrgid(g).gr_name for g in os.getgrouplist("nobody", nobody.pw_gid)
    )
    local = fake_proc(tmp_path / "exec", {50: ("python3", 40, 0), 40: ("sudo", 0, 0)}, {})
    assert BASELINE.connecting_user(50, local, environ={"SUDO_USER": "nobody"})["name"] == "nobody"
    assert BASELINE.connecting_user(50, local, environ={})["name"] == pwd.getpwuid(os.getuid())[0]
