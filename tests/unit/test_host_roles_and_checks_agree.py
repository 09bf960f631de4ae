"""The host roles and their checks read and judge a host the same way: engine hosts recognised by
the same evidence (groups, processes, interfaces, not only binaries on PATH), audit rules loaded
whenever the kernel lacks one (never while locked) and judged with the same watch permissions,
auditd running, cron.allow's last line, live sysctl values put back, the supported-OS preflight,
cups.path and `* - core 0`. One container detection everywhere is test_host_readers.py's: the
roles and the probe run the same reader."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from casemate.checks import sysctl as sysctl_kind
from casemate.checks.base import Status
from casemate.locations import content_root

from .test_host_catalog import ENTRIES, GOOD_SYSCTL, Host, bad_host, judge, verdicts

ROLES = content_root() / "roles"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


SYSCTL = load(ROLES / "sysctl/library/sysctl_facts.py", "sysctl_facts")
AUDITD = load(ROLES / "auditd_rules/library/auditd_rules_facts.py", "auditd_rules_facts")
BASELINE = load(ROLES / "host_baseline/library/host_baseline_facts.py", "host_baseline_facts")
SYSCTL_DEFAULTS = yaml.safe_load((ROLES / "sysctl/defaults/main.yml").read_text())
SYSCTL_VARS = yaml.safe_load((ROLES / "sysctl/vars/main.yml").read_text())
CATALOG = yaml.safe_load((content_root() / "python/casemate/catalog/host.yml").read_text())


def entry(control: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in CATALOG["controls"] if c["id"] == control)
    return found


def role_params(**over: Any) -> dict[str, Any]:
    params = {
        "engines": SYSCTL_DEFAULTS["sysctl_engines"],
        "kubernetes_engines": SYSCTL_VARS["sysctl_kubernetes_engines"],
        "engine_interfaces": SYSCTL_VARS["sysctl_engine_interfaces"],
        "cni_interfaces": SYSCTL_VARS["sysctl_cni_interfaces"],
        "engine_groups": SYSCTL_VARS["sysctl_engine_groups"],
        "kubernetes_groups": SYSCTL_VARS["sysctl_kubernetes_groups"],
        "group_names": [],
        "engine_host": "auto",
    }
    params.update(over)
    return params


# --- finding 1: one engine evidence for the role and the checks ----------------------------------

NO_ENGINE = {**GOOD_SYSCTL, "net.ipv4.ip_forward": 0}
NOTHING = {"commands": {}, "running": [], "interfaces": ["lo", "eth0"]}
HOSTS = [  # (what the host shows, its groups): each one an engine host but the first
    (NOTHING, []),
    ({**NOTHING, "running": ["k3s"]}, []),  # k3s bundles kubelet and containerd off PATH
    ({**NOTHING, "running": ["kubelet"]}, []),  # /opt/bin/kubelet, rke2's or k0s's own
    ({**NOTHING, "commands": {"podman": "/usr/bin/podman"}}, []),
    ({**NOTHING, "interfaces": ["lo", "eth0", "cni0", "flannel.1"]}, []),
    ({**NOTHING, "interfaces": ["lo", "cilium_host"]}, []),
    (NOTHING, ["docker_hosts"]),  # the inventory says so before the engine is installed
    (NOTHING, ["k8s_workers"]),
]


def test_the_role_and_the_check_read_the_same_lists() -> None:
    assert tuple(SYSCTL_DEFAULTS["sysctl_engines"]) == sysctl_kind.ENGINES
    assert tuple(SYSCTL_VARS["sysctl_kubernetes_engines"]) == sysctl_kind.KUBERNETES
    assert tuple(SYSCTL_VARS["sysctl_engine_interfaces"]) == sysctl_kind.ENGINE_INTERFACES
    assert tuple(SYSCTL_VARS["sysctl_cni_interfaces"]) == sysctl_kind.CNI_INTERFACES
    assert tuple(SYSCTL_VARS["sysctl_engine_groups"]) == sysctl_kind.ENGINE_GROUPS
    assert tuple(SYSCTL_VARS["sysctl_kubernetes_groups"]) == sysctl_kind.KUBERNETES_GROUPS
    assert SYSCTL_VARS["sysctl_engine_path"] == sysctl_kind.ENGINE_PATH
    # the check-only control's condition is the same evidence, not a shell copy of it
    check = entry("cm_host_3_20")["check"]
    assert check["params"]["only_where"] == "engine"
    assert "only_if" not in check


@pytest.mark.parametrize(("found", "groups"), HOSTS)
@pytest.mark.parametrize("forced", ["auto", "true", "false"])
def test_the_role_and_the_check_agree_on_every_host(
    found: dict[str, Any], groups: list[str], forced: str
) -> None:
    role = SYSCTL.engine_host(role_params(group_names=groups, engine_host=forced), found)
    check = sysctl_kind.engine_evidence(
        found, {"group_names": groups, "sysctl_engine_host": forced}
    )
    assert (role[0], role[1]) == check
    if forced == "auto":
        assert bool(check[0]) == (found is not NOTHING or bool(groups))


def test_engines_off_path_keep_forwarding_in_the_role_and_the_check() -> None:
    found, kube = SYSCTL.engine_host(role_params(), {**NOTHING, "running": ["k3s"]})
    content, _, notes = SYSCTL.plan(
        {**role_params(), **plan_params()}, "", found, running(), "", kubernetes=kube
    )
    written = SYSCTL.parse_file(content)
    assert written["net.ipv4.ip_forward"] == "1"  # not 0: that cuts pod traffic
    assert "net.ipv4.conf.all.rp_filter" not in written  # the CNI plugin owns it
    assert any("k3s (running)" in n for n in notes)
    k3s = verdicts(Host(engines="", running="k3s", sysctl=NO_ENGINE))
    assert k3s["cm_host_3_17"] is Status.NOT_APPLICABLE
    assert k3s["cm_host_3_18"] is Status.FAIL  # the check expects forwarding on as well
    assert k3s["cm_host_3_13"] is Status.NOT_APPLICABLE


@pytest.mark.parametrize(
    "host",
    [
        Host(engines="", interfaces="lo eth0 cni0", sysctl=NO_ENGINE),
        Host(engines="", groups=("docker_hosts",), sysctl=NO_ENGINE),
        Host(engines="podman", sysctl=NO_ENGINE),
        Host(engines="", engine_host="true", sysctl=NO_ENGINE),
    ],
)
def test_every_kind_of_engine_evidence_reaches_the_checks(host: Host) -> None:
    got = verdicts(host)
    assert got["cm_host_3_17"] is Status.NOT_APPLICABLE
    assert got["cm_host_3_18"] is Status.FAIL
    # the check-only modprobe control asks the same evidence (it had a shell copy that saw
    # commands, processes and interfaces only, never the groups or sysctl_engine_host)
    assert got["cm_host_3_20"] is Status.PASS


def test_no_evidence_or_engine_host_false_means_no_forwarding() -> None:
    assert verdicts(Host(engines="", sysctl=NO_ENGINE))["cm_host_3_17"] is Status.PASS
    forced = verdicts(Host(engine_host="false", sysctl=GOOD_SYSCTL))
    assert forced["cm_host_3_17"] is Status.FAIL  # dockerd present, but the site says no engine
    assert forced["cm_host_3_18"] is Status.NOT_APPLICABLE


def plan_params() -> dict[str, Any]:
    return {
        "wanted": sorted({k for keys in SYSCTL_VARS["sysctl_controls"].values() for k in keys}),
        "settings": SYSCTL_DEFAULTS["sysctl_settings"],
        "engine_settings": SYSCTL_DEFAULTS["sysctl_engine_settings"],
        "no_engine_settings": SYSCTL_DEFAULTS["sysctl_no_engine_settings"],
        "accepted": SYSCTL_DEFAULTS["sysctl_accepted"],
        "cni_owned": SYSCTL_DEFAULTS["sysctl_cni_owned"],
        "machine_wide": SYSCTL_VARS["sysctl_machine_wide"],
    }


def running() -> dict[str, str | None]:
    return dict.fromkeys(plan_params()["wanted"], "7")


# --- findings 3 and 4: load when the kernel lacks a rule, never while locked ----------------------

OURS = ["-w /etc/passwd -p wa -k identity", "-w /usr/sbin/dockerd -k docker", "-w /etc/sudoers.d -p wa -k scope"]  # fmt: skip
LOADED = "-w /etc/passwd -p wa -k identity\n-w /usr/sbin/dockerd -p rwxa -k docker\n-w /etc/sudoers.d/ -p wa -k scope\n"  # fmt: skip


def test_rules_the_kernel_lacks_are_found() -> None:
    assert AUDITD.missing_rules(OURS, LOADED) == []
    assert AUDITD.missing_rules(OURS, "No rules\n") == OURS  # fresh install, or after auditctl -D
    drifted = LOADED.replace("-p wa -k identity", "-p w -k identity")
    assert AUDITD.missing_rules(OURS, drifted) == [OURS[0]]


def test_locked_rules_are_recognised() -> None:
    status = "enabled 2\nfailure 1\npid 123\nrate_limit 0\n"
    assert AUDITD.audit_status(status) == 2
    assert AUDITD.audit_status("enabled 1\n") == 1
    assert AUDITD.audit_status("garbage") is None


def test_the_role_loads_after_reading_the_kernel_again_and_never_while_locked() -> None:
    tasks = yaml.safe_load((ROLES / "auditd_rules/tasks/apply.yml").read_text())
    block = next(t for t in tasks if "block" in t and "rescue" in t)["block"]
    names = [t["name"] for t in block]
    load_at = next(i for i, n in enumerate(names) if n.startswith("Load the rules"))
    read_at = names.index("Prep | Read what the kernel has loaded")
    install_at = next(i for i, n in enumerate(names) if n.startswith("Install auditd"))
    assert install_at < read_at < load_at
    when = " ".join(block[load_at]["when"])
    assert "auditd_rules_kernel.missing" in when and "enabled != 2" in when
    rescue = next(t for t in tasks if "rescue" in t)["rescue"]
    restored = str(rescue[0]["loop"])
    assert "auditd_rules_compiled_file" in restored  # augenrules' audit.rules is put back too


# --- finding 6: auditd must run -----------------------------------------------------------------


def test_auditd_enabled_but_not_running_fails_and_is_not_verifiable_in_a_container() -> None:
    assert verdicts(Host(auditd_active="failed"))["cm_host_2_1"] is Status.FAIL
    assert verdicts(Host(auditd_active="inactive"))["cm_host_2_1"] is Status.FAIL
    inside = judge(
        next(e for e in ENTRIES if e.id == "cm_host_2_1"),
        Host(container="docker", auditd_active="failed").observations(),
    )
    assert inside.status is Status.NOT_VERIFIABLE
    assert "kernel refuses audit" in inside.observed
    disabled = Host(container="docker", auditd="disabled", auditd_active="failed")
    assert verdicts(disabled)["cm_host_2_1"] is Status.FAIL  # what a container can show is judged


# --- finding 7: allow files without a trailing newline ------------------------------------------


def test_allow_files_keep_their_last_line() -> None:
    assert BASELINE.allow_file("alice", ["root"]) == "alice\nroot\n"
    assert BASELINE.allow_file("alice\nroot", ["root"]) is None  # a second run changes nothing
    assert BASELINE.allow_file(None, ["root", "ops"]) == "root\nops\n"
    assert BASELINE.allow_file("", []) == "root\n"


# --- finding 8: watch permissions ---------------------------------------------------------------


def test_a_read_only_watch_does_not_count_as_auditing_changes() -> None:
    weak = "\n".join(
        line.replace("-p wa", "-p r") if "/etc/shadow" in line else line
        for line in Host().rules.splitlines()
    )
    loaded = {"rc": 0, "stdout": weak, "stderr": ""}
    assert verdicts(Host(rules=weak, loaded=loaded))["cm_host_2_2"] is Status.FAIL
    assert (
        verdicts(Host(rules=weak.replace("-p r ", "-p rwa "), loaded=loaded))["cm_host_2_2"]
        is Status.FAIL
    )  # the file is right, but the kernel still has -p r
    both = weak.replace("-p r ", "-p rwa ")
    assert verdicts(Host(rules=both, loaded={**loaded, "stdout": both}))["cm_host_2_2"] is (
        Status.PASS
    )


# --- finding 9: live values rolled back ---------------------------------------------------------


def test_the_running_values_apply_changes_can_be_put_back() -> None:
    current = {"net.ipv4.tcp_syncookies": "0", "net.ipv4.ip_forward": "1", "x.y": None}
    apply = ["net.ipv4.tcp_syncookies=1", "net.ipv4.ip_forward=0", "x.y=1"]
    assert SYSCTL.revert_of(apply, current) == [
        "net.ipv4.tcp_syncookies=0",
        "net.ipv4.ip_forward=1",
    ]
    tasks = yaml.safe_load((ROLES / "sysctl/tasks/apply.yml").read_text())
    rescue = next(t for t in tasks if "rescue" in t)["rescue"]
    assert "sysctl_found.revert" in str(rescue[0]["ansible.builtin.command"])


# --- finding 11: supported systems --------------------------------------------------------------


@pytest.mark.parametrize("role", ["sysctl", "auditd_rules", "host_baseline"])
def test_every_role_refuses_unsupported_systems(role: str, tmp_path: Path) -> None:
    defaults = yaml.safe_load((ROLES / role / "defaults/main.yml").read_text())
    assert defaults[f"{role}_supported_os"] == {"debian": ["12", "13"]}
    tasks = yaml.safe_load((ROLES / role / "tasks/main.yml").read_text())
    module = {"sysctl": SYSCTL, "auditd_rules": AUDITD, "host_baseline": BASELINE}[role]
    facts = next(t for t in tasks if f"{role}_facts" in t)
    if "supported_os" in facts[f"{role}_facts"]:  # the role's one module call refuses it
        assert facts[f"{role}_facts"]["supported_os"] == f"{{{{ {role}_supported_os }}}}"
        assert facts["tags"] == ["always"]
        assert module.unsupported(
            {"id": "ubuntu", "version_id": "22.04"}, defaults[f"{role}_supported_os"]
        )
    else:
        guard = next(
            t for t in tasks if t["name"] == "Preflight | Refuse systems the role does not support"
        )
        assert f"{role}_supported_os" in guard["ansible.builtin.assert"]["that"]
        assert guard["tags"] == ["always"]
    release = tmp_path / "os-release"
    release.write_text('PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nVERSION_ID="22.04"\n')
    ubuntu = {
        "id": "ubuntu",
        "id_like": "",
        "version_id": "22.04",
        "pretty_name": "Ubuntu 22.04.4 LTS",
    }
    assert module.os_release(str(release)) == ubuntu
    assert set(module.os_release(str(tmp_path / "none")).values()) == {""}


# --- finding 13: cups.path, `* - core 0` ------------------------------------------------------


def test_cups_path_is_disabled_and_a_dash_limit_counts_as_hard() -> None:
    defaults = yaml.safe_load((ROLES / "host_baseline/defaults/main.yml").read_text())
    assert "cups.path" in defaults["host_baseline_disabled_services"]
    assert verdicts(Host(units={"cups.path": "enabled"}))["cm_host_4_1"] is Status.FAIL
    dash = Host()
    dash.texts["/etc/security/limits.d/99-zz-casemate-core.conf"] = "*  -  core  0\n"
    assert verdicts(dash)["cm_host_4_2"] is Status.PASS
    loose = bad_host()
    loose.texts["/etc/security/limits.d/99-zz-casemate-core.conf"] = "* - core unlimited\n"
    assert verdicts(loose)["cm_host_4_2"] is Status.FAIL


def test_the_module_check_judges_the_modules_the_role_disables() -> None:
    """cm_host_4_14: the modules the check wants unloadable are exactly host_baseline's list (as
    modprobe -c spells them: - becomes _), and none is one the engines need."""
    defaults = yaml.safe_load((ROLES / "host_baseline/defaults/main.yml").read_text())
    protected = yaml.safe_load((ROLES / "host_baseline/vars/main.yml").read_text())
    role = [m.replace("-", "_") for m in defaults["host_baseline_disabled_modules"]]
    config, loaded = (
        c["params"]["cmd"] for c in entry("cm_host_4_14")["check"]["params"]["checks"]
    )
    assert config.split("for m in ")[1].split(";")[0].split() == role
    assert loaded.split("/^(")[1].split(")$/")[0].split("|") == role
    assert not set(role) & set(protected["host_baseline_protected_modules"])
    assert {"overlay", "br_netfilter"} <= set(protected["host_baseline_protected_modules"])


def test_both_roles_write_one_banner_text() -> None:
    """cm_host_1_16 and cm_host_4_13: sshd's Banner file is /etc/issue.net, which host_baseline
    writes too; both default to the same text (casemate_banner_text), so neither undoes the other."""
    sshd = yaml.safe_load((ROLES / "sshd/defaults/main.yml").read_text())
    baseline = yaml.safe_load((ROLES / "host_baseline/defaults/main.yml").read_text())
    issue = yaml.safe_load((ROLES / "host_baseline/vars/main.yml").read_text())
    assert sshd["sshd_banner_path"] == issue["host_baseline_issue_files"]["issue_net"]
    assert sshd["sshd_banner_text"] == baseline["host_baseline_banner_text"]
    assert "casemate_banner_text" in sshd["sshd_banner_text"]
