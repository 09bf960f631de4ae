"""The casemate host baseline (sections 2-4) judged on crafted hosts: a real (non-container) host
set right passes everything, one set wrong fails every automated control, including those a lab
node cannot be made to get wrong (machine-wide kernel parameters, loaded audit rules, at, a
systemd-coredump that keeps dumps); inside a container the machine-wide ones are not_verifiable
whatever their value, never pass; and the container-engine preconditions pick the right ip_forward
control and leave rp_filter to the CNI plugin where a kubelet runs."""

from __future__ import annotations

import fnmatch
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Probe, Status
from casemate.verify import judge, wanted_probes

from .obs import stat

KINDS = builtin_kinds()
ENTRIES = [
    e
    for e in select(load_catalog(None, KINDS), Selection(level=2, benchmark="casemate-host"))
    if e.section in ("2", "3", "4")
]
AUTOMATED = [e for e in ENTRIES if e.control.automated]
MACHINE_WIDE = {f"cm_host_3_{n}" for n in range(1, 9)}
AUDIT = {"cm_host_2_2", "cm_host_2_3", "cm_host_2_4"}

GOOD_SYSCTL = {
    "kernel.kptr_restrict": 1, "kernel.dmesg_restrict": 1, "kernel.randomize_va_space": 2,
    "kernel.yama.ptrace_scope": 1, "kernel.unprivileged_bpf_disabled": 2,
    "fs.protected_hardlinks": 1, "fs.protected_symlinks": 1, "fs.protected_fifos": 2,
    "fs.protected_regular": 2, "fs.suid_dumpable": 0,
    **{f"net.{v}.conf.{i}.{k}": 0 for v in ("ipv4", "ipv6") for i in ("all", "default") for k in ("accept_redirects", "accept_source_route")},
    **{f"net.ipv4.conf.{i}.{k}": 0 for i in ("all", "default") for k in ("send_redirects", "secure_redirects")},
    **{f"net.ipv4.conf.{i}.{k}": 1 for i in ("all", "default") for k in ("rp_filter", "log_martians")},
    "net.ipv4.icmp_echo_ignore_broadcasts": 1, "net.ipv4.icmp_ignore_bogus_error_responses": 1,
    "net.ipv4.tcp_syncookies": 1, "net.ipv4.ip_forward": 1,
    "net.bridge.bridge-nf-call-iptables": 1, "net.bridge.bridge-nf-call-ip6tables": 1,
}  # fmt: skip
# Each key one step off what the control wants (ptrace_scope 0, bpf 0, fifos 1, rp_filter 0...).
BAD_SYSCTL = {
    k: (0 if v else 1) if k != "kernel.randomize_va_space" and "protected_fifos" not in k else 1
    for k, v in GOOD_SYSCTL.items()
}
WATCHED = [
    "-w /etc/passwd -p wa -k identity", "-w /etc/group -p wa -k identity",
    "-w /etc/shadow -p wa -k identity", "-w /etc/gshadow -p wa -k identity",
    "-w /etc/security/opasswd -p wa -k identity", "-w /etc/sudoers -p wa -k scope",
    "-w /etc/sudoers.d -p wa -k scope", "-w /usr/bin/runsc -k runtime",
]  # fmt: skip
AIDE_DB = "/var/lib/aide/aide.db"
CRON_DIRS = ["/etc/cron.d", *(f"/etc/cron.{p}ly" for p in ("hour", "dai", "week", "month", "year"))]


