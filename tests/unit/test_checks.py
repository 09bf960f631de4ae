"""Every check kind judged on recorded observations: pass, fail, missing and unreadable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Status, Verdict
from casemate.readers import library_module

from .obs import absent, daemon, obs, stat

KINDS = builtin_kinds()
INFO = "docker info --format '{{json .}}'"
BRIDGE = "docker network inspect bridge --format '{{json .Options}}'"
DOCKERD = ["/usr/sbin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock"]


def run(kind: str, params: dict[str, Any], o: Observations) -> Verdict:
    k = KINDS[kind]
    return k.judge(k.params.model_validate(params), o)


# --- file_mode / file_owner --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status"),
    [("0644", Status.PASS), ("0600", Status.PASS), ("0664", Status.FAIL), ("0466", Status.FAIL)],
)
def test_file_mode_limit(mode: str, status: Status) -> None:
    v = run(
        "file_mode",
        {"path": "/etc/docker/daemon.json", "max_mode": "0644"},
        obs({"stat:/etc/docker/daemon.json": stat("/etc/docker/daemon.json", mode)}),
    )
    assert v.status is status
    assert mode in v.observed
    assert v.evidence == ("stat:/etc/docker/daemon.json",)


def test_file_mode_exact() -> None:
    p = {"path": "/k", "mode": "0400"}
    assert run("file_mode", p, obs({"stat:/k": stat("/k", "0400")})).status is Status.PASS
    assert run("file_mode", p, obs({"stat:/k": stat("/k", "0000")})).status is Status.FAIL


def test_file_missing_is_not_applicable_unless_required() -> None:
    o = obs({"stat:/etc/sysconfig/docker": absent("/etc/sysconfig/docker")})
    assert (
        run("file_mode", {"path": "/etc/sysconfig/docker", "max_mode": "0644"}, o).status
        is Status.NOT_APPLICABLE
    )
    required = {"path": "/etc/sysconfig/docker", "max_mode": "0644", "missing": "fail"}
    assert run("file_mode", required, o).status is Status.FAIL


def test_file_unreadable_is_error() -> None:
    o = obs({"stat:/x": {"path": "/x", "error": "stat /x: Permission denied"}})
    v = run("file_owner", {"path": "/x", "owner": "root", "group": "root"}, o)
    assert v.status is Status.ERROR
    assert "Permission denied" in v.observed


def test_probe_returned_nothing_is_error() -> None:
    assert run("file_mode", {"path": "/x", "max_mode": "0644"}, obs({})).status is Status.ERROR


def test_file_owner_group() -> None:
    p = {"path": "/var/run/docker.sock", "owner": "root", "group": "docker"}
    good = obs(
        {
            "stat:/var/run/docker.sock": stat(
                "/var/run/docker.sock", "0660", "root", "docker", "socket"
            )
        }
    )
    bad = obs(
        {
            "stat:/var/run/docker.sock": stat(
                "/var/run/docker.sock", "0660", "root", "root", "socket"
            )
        }
    )
    assert run("file_owner", p, good).status is Status.PASS
    v = run("file_owner", p, bad)
    assert v.status is Status.FAIL
    assert "root:root" in v.observed


def test_glob_judges_every_match() -> None:
    key = "glob:/etc/docker/certs.d/**/*.crt"
    p = {"glob": "/etc/docker/certs.d/**/*.crt", "max_mode": "0444"}
    ok = obs({key: {"matches": [stat("/a.crt", "0444"), stat("/b.crt", "0400")]}})
    bad = obs({key: {"matches": [stat("/a.crt", "0444"), stat("/b.crt", "0666")]}})
    none = obs({key: {"matches": []}})
    assert run("file_mode", p, ok).status is Status.PASS
    v = run("file_mode", p, bad)
    assert v.status is Status.FAIL
    assert "/b.crt 0666" in v.observed
    assert "/a.crt" not in v.observed
    assert run("file_mode", p, none).status is Status.NOT_APPLICABLE


def test_unit_target_uses_fragment_path() -> None:
    unit = {
        "properties": {"FragmentPath": "/lib/systemd/system/docker.service"},
        "fragment": stat("/lib/systemd/system/docker.service", "0664"),
    }
    v = run(
        "file_mode",
        {"unit": "docker.service", "max_mode": "0644"},
        obs({"unit:docker.service": unit}),
    )
    assert v.status is Status.FAIL
    assert "/lib/systemd/system/docker.service 0664" in v.observed


def test_ref_target() -> None:
    key = 'ref_stat:{"config": "/etc/docker/daemon.json", "flag": "--tlskey", "key": "tlskey", "process": "dockerd"}'
    p = {"ref": {"key": "tlskey", "flag": "--tlskey"}, "mode": "0400"}
    configured = {
        "source": "config",
        "path": "/etc/docker/key.pem",
        "stat": stat("/etc/docker/key.pem", "0600"),
    }
    running = {"proc:dockerd": {"running": True, "argv": DOCKERD}}
    v = run("file_mode", p, obs({key: configured, **running}))
    assert v.status is Status.FAIL
    assert "key.pem" in v.observed
    unset = {key: {"source": "unset"}}
    assert run("file_mode", p, obs(unset | running)).status is Status.NOT_APPLICABLE


def test_ref_target_with_the_daemon_stopped() -> None:
    # the file daemon.json names is judged; "not configured" cannot be told (a flag of the unit)
    key = 'ref_stat:{"config": "/etc/docker/daemon.json", "flag": "--tlskey", "key": "tlskey", "process": "dockerd"}'
    p = {"ref": {"key": "tlskey", "flag": "--tlskey"}, "mode": "0400"}
    stopped = {"proc:dockerd": {"running": False}}
    configured = {"source": "config", "path": "/k.pem", "stat": stat("/k.pem", "0400")}
    assert run("file_mode", p, obs({key: configured} | stopped)).status is Status.PASS
    v = run("file_mode", p, obs({key: {"source": "unset"}} | stopped))
    assert v.status is Status.ERROR
    assert v.observed == "dockerd is not running: cannot tell whether a flag names its tlskey"
    assert v.evidence == (key, "proc:dockerd")


@pytest.mark.parametrize(
    ("target", "key", "raw"),
    [
        ({"glob": "/c/*.crt"}, "glob:/c/*.crt",
         {"matches": [stat("/c/a.crt"), {"path": "/c/b.crt", "error": "stat /c/b.crt: denied"}]}),
        ({"unit": "docker.service"}, "unit:docker.service",
         {"properties": {}, "fragment": {"path": "/u", "error": "stat /u: denied"}, "dropins": []}),
        ({"dropins": "kubelet.service"}, "unit:kubelet.service",
         {"properties": {}, "fragment": {}, "dropins": [{"path": "/d", "error": "stat /d: denied"}]}),
    ],
)  # fmt: skip
def test_a_file_that_could_not_be_examined_is_an_error(
    target: dict[str, Any], key: str, raw: dict[str, Any]
) -> None:
    v = run("file_mode", {**target, "max_mode": "0644"}, obs({key: raw}))
    assert v.status is Status.ERROR
    assert "denied" in v.observed


def test_file_target_needs_exactly_one() -> None:
    with pytest.raises(ValidationError):
        KINDS["file_mode"].params.model_validate({"path": "/a", "glob": "/b", "max_mode": "0644"})
    with pytest.raises(ValidationError):
        KINDS["file_mode"].params.model_validate({"path": "/a"})
    with pytest.raises(ValidationError):
        KINDS["file_mode"].params.model_validate({"path": "/a", "max_mode": "0999"})


def test_file_exists() -> None:
    assert run("file_exists", {"path": "/a"}, obs({"stat:/a": stat("/a")})).status is Status.PASS
    assert run("file_exists", {"path": "/a"}, obs({"stat:/a": absent("/a")})).status is Status.FAIL
    assert (
        run("file_exists", {"path": "/a", "present": False}, obs({"stat:/a": absent("/a")})).status
        is Status.PASS
    )


DB = "/var/lib/aide/aide.db"
BUILT_BY = {"path": DB, "nonempty": True, "built_by": "casemate-aide-init.service"}


def built_by(db: dict[str, Any], state: str | None) -> Observations:
    unit = (
        {"properties": {"LoadState": "loaded", "ActiveState": state}}
        if state
        else {"error": "systemctl show: no systemd (PID 1 is sh)"}
    )
    return obs({f"stat:{DB}": db, "unit:casemate-aide-init.service": unit})


def test_a_database_not_yet_built_fails_saying_whether_it_is_being_built() -> None:
    """A file a background unit builds: present and not empty passes; missing or empty fails and
    says whether the unit is building it now, has failed or nothing is building it; never pass."""
    done = run("file_exists", BUILT_BY, built_by({**stat(DB), "size": 4096}, "inactive"))
    assert done.status is Status.PASS
    assert done.evidence == (f"stat:{DB}", "unit:casemate-aide-init.service")
    building = run("file_exists", BUILT_BY, built_by(absent(DB), "active"))
    assert (building.status, building.observed) == (
        Status.FAIL,
        f"{DB} absent: not yet built, casemate-aide-init.service is building it (active)",
    )
    idle = run("file_exists", BUILT_BY, built_by(absent(DB), "inactive"))
    assert (idle.status, idle.observed) == (
        Status.FAIL,
        f"{DB} absent: not yet built, and nothing is building it"
        " (casemate-aide-init.service inactive)",
    )
    failed = run("file_exists", BUILT_BY, built_by({**stat(DB), "size": 0}, "failed"))
    assert (failed.status, failed.observed) == (
        Status.FAIL,
        f"{DB} present (file, empty): not yet built, and casemate-aide-init.service failed"
        " (journalctl -u casemate-aide-init.service)",
    )
    blind = run("file_exists", BUILT_BY, built_by(absent(DB), None))
    assert (blind.status, blind.observed) == (
        Status.ERROR,
        "systemctl show: no systemd (PID 1 is sh)",
    )
    with pytest.raises(ValidationError):
        KINDS["file_exists"].params.model_validate({**BUILT_BY, "present": False})


# --- daemon_json_key ---------------------------------------------------------------------------

ICC = {
    "key": "icc",
    "flags": ["--icc"],
    "type": "bool",
    "unset": True,
    "op": "eq",
    "value": False,
    "runtime": {"cmd": BRIDGE, "pointer": "/com.docker.network.bridge.enable_icc"},
}


def bridge(enable_icc: str) -> dict[str, Any]:
    return {
        f"cmd:{BRIDGE}": {
            "rc": 0,
            "stdout": json.dumps({"com.docker.network.bridge.enable_icc": enable_icc}),
            "stderr": "",
        }
    }


def test_daemon_key_from_config_and_runtime() -> None:
    v = run("daemon_json_key", ICC, daemon({"icc": False}, DOCKERD, **bridge("false")))
    assert v.status is Status.PASS, v
    assert "from config" in v.observed
    assert "running daemon: false" in v.observed


def test_daemon_key_default_fails() -> None:
    v = run("daemon_json_key", ICC, daemon(None, DOCKERD, **bridge("true")))
    assert v.status is Status.FAIL
    assert "true (from default)" in v.observed


def test_daemon_key_written_but_not_restarted_fails() -> None:
    v = run("daemon_json_key", ICC, daemon({"icc": False}, DOCKERD, **bridge("true")))
    assert v.status is Status.FAIL
    assert "not in effect" in v.observed


def test_daemon_flag_wins_over_file() -> None:
    argv = [*DOCKERD, "--icc=true"]
    v = run("daemon_json_key", ICC, daemon({"icc": False}, argv, **bridge("true")))
    assert v.status is Status.FAIL
    assert "from flag" in v.observed


def test_daemon_bare_bool_flag_and_value_flag() -> None:
    live = {
        "key": "live-restore",
        "flags": ["--live-restore"],
        "type": "bool",
        "unset": False,
        "op": "eq",
        "value": True,
    }
    assert (
        run("daemon_json_key", live, daemon({}, [*DOCKERD, "--live-restore"])).status is Status.PASS
    )
    level = {
        "key": "log-level",
        "flags": ["--log-level", "-l"],
        "unset": "info",
        "op": "eq",
        "value": "info",
    }
    v = run("daemon_json_key", level, daemon({}, [*DOCKERD, "-l", "debug"]))
    assert v.status is Status.FAIL
    assert "debug" in v.observed


def test_daemon_list_flags_accumulate() -> None:
    p = {
        "key": "insecure-registries",
        "flags": ["--insecure-registry"],
        "type": "list",
        "op": "empty",
    }
    assert (
        run("daemon_json_key", p, daemon({"insecure-registries": []}, DOCKERD)).status
        is Status.PASS
    )
    v = run(
        "daemon_json_key",
        p,
        daemon({}, [*DOCKERD, "--insecure-registry", "a:5000", "--insecure-registry=b:5000"]),
    )
    assert v.status is Status.FAIL
    assert "a:5000" in v.observed
    assert "b:5000" in v.observed


def test_daemon_storage_opts() -> None:
    p = {
        "key": "storage-opts",
        "flags": ["--storage-opt"],
        "type": "list",
        "op": "none_match",
        "value": r"^dm\.basesize=",
    }
    assert (
        run("daemon_json_key", p, daemon({"storage-opts": ["overlay2.size=1G"]}, DOCKERD)).status
        is Status.PASS
    )
    assert (
        run("daemon_json_key", p, daemon({"storage-opts": ["dm.basesize=50G"]}, DOCKERD)).status
        is Status.FAIL
    )


def test_daemon_invalid_json_is_error() -> None:
    o = daemon(None, DOCKERD)
    data = dict(o.data)
    data["read:/etc/docker/daemon.json"] = {"exists": True, "content": '{"icc": false,'}
    v = run("daemon_json_key", ICC, Observations("h1", {}, data))
    assert v.status is Status.ERROR
    assert "not valid JSON" in v.observed


def test_daemon_other_config_file_is_error() -> None:
    v = run(
        "daemon_json_key",
        ICC,
        daemon({"icc": False}, [*DOCKERD, "--config-file=/srv/d.json"], **bridge("false")),
    )
    assert v.status is Status.ERROR


def test_daemon_not_running_is_an_error_not_the_file_alone() -> None:
    v = run("daemon_json_key", ICC, daemon({"icc": False}, None))
    assert v.status is Status.ERROR
    assert v.observed == "dockerd is not running: cannot tell what it would run with"
    assert run("daemon_tls", {}, daemon({}, None)).status is Status.ERROR


def test_daemon_runtime_answer_without_a_server_is_error() -> None:
    # docker info exits 0 when it cannot reach the daemon: the JSON then carries ServerErrors
    live = {"key": "live-restore", "flags": ["--live-restore"], "type": "bool", "unset": False,
            "op": "eq", "value": True, "runtime": {"cmd": INFO, "pointer": "/LiveRestoreEnabled"}}  # fmt: skip
    no_server = {
        "rc": 0,
        "stderr": "",
        "stdout": '{"ServerErrors":["Cannot connect to the Docker daemon at unix:///var/run/docker.sock.'
        ' Is the docker daemon running?"],"ClientInfo":{"Debug":false}}\n',
    }
    v = run(
        "daemon_json_key",
        live,
        daemon({"live-restore": True}, DOCKERD, **{f"cmd:{INFO}": no_server}),
    )
    assert v.status is Status.ERROR
    assert "Cannot connect to the Docker daemon" in v.observed


def test_daemon_runtime_command_failure_is_error() -> None:
    o = daemon(
        {"icc": False},
        DOCKERD,
        **{f"cmd:{BRIDGE}": {"rc": 1, "stdout": "", "stderr": "Cannot connect"}},
    )
    assert run("daemon_json_key", ICC, o).status is Status.ERROR


def test_daemon_params_need_a_value() -> None:
    with pytest.raises(ValidationError):
        KINDS["daemon_json_key"].params.model_validate({"key": "icc", "op": "eq"})


# --- daemon_tls --------------------------------------------------------------------------------


def test_tls_not_applicable_without_tcp() -> None:
    assert run("daemon_tls", {}, daemon({}, DOCKERD)).status is Status.NOT_APPLICABLE


def test_tls_tcp_without_verify_fails() -> None:
    v = run("daemon_tls", {}, daemon({}, [*DOCKERD, "-H", "tcp://127.0.0.1:2375"]))
    assert v.status is Status.FAIL
    assert "tlsverify is not true" in v.observed
    assert "tlskey not set" in v.observed


def test_tls_tcp_with_verify_passes() -> None:
    cfg = {
        "hosts": ["tcp://0.0.0.0:2376"],
        "tlsverify": True,
        "tlscacert": "/c",
        "tlscert": "/s",
        "tlskey": "/k",
    }
    assert run("daemon_tls", {}, daemon(cfg, ["/usr/sbin/dockerd"])).status is Status.PASS


# --- command_output ----------------------------------------------------------------------------


def info(**fields: Any) -> dict[str, Any]:
    return {f"cmd:{INFO}": {"rc": 0, "stdout": json.dumps(fields), "stderr": ""}}


def test_command_output_json_pointer() -> None:
    p = {
        "cmd": INFO,
        "format": "json",
        "pointer": "/Driver",
        "op": "ne",
        "value": "aufs",
        "what": "storage driver",
    }
    assert run("command_output", p, obs(info(Driver="overlay2"))).status is Status.PASS
    v = run("command_output", p, obs(info(Driver="aufs")))
    assert v.status is Status.FAIL
    assert v.observed == "storage driver = aufs"


def test_command_output_seccomp_not_unconfined() -> None:
    p = {
        "cmd": INFO,
        "format": "json",
        "pointer": "/SecurityOptions",
        "type": "list",
        "op": "any_match",
        "value": "^name=seccomp,profile=(?!unconfined)",
    }
    assert (
        run("command_output", p, obs(info(SecurityOptions=["name=seccomp,profile=default"]))).status
        is Status.PASS
    )
    assert (
        run(
            "command_output", p, obs(info(SecurityOptions=["name=seccomp,profile=unconfined"]))
        ).status
        is Status.FAIL
    )


def test_command_output_failure() -> None:
    p = {"cmd": INFO, "format": "json", "pointer": "/Driver", "op": "ne", "value": "aufs"}
    failed = obs(
        {f"cmd:{INFO}": {"rc": 1, "stdout": "", "stderr": "Cannot connect to the Docker daemon"}}
    )
    v = run("command_output", p, failed)
    assert v.status is Status.ERROR
    assert "Cannot connect" in v.observed
    garbage = obs({f"cmd:{INFO}": {"rc": 0, "stdout": "nope", "stderr": ""}})
    assert run("command_output", p, garbage).status is Status.ERROR


def test_command_output_text() -> None:
    p = {"cmd": "id -u", "op": "eq", "value": "0"}
    assert (
        run(
            "command_output", p, obs({"cmd:id -u": {"rc": 0, "stdout": "0\n", "stderr": ""}})
        ).status
        is Status.PASS
    )


# --- process_flag ------------------------------------------------------------------------------

PROFILING = {
    "process": "kube-apiserver",
    "flags": ["--profiling"],
    "type": "bool",
    "unset": True,
    "op": "eq",
    "value": False,
}


def test_process_flag() -> None:
    on = obs(
        {"proc:kube-apiserver": {"running": True, "argv": ["kube-apiserver", "--profiling=false"]}}
    )
    off = obs({"proc:kube-apiserver": {"running": True, "argv": ["kube-apiserver"]}})
    gone = obs({"proc:kube-apiserver": {"running": False}})
    assert run("process_flag", PROFILING, on).status is Status.PASS
    assert run("process_flag", PROFILING, off).status is Status.FAIL
    assert run("process_flag", PROFILING, gone).status is Status.NOT_VERIFIABLE


# --- service_state -----------------------------------------------------------------------------


def test_service_state() -> None:
    p = {
        "unit": "ssh.service",
        "properties": {"UnitFileState": "masked", "ActiveState": ["inactive", "failed"]},
    }
    masked = obs(
        {"unit:ssh.service": {"properties": {"UnitFileState": "masked", "ActiveState": "inactive"}}}
    )
    running = obs(
        {"unit:ssh.service": {"properties": {"UnitFileState": "enabled", "ActiveState": "active"}}}
    )
    assert run("service_state", p, masked).status is Status.PASS
    v = run("service_state", p, running)
    assert v.status is Status.FAIL
    assert "UnitFileState=enabled" in v.observed


# --- sysctl ------------------------------------------------------------------------------------


def test_sysctl_host_and_container() -> None:
    p = {"name": "kernel.kptr_restrict", "value": "2"}
    data = {"sysctl:kernel.kptr_restrict": {"exists": True, "value": "1"}}
    assert run("sysctl", p, obs(data)).status is Status.FAIL
    assert (
        run(
            "sysctl", p, obs({"sysctl:kernel.kptr_restrict": {"exists": True, "value": "2"}})
        ).status
        is Status.PASS
    )
    v = run(
        "sysctl",
        p,
        obs({"sysctl:kernel.kptr_restrict": {"exists": True, "value": "2"}}, container="docker"),
    )
    assert v.status is Status.NOT_VERIFIABLE  # never pass: the container cannot own it
    net = {"name": "net.ipv4.conf.all.send_redirects", "value": "0"}
    in_node = obs(
        {"sysctl:net.ipv4.conf.all.send_redirects": {"exists": True, "value": "1"}},
        container="docker",
    )
    assert run("sysctl", net, in_node).status is Status.FAIL


# --- doc_field ---------------------------------------------------------------------------------

KUBELET = "/var/lib/kubelet/config.yaml"


def test_doc_field_yaml() -> None:
    p = {
        "path": KUBELET,
        "pointer": "/authentication/anonymous/enabled",
        "type": "bool",
        "op": "eq",
        "value": False,
    }
    good = obs(
        {
            f"read:{KUBELET}": {
                "exists": True,
                "content": "authentication:\n  anonymous:\n    enabled: false\n",
            }
        }
    )
    bad = obs(
        {
            f"read:{KUBELET}": {
                "exists": True,
                "content": "authentication:\n  anonymous:\n    enabled: true\n",
            }
        }
    )
    broken = obs({f"read:{KUBELET}": {"exists": True, "content": "authentication: [\n"}})
    missing = obs({f"read:{KUBELET}": {"exists": False}})
    assert run("doc_field", p, good).status is Status.PASS
    assert run("doc_field", p, bad).status is Status.FAIL
    assert run("doc_field", p, broken).status is Status.ERROR
    assert run("doc_field", p, missing).status is Status.FAIL


def test_every_kind_is_tested_here() -> None:
    source = "".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    for name in KINDS:
        assert f'"{name}"' in source, f"no test for check kind {name}"


# --- audit_rule --------------------------------------------------------------------------------

RULES = "read_glob:/etc/audit/rules.d/*.rules"
LOADED = "cmd:auditctl -l 2>&1"
DOCKERD_CMD = {"binary:dockerd": {"paths": ["/usr/sbin/dockerd"]}}


def rule_files(rules: str) -> dict[str, Any]:
    return {
        "files": [{"path": "/etc/audit/rules.d/docker.rules", "exists": True, "content": rules}]
    }


def audit(rules: str, loaded: dict[str, Any], container: str = "") -> Verdict:
    data = {**DOCKERD_CMD, RULES: rule_files(rules), LOADED: loaded}
    return run("audit_rule", {"command": "dockerd"}, obs(data, container))


def test_audit_rule_loaded_passes_and_file_only_fails() -> None:
    file = "-w /usr/sbin/dockerd -k docker\n"
    assert (
        audit(
            file, {"rc": 0, "stdout": "-w /usr/sbin/dockerd -p rwxa -k docker\n", "stderr": ""}
        ).status
        is Status.PASS
    )
    v = audit(file, {"rc": 0, "stdout": "No rules\n", "stderr": ""})
    assert (v.status, v.observed) == (
        Status.FAIL,
        "/usr/sbin/dockerd is in the rule files but not loaded",
    )
    assert audit("", {"rc": 0, "stdout": "", "stderr": ""}).status is Status.FAIL
    assert (
        audit("-w /usr/sbin/dockerd2 -k docker\n", {"rc": 0, "stdout": "", "stderr": ""}).status
        is Status.FAIL
    )


def test_audit_rule_in_a_container_is_never_pass() -> None:
    refused = {"rc": 1, "stdout": "You must be root to run this program.\n", "stderr": ""}
    v = audit("-w /usr/sbin/dockerd -k docker\n", refused, container="docker")
    assert v.status is Status.NOT_VERIFIABLE
    assert "kernel refuses audit" in v.observed
    assert audit("", refused, container="docker").status is Status.FAIL  # the file is still judged


def test_audit_rule_missing_path_and_syscall_rules() -> None:
    gone = obs(
        {
            "stat:/etc/sysconfig/docker": {"exists": False},
            RULES: rule_files(""),
            LOADED: {"rc": 0, "stdout": "", "stderr": ""},
        }
    )
    assert (
        run("audit_rule", {"path": "/etc/sysconfig/docker"}, gone).status is Status.NOT_APPLICABLE
    )
    syscall_rule = "-a exit,always -F path=/run/containerd -F perm=war -k docker\n"
    here = obs(
        {
            "stat:/run/containerd": {"exists": True},
            RULES: rule_files(syscall_rule),
            LOADED: {"rc": 0, "stdout": syscall_rule, "stderr": ""},
        }
    )
    assert run("audit_rule", {"path": "/run/containerd"}, here).status is Status.PASS


def test_audit_rule_covers_every_path_of_a_binary() -> None:
    """CIS Docker 1.1.18 on Debian: runc runs from /usr/sbin/runc and /usr/bin/runc (the benchmark's
    path) is a symlink to it; a rule for one of them alone fails, whichever it is, and the verdict
    names the path that lacks one."""
    p = {"command": "runc", "documented": ["/usr/bin/runc"]}
    paths = {"binary:runc;/usr/bin/runc": {"paths": ["/usr/sbin/runc", "/usr/bin/runc"]}}
    both = "-w /usr/sbin/runc -k docker\n-w /usr/bin/runc -k docker\n"
    loaded = {"rc": 0, "stdout": both.replace("-k", "-p rwxa -k"), "stderr": ""}
    v = run("audit_rule", p, obs({**paths, RULES: rule_files(both), LOADED: loaded}))
    assert (v.status, v.observed) == (Status.PASS, "/usr/sbin/runc, /usr/bin/runc watched (loaded)")
    for only, lacking in (("/usr/sbin/runc", "/usr/bin/runc"), ("/usr/bin/runc", "/usr/sbin/runc")):
        rules = f"-w {only} -k docker\n"
        v = run("audit_rule", p, obs({**paths, RULES: rule_files(rules), LOADED: loaded}))
        assert (v.status, v.observed) == (
            Status.FAIL,
            f"no rule for {lacking} in /etc/audit/rules.d",
        )
    # both in the files, one of them not loaded
    half = {"rc": 0, "stdout": "-w /usr/sbin/runc -p rwxa -k docker\n", "stderr": ""}
    v = run("audit_rule", p, obs({**paths, RULES: rule_files(both), LOADED: half}))
    assert (v.status, v.observed) == (
        Status.FAIL,
        "/usr/bin/runc is in the rule files but not loaded",
    )


def test_binary_paths_follow_symlinks_and_add_documented_paths(tmp_path: Path) -> None:
    """The one reader of a binary's paths (the role writes rules for them, verify judges them):
    the path it is called by, what a symlinked one resolves to, a directory reached through a
    symlink counted once, and the benchmark's documented path where its directory exists."""
    sbin, usr_bin = tmp_path / "usr/sbin", tmp_path / "usr/bin"
    sbin.mkdir(parents=True)
    usr_bin.mkdir(parents=True)
    (tmp_path / "sbin").symlink_to("usr/sbin")
    runc, dockerd = sbin / "runc", sbin / "dockerd"
    for binary in (runc, dockerd):
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    (usr_bin / "runc").symlink_to("../sbin/runc")
    dirs = [str(sbin), str(usr_bin), str(tmp_path / "sbin")]
    paths = library_module("casemate_audit").binary_paths
    assert paths("runc", [str(usr_bin / "runc")], dirs) == [str(runc), str(usr_bin / "runc")]
    assert paths("dockerd", [str(usr_bin / "dockerd"), "/no/such/dir/dockerd"], dirs) == [
        str(dockerd),
        str(usr_bin / "dockerd"),
    ]
    assert paths("containerd", [str(usr_bin / "containerd")], dirs) == []  # not installed


# --- failed observations, kind by kind (tests/unit/test_failed_observations.py has the catalog) --


def test_audit_rules_that_cannot_be_read_are_errors() -> None:
    unreadable = {"files": [{"path": "/etc/audit/rules.d/a.rules", "error": "read: Permission denied"}]}  # fmt: skip
    data = {**DOCKERD_CMD, RULES: unreadable, LOADED: {"rc": 0, "stdout": "", "stderr": ""}}
    v = run("audit_rule", {"command": "dockerd"}, obs(data))
    assert (v.status, v.observed) == (Status.ERROR, "read: Permission denied")
    # outside a container, auditctl -l failing is no answer about the loaded rules
    refused = {"rc": 1, "stdout": "You must be root to run this program.\n", "stderr": ""}
    v = audit("-w /usr/sbin/dockerd -k docker\n", refused)
    assert v.status is Status.ERROR
    assert "You must be root" in v.observed
    # a binary whose paths could not be read is not "no such binary here"
    broken = {"binary:dockerd": {"error": "OSError: [Errno 13] Permission denied"}}
    data = {**broken, RULES: rule_files(""), LOADED: {"rc": 0, "stdout": "", "stderr": ""}}
    assert run("audit_rule", {"command": "dockerd"}, obs(data)).status is Status.ERROR
    quiet = {"binary:dockerd": {"paths": []}}
    data = {**quiet, RULES: rule_files(""), LOADED: {"rc": 0, "stdout": "", "stderr": ""}}
    assert run("audit_rule", {"command": "dockerd"}, obs(data)).status is Status.NOT_APPLICABLE