@dataclass
class Host:
    """What a crafted host answers to each probe."""

    container: str = ""
    sysctl: dict[str, Any] = field(default_factory=lambda: dict(GOOD_SYSCTL))
    engines: str = "dockerd containerd"  # engine commands on the search path
    running: str = ""  # engine processes running
    interfaces: str = "lo eth0"
    groups: tuple[str, ...] = ()  # inventory groups, as verify passes them (vars group_names)
    engine_host: str | None = None  # the inventory's sysctl_engine_host
    modprobe: str = ""
    rules: str = "\n".join(WATCHED) + "\n"
    loaded: dict[str, Any] = field(
        default_factory=lambda: {"rc": 0, "stdout": "\n".join(WATCHED) + "\n", "stderr": ""}
    )
    auditd: str = "enabled"
    auditd_active: str = "active"
    pam: str = "yescrypt rounds=5"
    pwquality_stack: str = "pam_pwquality first"
    faillock_stack: str = "preauth pam_unix authfail account"
    packages: tuple[str, ...] = (
        *("libpam-pwquality", "acct", "sysstat", "unattended-upgrades", "aide", "aide-common"),
    )
    apt_left_out: str = ""  # what apt's configuration leaves out of daily security updates
    coredumpd: str = "installed"
    cron: str = "installed"
    at: str = "installed"
    banners: str = ""  # banner files missing, empty or naming the OS
    modules_config: str = ""  # modules modprobe's configuration still lets load
    modules_loaded: str = ""  # those loaded now
    units: dict[str, str] = field(
        default_factory=lambda: {
            "avahi-daemon.service": "disabled",
            **dict.fromkeys(
                (
                    "acct.service",
                    "sysstat.service",
                    "sysstat-collect.timer",
                    "apt-daily.timer",
                    "apt-daily-upgrade.timer",
                    "dailyaidecheck.timer",
                ),
                "enabled",
            ),
        }
    )
    texts: dict[str, str] = field(
        default_factory=lambda: {
            "/etc/security/limits.conf": "# stock\n",
            "/etc/security/limits.d/99-zz-casemate-core.conf": "* hard core 0\n",
            "/etc/systemd/coredump.conf": "[Coredump]\n#Storage=external\n",
            "/etc/systemd/coredump.conf.d/99-zz-casemate.conf": "[Coredump]\nStorage=none\nProcessSizeMax=0\n",
            "/etc/login.defs": "ENCRYPT_METHOD YESCRYPT\nPASS_MAX_DAYS 365\nPASS_MIN_DAYS 1\n"
            "PASS_WARN_AGE 7\nUMASK 027\n",
            "/proc/self/mountinfo": "1 0 0:1 / / rw - ext4 /dev/sda1 rw\n"
            "2 1 0:2 / /tmp rw,nosuid,nodev,noexec - tmpfs tmpfs rw\n",
            "/etc/security/pwquality.conf": "# minlen = 8\nminlen = 14\nminclass = 4\nmaxrepeat = 3\n",
            "/etc/security/faillock.conf": "deny = 5\nunlock_time = 900\nadmin_group = sudo\n",
            "/etc/default/sysstat": 'ENABLED="true"\n',
        }
    )
    files: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            **{p: stat(p) for p in ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow")},
            "/etc/security/opasswd": stat("/etc/security/opasswd", "0600"),
            "/etc/sudoers": stat("/etc/sudoers", "0440"),
            "/etc/sudoers.d": stat("/etc/sudoers.d", "0755", kind="dir"),
            "/etc/crontab": stat("/etc/crontab", "0600"),
            **{d: stat(d, "0700", kind="dir") for d in CRON_DIRS},
            "/etc/cron.allow": stat("/etc/cron.allow", "0640"),
            "/etc/at.allow": stat("/etc/at.allow", "0600"),
            AIDE_DB: {**stat(AIDE_DB, "0600"), "size": 81920},
        }
    )

    def commands(self) -> list[tuple[str, str]]:
        return [
            ('E="dockerd', self.engines),
            ("modprobe.d", self.modprobe),
            ("pam_pwquality first", self.pwquality_stack),
            ("pam_faillock", self.faillock_stack),
            ("apt-config dump", self.apt_left_out),
            ("common-password", self.pam),
            ("systemd-coredump", self.coredumpd),
            ("/usr/sbin/cron", self.cron),
            ("/usr/bin/at", self.at),
            ("/etc/issue.net", self.banners),
            ("modprobe -c", self.modules_config),
            ("/proc/modules", self.modules_loaded),
        ]

    def answer(self, probe: Probe) -> dict[str, Any]:
        kind, arg = probe.kind, probe.arg
        if kind == "engines":
            return {
                "commands": {n: f"/usr/bin/{n}" for n in self.engines.split()},
                "running": self.running.split(),
                "interfaces": self.interfaces.split(),
            }
        if kind == "package":
            return {"manager": "dpkg", "installed": arg in self.packages, "version": "1"}
        if kind == "binary":
            return {"paths": ["/usr/bin/runsc"] if arg == "runsc" else []}
        if kind == "sysctl":
            value = self.sysctl.get(arg)
            return {"exists": False} if value is None else {"exists": True, "value": str(value)}
        if kind == "stat":
            return self.files.get(arg, {"path": arg, "exists": False})
        if kind == "glob":
            return {
                "matches": [s for p, s in sorted(self.files.items()) if fnmatch.fnmatch(p, arg)]
            }
        if kind == "read":
            found = self.texts.get(arg)
            return (
                {"path": arg, "exists": False}
                if found is None
                else {"path": arg, "exists": True, "content": found}
            )
        if kind == "read_glob" and arg == "/etc/audit/rules.d/*.rules":
            return {"files": [{"path": "/etc/audit/rules.d/casemate.rules", "exists": True, "content": self.rules}]}  # fmt: skip
        if kind == "read_glob":
            return {"files": [{"path": p, "exists": True, "content": c} for p, c in sorted(self.texts.items()) if fnmatch.fnmatch(p, arg)]}  # fmt: skip
        if kind == "unit":
            state = self.units.get(arg)
            props = (
                {"LoadState": "loaded", "UnitFileState": state, "ActiveState": "active" if state == "enabled" else "inactive"}
                if state
                else {"LoadState": "not-found", "UnitFileState": "", "ActiveState": "inactive"}
            )  # fmt: skip
            if arg == "auditd.service":
                props = {
                    "LoadState": "loaded",
                    "UnitFileState": self.auditd,
                    "ActiveState": self.auditd_active,
                }
            return {"properties": props, "fragment": {"exists": bool(state)}, "dropins": []}
        if arg.startswith("auditctl"):
            return self.loaded
        out = next((o for needle, o in self.commands() if needle in arg), None)
        assert out is not None, f"no crafted answer for {probe.key}"
        return {"rc": 0, "stdout": out + "\n", "stderr": ""}

    def observations(self) -> Observations:
        data = {p.key: self.answer(p) for p in wanted_probes(ENTRIES)}
        hostvars: dict[str, Any] = {"group_names": list(self.groups)}
        if self.engine_host is not None:
            hostvars["sysctl_engine_host"] = self.engine_host
        return Observations(
            host="h1", facts={"container": self.container}, data=data, vars=hostvars
        )


def verdicts(host: Host) -> dict[str, Status]:
    o = host.observations()
    return {e.id: judge(e, o).status for e in AUTOMATED}


def bad_host(**changes: Any) -> Host:
    wrong = Host(
        sysctl=dict(BAD_SYSCTL),
        modprobe="install overlay /bin/false",
        rules="",
        loaded={"rc": 0, "stdout": "No rules\n", "stderr": ""},
        auditd="disabled",
        auditd_active="failed",
        pam="md5 rounds=none",
        pwquality_stack="pam_unix without pam_pwquality before it",
        faillock_stack="pam_unix",
        packages=(),
        apt_left_out="unattended-upgrade not run daily",
        units={"avahi-daemon.service": "enabled", "cups.socket": "enabled"},
        banners="/etc/issue: names the OS: Debian GNU/Linux 12 \\n \\l",
        modules_config="usb_storage: loadable\nusb_storage: not blacklisted",
        modules_loaded="usb_storage",
    )
    wrong.texts.update(
        {
            "/etc/security/limits.d/99-zz-casemate-core.conf": "* hard core unlimited\n",
            "/etc/systemd/coredump.conf.d/99-zz-casemate.conf": "[Coredump]\nStorage=external\n",
            "/etc/login.defs": "ENCRYPT_METHOD MD5\nPASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\n"
            "PASS_WARN_AGE 0\nUMASK 022\n",
            "/proc/self/mountinfo": "1 0 0:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:2 / /tmp rw,nodev - tmpfs tmpfs rw\n",
            "/etc/security/pwquality.conf": "minlen = 8\nminclass = 1\n",
            "/etc/security/faillock.conf": "deny = 10\neven_deny_root\n",
            "/etc/default/sysstat": 'ENABLED="false"\n',
        }
    )
    wrong.files.update(
        {
            "/etc/crontab": stat("/etc/crontab", "0644"),
            **{d: stat(d, "0755", kind="dir") for d in CRON_DIRS},
            "/etc/cron.deny": stat("/etc/cron.deny", "0644"),
            "/etc/at.deny": stat("/etc/at.deny", "0640"),
        }
    )
    del wrong.files["/etc/cron.allow"], wrong.files["/etc/at.allow"], wrong.files[AIDE_DB]
    return replace(wrong, **changes)