def test_getent_that_complains_is_not_a_missing_group() -> None:
    key = "cmd:getent group docker"
    params = {"group": "docker", "allowed_var": "casemate_docker_group_allow"}
    said = {key: {"rc": 2, "stdout": "", "stderr": "getent: cannot open /etc/group\n"}}
    v = run("group_members", params, obs(said))
    assert (v.status, v.observed) == (
        Status.ERROR,
        "getent exited 2: getent: cannot open /etc/group",
    )


def test_a_collector_error_is_an_error_even_where_a_failed_command_is_not_verifiable() -> None:
    p = {"cmd": "aa-status", "op": "present", "on_error": "not_verifiable"}
    v = run("command_output", p, obs({"cmd:aa-status": {"error": "timed out after 60 s"}}))
    assert (v.status, v.observed) == (Status.ERROR, "timed out after 60 s")
    exit3 = {"cmd:aa-status": {"rc": 3, "stdout": "", "stderr": "in a container\n"}}
    assert run("command_output", p, obs(exit3)).status is Status.NOT_VERIFIABLE


def test_docker_info_without_a_server_is_no_value() -> None:
    p = {"cmd": INFO, "format": "json", "pointer": "/Driver", "what": "storage driver",
         "op": "ne", "value": "aufs", "daemon": "dockerd"}  # fmt: skip
    no_server = {
        "rc": 0,
        "stderr": "",
        "stdout": '{"ServerErrors":["Cannot connect to the Docker daemon at unix:///var/run/docker.sock.'
        ' Is the docker daemon running?"],"ClientInfo":{"Debug":false}}\n',
    }
    up = {"proc:dockerd": {"running": True, "argv": DOCKERD}}
    v = run("command_output", p, obs({f"cmd:{INFO}": no_server, **up}))
    assert v.status is Status.ERROR
    assert v.observed.startswith("Cannot connect to the Docker daemon")
    v = run(
        "command_output", p, obs({f"cmd:{INFO}": no_server, "proc:dockerd": {"running": False}})
    )
    assert (v.status, v.observed) == (
        Status.ERROR,
        "dockerd is not running: cannot tell what it would run with",
    )
    answer = {"rc": 0, "stdout": '{"Driver": "overlay2"}', "stderr": ""}
    assert run("command_output", p, obs({f"cmd:{INFO}": answer, **up})).status is Status.PASS