def test_the_host_sections_are_all_there() -> None:
    assert {e.id for e in ENTRIES} == {
        *(f"cm_host_2_{n}" for n in range(1, 5)),
        *(f"cm_host_3_{n}" for n in range(1, 21)),
        *(f"cm_host_4_{n}" for n in range(1, 23)),
    }
    assert {e.id for e in ENTRIES if e.control.mode == "check-only"} == {
        "cm_host_3_20",
        "cm_host_4_6",
    }


def test_a_real_host_set_right_passes_everything() -> None:
    got = verdicts(Host())
    assert {c: s for c, s in got.items() if s is not Status.PASS} == {
        "cm_host_3_17": Status.NOT_APPLICABLE  # an engine runs: cm_host_3_18 applies instead
    }


def test_a_real_host_set_wrong_fails_every_automated_control() -> None:
    got = verdicts(bad_host())
    assert {c: s for c, s in got.items() if s is not Status.FAIL} == {
        "cm_host_3_17": Status.NOT_APPLICABLE
    }
    # without an engine, forwarding must be off; the engine's own controls do not apply
    plain = verdicts(bad_host(engines="", sysctl={**BAD_SYSCTL, "net.ipv4.ip_forward": 1}))
    assert plain["cm_host_3_17"] is Status.FAIL
    assert {plain[c] for c in ("cm_host_3_18", "cm_host_3_19", "cm_host_3_20")} == {
        Status.NOT_APPLICABLE
    }
    assert (
        verdicts(Host(engines="", sysctl={**GOOD_SYSCTL, "net.ipv4.ip_forward": 0}))["cm_host_3_17"]
        is Status.PASS
    )


def test_rules_in_files_but_not_loaded_fail_on_a_real_host() -> None:
    got = verdicts(Host(loaded={"rc": 0, "stdout": "No rules\n", "stderr": ""}))
    assert {c for c, s in got.items() if s is Status.FAIL} == AUDIT


def test_inside_a_container_machine_wide_and_audit_are_never_pass() -> None:
    for host in (Host(container="docker"), bad_host(container="docker")):
        got = verdicts(host)
        assert {got[c] for c in MACHINE_WIDE - {"cm_host_3_4"}} == {Status.NOT_VERIFIABLE}
    good = verdicts(Host(container="docker", loaded={"rc": 1, "stdout": "", "stderr": "refused"}))
    assert {good[c] for c in AUDIT} == {Status.NOT_VERIFIABLE}
    assert {c: s for c, s in good.items() if s is Status.FAIL} == {}
    # the rule files are still judged: missing rules fail even where loading cannot be seen
    assert {verdicts(bad_host(container="docker"))[c] for c in AUDIT} == {Status.FAIL}


def test_a_kernel_without_a_key_is_not_concerned() -> None:
    sysctl = {k: v for k, v in GOOD_SYSCTL.items() if "yama" not in k and "ipv6" not in k}
    got = verdicts(Host(sysctl=sysctl))
    assert got["cm_host_3_4"] is Status.NOT_APPLICABLE  # no Yama
    assert got["cm_host_3_10"] is Status.PASS  # the IPv4 half still judged


def test_a_kubelet_leaves_reverse_path_filtering_to_the_cni() -> None:
    host = bad_host(engines="containerd kubelet")
    o = host.observations()
    entry = next(e for e in ENTRIES if e.id == "cm_host_3_13")
    v = judge(entry, o)
    assert v.status is Status.NOT_APPLICABLE
    assert "kubelet" in v.observed
    forward = judge(next(e for e in ENTRIES if e.id == "cm_host_3_17"), o)
    assert forward.status is Status.NOT_APPLICABLE
    assert "containerd (/usr/bin/containerd)" in forward.observed
    assert "kubelet (/usr/bin/kubelet)" in forward.observed


def test_optional_software_absent_is_not_concerned() -> None:
    got = verdicts(bad_host(coredumpd="absent", at="absent", cron="absent"))
    assert {got[c] for c in ("cm_host_4_3", "cm_host_4_11", "cm_host_4_12")} == {
        Status.NOT_APPLICABLE
    }
    assert verdicts(Host(units={}))["cm_host_4_1"] is Status.PASS  # none installed


def test_unneeded_modules_judged_by_configuration_and_loaded_state() -> None:
    """cm_host_4_14: modprobe's configuration is the node's own and judged everywhere; whether a
    module is loaded belongs to the machine's kernel: not_verifiable in a container (never pass),
    and on a real host a module loaded before hardening fails until it is unloaded."""
    entry = next(e for e in ENTRIES if e.id == "cm_host_4_14")
    container = judge(entry, Host(container="docker").observations())
    assert container.status is Status.NOT_VERIFIABLE
    assert "loaded kernel modules belong to the machine's kernel" in container.observed
    loose = judge(entry, Host(container="docker", modules_config="sctp: loadable").observations())
    assert (loose.status, loose.observed) == (
        Status.FAIL,
        "modules modprobe would still load = sctp: loadable",
    )
    loaded = judge(entry, Host(modules_loaded="usb_storage").observations())
    assert (loaded.status, loaded.observed) == (
        Status.FAIL,
        "those modules loaded now = usb_storage",
    )


def test_process_accounting_running_is_never_pass_inside_a_container() -> None:
    assert verdicts(Host())["cm_host_4_19"] is Status.PASS
    inside = Host(container="docker")
    assert verdicts(inside)["cm_host_4_19"] is Status.NOT_VERIFIABLE
    v = judge(next(e for e in AUTOMATED if e.id == "cm_host_4_19"), inside.observations())
    assert "CAP_SYS_PACCT" in v.observed
    off = {**Host().units, "acct.service": "disabled"}
    assert verdicts(Host(container="docker", units=off))["cm_host_4_19"] is Status.FAIL
    assert verdicts(Host(packages=("libpam-pwquality", "sysstat")))["cm_host_4_19"] is Status.FAIL


def test_banners_naming_the_os_fail() -> None:
    entry = next(e for e in ENTRIES if e.id == "cm_host_4_13")
    assert judge(entry, Host().observations()).status is Status.PASS
    v = judge(entry, Host(banners="/etc/issue.net: empty").observations())
    assert (v.status, v.observed) == (
        Status.FAIL,
        "banner files that are missing, empty or name the OS = /etc/issue.net: empty",
    )


def test_file_integrity_fails_until_aides_database_is_built() -> None:
    """cm_host_4_22: AIDE installed, its daily timer on and its database built; while the database
    is missing the verdict fails and says whether casemate's init unit is building it."""
    entry = next(e for e in ENTRIES if e.id == "cm_host_4_22")
    assert judge(entry, Host(container="docker").observations()).status is Status.PASS
    unbuilt = Host(units={**Host().units, "casemate-aide-init.service": "enabled"})
    del unbuilt.files[AIDE_DB]
    v = judge(entry, unbuilt.observations())
    assert (v.status, v.observed) == (
        Status.FAIL,
        f"{AIDE_DB} absent: not yet built, casemate-aide-init.service is building it (active)",
    )
    timer_off = Host(units={**Host().units, "dailyaidecheck.timer": "disabled"})
    assert judge(entry, timer_off.observations()).status is Status.FAIL
    no_common = Host(packages=tuple(p for p in Host().packages if p != "aide-common"))
    assert judge(entry, no_common.observations()).status is Status.FAIL


DEBIAN_PASSWORD = (
    "password\trequisite\t\t\tpam_pwquality.so retry=3\n"
    "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt\n"
    "password\trequisite\t\t\tpam_deny.so\n"
)


def test_pwquality_options_on_the_pam_line_override_the_policy(tmp_path: Path) -> None:
    """cm_host_4_17 judges pam_pwquality's line as well as pwquality.conf: options on the line win
    over the file, so a line that sets minlen, minclass or maxrepeat fails, saying which. The
    check's own command is run on real stacks."""
    entry = next(e for e in ENTRIES if e.id == "cm_host_4_17")
    cmd = next(p.arg for p in wanted_probes([entry]) if "common-password" in p.arg)

    def stack(text: str) -> str:
        path = tmp_path / "common-password"
        path.write_text(text)
        argv = ["sh", "-c", cmd.replace("/etc/pam.d/common-password", str(path))]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()

    assert stack(DEBIAN_PASSWORD) == "pam_pwquality first"
    weak = DEBIAN_PASSWORD.replace("retry=3", "retry=3 minlen=8 maxrepeat=0")
    said = "pam_pwquality first, its line overriding pwquality.conf: minlen=8 maxrepeat=0"
    assert stack(weak) == said
    commented = "# " + weak  # a commented-out line is neither the module nor its options
    assert stack(commented) == "pam_unix without pam_pwquality before it"
    v = judge(entry, Host(pwquality_stack=said).observations())
    assert (v.status, v.observed) == (
        Status.FAIL,
        f"the password stack (common-password) = {said}",
    )
