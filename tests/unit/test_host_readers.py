"""One reader per host fact: the host-reader library (roles/host_common/module_utils/casemate_*.py)
judged on inputs recorded from real hosts (tests/fixtures/readers), the probe's script shown to
carry it verbatim, no copy of a reader left in the probe, the roles or the check kinds, and the
role modules that used to read a fact their own way now reading it like verify does."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from ansible.module_utils import casemate_audit as audit  # type: ignore[attr-defined]
from ansible.module_utils import casemate_host as host  # type: ignore[attr-defined]
from ansible.module_utils import casemate_sshd as sshd  # type: ignore[attr-defined]

from casemate import readers
from casemate.checks import argv as argv_kind
from casemate.checks import sysctl as sysctl_kind
from casemate.locations import content_root, package_file
from casemate.probe.collect import probe_script
from casemate.readers import LIBRARY, library_path

from .assembled import probe_module

ROOT = content_root()
RECORDED = Path(__file__).parent.parent / "fixtures" / "readers"


def load(role: str, kind: str, name: str) -> ModuleType:
    path = ROOT / "roles" / role / kind / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"casemate_test_readers_{name}", path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


# --- is this host a container? -------------------------------------------------------------------

CONTAINER_CASES = [
    ((0, "docker"), [], None, "docker"),
    ((1, "none"), [], None, ""),
    ((1, "none"), ["/.dockerenv"], None, "docker"),  # an old systemd that does not see Docker
    ((1, "none"), ["/run/.containerenv"], None, "podman"),
    ((1, "none"), [], "lxc", "lxc"),
    ((1, "none"), [], "", "container"),
    (None, [], None, "unknown"),  # no systemd-detect-virt and no sign: cannot tell
    ((2, ""), [], None, "unknown"),
]


@pytest.mark.parametrize(("virt", "markers", "environ", "want"), CONTAINER_CASES)
def test_container_detection_table(
    virt: tuple[int, str] | None, markers: list[str], environ: str | None, want: str
) -> None:
    assert host.classify_container(virt, markers, environ) == want


def no_sign(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tool: str | None) -> None:
    """A host where systemd-detect-virt is `tool` (None: not installed) and the marker files and
    pid 1's container= are under our control (tmp_path)."""
    found = {"systemd-detect-virt": tool}
    real = shutil.which
    monkeypatch.setattr(host, "find_command", lambda name, path=None: found.get(name, real(name)))
    markers = (
        (str(tmp_path / ".dockerenv"), "docker"),
        (str(tmp_path / ".containerenv"), "podman"),
    )
    monkeypatch.setattr(host, "CONTAINER_MARKERS", markers)
    monkeypatch.setattr(host, "pid1_container", lambda path="/proc/1/environ": None)


def test_a_host_that_cannot_tell_counts_as_a_container(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_sign(monkeypatch, tmp_path, None)
    ran: list[list[str]] = []
    assert host.read_container(lambda argv: ran.append(argv) or (0, "", "")) == "unknown"
    assert ran == []
    no_sign(monkeypatch, tmp_path, "/usr/bin/systemd-detect-virt")
    assert host.read_container(lambda argv: (1, "none\n", "")) == ""
    (tmp_path / ".dockerenv").write_text("")
    assert host.read_container(lambda argv: (1, "none\n", "")) == "docker"


def test_pid1_container_value(tmp_path: Path) -> None:
    environ = tmp_path / "environ"
    environ.write_bytes(b"PATH=/usr/bin\0container=lxc\0TERM=xterm\0")
    assert host.pid1_container(str(environ)) == "lxc"
    environ.write_bytes(b"PATH=/usr/bin\0")
    assert host.pid1_container(str(environ)) is None
    assert host.pid1_container(str(tmp_path / "unreadable")) is None


# The modules that read it their own way: apparmor_facts ran systemd-detect-virt unchecked (a
# host without it failed the role), kube_node_facts took a missing binary for "not a container"
# and ignored the marker files, and its answer decides the kubelet's protectKernelDefaults.


class DoneError(Exception):
    pass


class FailedError(Exception):
    pass


def run_main(
    mod: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    params: dict[str, Any],
    answers: Callable[[list[str]], tuple[int, str, str]],
) -> dict[str, Any]:
    """Run a role module's main() with a stand-in AnsibleModule: `answers` plays run_command;
    a command it does not know fails the module, as AnsibleModule does for a missing binary."""

    class Module:
        check_mode = False

        def __init__(self, argument_spec: dict[str, Any], **_: Any) -> None:
            self.params = {
                k: params.get(k, spec.get("default")) for k, spec in argument_spec.items()
            }

        def run_command(self, argv: list[str]) -> tuple[int, str, str]:
            return answers(argv)

        def get_bin_path(self, name: str) -> str | None:
            return (
                None
                if name == "systemd-detect-virt" and answers is not_installed
                else (shutil.which(name))
            )

        def exit_json(self, **result: Any) -> None:
            raise DoneError(result)

        def fail_json(self, **result: Any) -> None:
            raise FailedError(result["msg"])

        def warn(self, msg: str) -> None:
            pass

    monkeypatch.setattr(mod, "AnsibleModule", Module)
    with pytest.raises(DoneError) as done:
        mod.main()
    result: dict[str, Any] = done.value.args[0]
    return result


def detect_virt(answer: tuple[int, str, str]) -> Callable[[list[str]], tuple[int, str, str]]:
    def run(argv: list[str]) -> tuple[int, str, str]:
        if Path(argv[0]).name == "systemd-detect-virt":
            return answer
        raise FailedError(f"[Errno 2] No such file or directory: {argv[0]}")

    return run


def not_installed(argv: list[str]) -> tuple[int, str, str]:
    raise FailedError(f"[Errno 2] No such file or directory: {argv[0]}")


CONTAINER_MODULES = [("apparmor", "apparmor_facts", {"profile": "casemate-container"}),
                     ("kube_node", "kube_node_facts", {})]  # fmt: skip


@pytest.mark.parametrize(("role", "name", "params"), CONTAINER_MODULES)
def test_role_modules_tell_a_container_by_the_one_reader(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, role: str, name: str, params: dict[str, Any]
) -> None:
    mod = load(role, "library", name)
    no_sign(monkeypatch, tmp_path, None)
    assert run_main(mod, monkeypatch, params, not_installed)["container"] == "unknown"
    no_sign(monkeypatch, tmp_path, "/usr/bin/systemd-detect-virt")
    (tmp_path / ".dockerenv").write_text("")  # a systemd too old to see Docker says "none"
    said_none = detect_virt((1, "none\n", ""))
    assert run_main(mod, monkeypatch, params, said_none)["container"] == "docker"


# --- which OS ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("os-release-debian12", {"id": "debian", "id_like": "", "version_id": "12",
                                 "pretty_name": "Debian GNU/Linux 12 (bookworm)"}),
        ("os-release-ubuntu2404", {"id": "ubuntu", "id_like": "debian", "version_id": "24.04",
                                   "pretty_name": "Ubuntu 24.04.1 LTS"}),
        ("os-release-rocky9", {"id": "rocky", "id_like": "rhel centos fedora", "version_id": "9.4",
                               "pretty_name": "Rocky Linux 9.4 (Blue Onyx)"}),
    ],
)  # fmt: skip
def test_os_release_files(name: str, want: dict[str, str]) -> None:
    assert host.os_release(str(RECORDED / name)) == want


def test_os_families_and_an_unreadable_file(tmp_path: Path) -> None:
    assert host.os_family(host.os_release(str(RECORDED / "os-release-ubuntu2404"))) == {
        "ubuntu",
        "debian",
    }
    assert "rhel" in host.os_family(host.os_release(str(RECORDED / "os-release-rocky9")))
    assert set(host.os_release(str(tmp_path / "none")).values()) == {""}  # nothing supported
    quoted = host.parse_os_release("ID='debian'\n# ID=other\nVERSION_ID = \"12\"\nnonsense\n")
    assert quoted == {"ID": "debian", "VERSION_ID": "12"}


def test_the_probe_reports_the_fields_the_file_states() -> None:
    # facts.os of the recorded observations: id, version_id, pretty_name (as before)
    facts = probe_module().host_facts()
    release = host.read_os_release()
    assert facts["os"] == {
        k.lower(): v for k, v in release.items() if k in ("ID", "VERSION_ID", "PRETTY_NAME")
    }


# --- systemd -------------------------------------------------------------------------------------


def test_systemctl_show_of_one_unit() -> None:
    text = recorded("systemctl-show-docker.txt")
    props = host.parse_show(text)
    assert props["LoadState"] == "loaded"
    assert props["FragmentPath"] == "/lib/systemd/system/docker.service"
    assert host.environment_files(text) == ["/etc/default/docker"]
    process = host.parse_unit_process(text)
    assert process["active"] is True and process["pid"] == int(props["MainPID"]) > 0


def test_systemctl_show_of_several_units() -> None:
    blocks = host.parse_show_units(recorded("systemctl-show-ssh.txt"))
    # asked for ssh.service sshd.service ssh.socket sshd.socket: sshd.service is Debian's alias
    assert [b.get("Id") for b in blocks] == ["ssh.service", "ssh.service", "ssh.socket",
                                             "sshd.socket"]  # fmt: skip
    assert [b.get("LoadState") for b in blocks] == ["loaded", "loaded", "loaded", "not-found"]
    assert blocks[2]["UnitFileState"] == "disabled" and blocks[3]["UnitFileState"] == ""


def test_several_units_are_read_in_one_systemctl_call() -> None:
    calls: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        return 0, recorded("systemctl-show-ssh.txt"), ""

    names = ["ssh.service", "sshd.service", "ssh.socket", "sshd.socket"]
    shown, why = host.units_properties(names, ["Id,LoadState,UnitFileState"], run)
    assert why is None and len(calls) == 1 and calls[0][:6] == ["systemctl", "show", *names]
    assert shown["sshd.socket"]["LoadState"] == "not-found"
    assert shown["ssh.socket"]["UnitFileState"] == "disabled"
    short, why = host.units_properties([*names, "cups.service"], ["Id"], run)
    assert short == {} and why is not None and "4 answers for 5 units" in why


def test_host_baseline_reads_the_units_to_disable_in_one_call() -> None:
    baseline = load("host_baseline", "library", "host_baseline_facts")
    calls: list[list[str]] = []

    class Module:
        def run_command(self, argv: list[str]) -> tuple[int, str, str]:
            calls.append(argv)
            return 0, recorded("systemctl-show-ssh.txt"), ""

    found = baseline.services(Module(), ["ssh", "sshd.service", "ssh.socket", "sshd.socket"])
    assert len(calls) == 1
    # enabled; the socket is not
    assert [f["unit"] for f in found] == ["ssh.service", "sshd.service"]


def test_the_probe_asks_systemd_about_every_unit_at_once_with_the_same_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = ["ssh.service", "sshd.service", "ssh.socket", "sshd.socket"]
    blocks = recorded("systemctl-show-ssh.txt").strip("\n").split("\n\n")
    calls: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        units = [a for a in argv[2:] if a in names]
        return 0, "\n\n".join(blocks[names.index(u)] for u in units) + "\n", ""

    probe = probe_module()
    probe.run_argv = run
    alone = {name: probe.c_unit(name) for name in names}  # one systemctl show per unit
    assert len(calls) == len(names)
    calls.clear()
    probe.REQUEST = [["unit", name] for name in names]
    probe.main()
    answer = json.loads(capsys.readouterr().out)
    asked = [c for c in calls if c[:2] == ["systemctl", "show"]]
    assert len(asked) == 1 and asked[0][2:6] == sorted(names)
    assert {name: answer["data"][f"unit:{name}"] for name in names} == alone


def test_systemd_that_cannot_be_asked_says_why() -> None:
    bus = (1, "", "Failed to connect to bus: No such file or directory\n")
    assert host.systemctl_show("docker", ["MainPID"], lambda argv: bus) == (
        None,
        "systemctl show docker: Failed to connect to bus: No such file or directory",
    )
    asked: list[list[str]] = []
    host.systemctl_show(["a", "b"], ["X", "Y"], lambda argv: asked.append(argv) or (0, "", ""))
    assert asked == [["systemctl", "show", "a", "b", "-p", "X", "-p", "Y"]]


# --- packages ------------------------------------------------------------------------------------

# What dpkg knows, as dpkg-query -W prints it: name -> (status, version) per architecture
DPKG = {
    "acct": [("ii ", "6.6.4-5+b1")],
    "aide": [("un ", "")],  # known to dpkg, not installed
    "sysstat": [("rc ", "12.6.1-1")],  # removed, its configuration left
    "libfoo1": [("ii ", "1.0-1"), ("ii ", "1.0-1")],  # installed for two architectures
}


def fake_dpkg_query(calls: list[list[str]]) -> Callable[[list[str]], tuple[int, str, str]]:
    """dpkg-query -W -f FORMAT NAME...: each name's lines (in dpkg's order, not the arguments'),
    'no packages found matching' and exit status 1 for a name it does not know."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv)
        if argv[:3] != ["dpkg-query", "-W", "-f"]:
            return 127, "", "not found"  # what else a probe runs (host_facts)
        out, err = "", ""
        for name in sorted(argv[4:]):
            if name not in DPKG:
                err += f"dpkg-query: no packages found matching {name}\n"
            for status, version in DPKG.get(name, []):
                out += (
                    argv[3]
                    .replace("${Package}", name)
                    .replace("${db:Status-Abbrev}", status)
                    .replace("${Version}", version)
                )
        return (1 if err else 0), out, err

    return run


def test_several_packages_are_read_in_one_dpkg_query_call_with_the_answers_of_one_call_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(host, "find_command", lambda name, path=None: f"/usr/bin/{name}")
    names = ["sysstat", "acct", "casemate-no-such-package", "libfoo1", "aide", "libfoo1:amd64"]
    calls: list[list[str]] = []
    alone = {name: host.package_state(name, fake_dpkg_query(calls)) for name in names}
    assert len(calls) == len(names)
    assert alone["acct"]["installed"] and not alone["sysstat"]["installed"]
    assert alone["libfoo1:amd64"] == {"manager": "dpkg", "installed": False, "status": "",
                                      "version": ""}  # fmt: skip
    calls.clear()
    together = host.packages_state(names, fake_dpkg_query(calls))
    assert together == alone
    # the plain names in one call; libfoo1:amd64 (an architecture) asked on its own
    assert len(calls) == 2 and calls[0][4:] == [n for n in names if ":" not in n]


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="this machine has no dpkg")
def test_packages_read_together_match_dpkg_query_asked_one_by_one() -> None:
    names = ["dpkg", "coreutils", "casemate-no-such-package", "libc6"]
    assert host.packages_state(names) == {name: host.package_state(name) for name in names}


def test_the_probe_asks_dpkg_about_every_package_at_once_with_the_same_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = ["acct", "aide", "casemate-no-such-package", "libfoo1", "sysstat"]
    calls: list[list[str]] = []
    probe = probe_module()
    probe.find_command = lambda name, path=None: f"/usr/bin/{name}"
    probe.run_argv = fake_dpkg_query(calls)
    alone = {name: probe.COLLECTORS["package"](name) for name in names}  # one call per package
    assert len(calls) == len(names)
    calls.clear()
    probe.REQUEST = [["package", name] for name in names]
    probe.main()
    answer = json.loads(capsys.readouterr().out)
    asked = [c for c in calls if c[0] == "dpkg-query"]
    assert len(asked) == 1 and asked[0][4:] == names
    assert {name: answer["data"][f"package:{name}"] for name in names} == alone


# --- sshd -T and Match blocks --------------------------------------------------------------------


def test_sshd_effective_configuration() -> None:
    options = sshd.parse_effective(recorded("sshd-T-debian12.txt"))  # a hardened lab node
    assert options["permitrootlogin"] == ["no"]
    assert options["port"] == ["22"]
    assert options["listenaddress"] == ["[::]:22", "0.0.0.0:22"]
    assert options["hostkey"] == [f"/etc/ssh/ssh_host_{k}_key" for k in ("rsa", "ecdsa", "ed25519")]
    assert len(options["ciphers"]) == 1 and options["ciphers"][0].split(",")[0] == (
        "aes256-gcm@openssh.com"
    )
    assert options["logingracetime"] == ["30"]
    assert options["authorizedkeysfile"] == [".ssh/authorized_keys"]


MAIN = """# sshd_config
Include /etc/ssh/sshd_config.d/*.conf
PasswordAuthentication no
Match Address 10.0.0.0/8
    PasswordAuthentication yes
Include /etc/ssh/extra/*.conf
"""


def write_tree(root: Path, files: dict[str, str]) -> dict[str, str]:
    texts = {}
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        texts[str(path)] = text
    return texts


def test_match_blocks_are_read_from_the_files_and_their_includes(tmp_path: Path) -> None:
    texts = write_tree(
        tmp_path,
        {
            "sshd_config": MAIN.replace("/etc/ssh", str(tmp_path)),
            "sshd_config.d/50-cloud.conf": "Match User ops\nX11Forwarding yes\n",
            "extra/a.conf": "PermitRootLogin yes\n",
        },
    )
    main = str(tmp_path / "sshd_config")
    found = sshd.match_entries(main, sshd.read_file, sshd.glob_sorted)
    assert [(e["file"][len(str(tmp_path)) :], e["line"], e["match"], e["option"], e["value"])
            for e in found] == [
        ("/sshd_config.d/50-cloud.conf", 2, "Match User ops", "x11forwarding", "yes"),
        ("/sshd_config", 5, "Match Address 10.0.0.0/8", "passwordauthentication", "yes"),
        ("/extra/a.conf", 1, "Match Address 10.0.0.0/8", "permitrootlogin", "yes"),
    ]  # fmt: skip
    # the sshd role reads the files it plans (its candidate texts) with the same scanner
    facts = load("sshd", "library", "sshd_facts")
    planned = facts.match_lines(main, texts)
    assert sorted((p, i + 1, m, k, a) for p, rows in planned.items() for i, m, k, a in rows) == (
        sorted((e["file"], e["line"], e["match"], e["option"], e["value"]) for e in found)
    )


def chain(root: Path, depth: int) -> str:
    """A main file whose Match block includes a chain of `depth` files, the last setting X."""
    files = {"sshd_config": f"Match User ops\nInclude {root}/c1.conf\n"}
    for n in range(1, depth):
        files[f"c{n}.conf"] = f"Include {root}/c{n + 1}.conf\n"
    files[f"c{depth}.conf"] = "X11Forwarding yes\n"
    write_tree(root, files)
    return str(root / "sshd_config")


def test_includes_are_followed_as_deep_as_sshd_follows_them(tmp_path: Path) -> None:
    # the sshd role stopped at 8 levels while verify read 16: a Match block the role did not see
    main = chain(tmp_path / "ten", 10)
    texts = {str(p): p.read_text() for p in (tmp_path / "ten").iterdir()}
    facts = load("sshd", "library", "sshd_facts")
    assert [r[2] for rows in facts.match_lines(main, texts).values() for r in rows] == [
        "x11forwarding"
    ]
    assert len(sshd.match_entries(main, sshd.read_file, sshd.glob_sorted)) == 1
    too_deep = chain(tmp_path / "deep", sshd.MAX_INCLUDE_DEPTH + 1)
    with pytest.raises(ValueError, match="Include nested too deep"):
        sshd.match_entries(too_deep, sshd.read_file, sshd.glob_sorted)


# --- SSH keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "bits"), [("rsa", 2048), ("rsa", 3072), ("ed25519", 256), ("ecdsa", 384)]
)
def test_key_type_and_size_from_the_blob(tmp_path: Path, kind: str, bits: int) -> None:
    key = tmp_path / "k"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-b", str(bits), "-N", "", "-f", str(key)], check=True
    )
    line = Path(f"{key}.pub").read_text()
    assert sshd.key_info(line) == (kind, bits)
    assert sshd.key_blob('from="10.0.0.1",no-pty ' + line)[1] == line.split()[1]


def test_a_key_blob_that_cannot_be_read_says_so() -> None:
    line = recorded("ssh_host_rsa_key.pub").strip()
    assert sshd.key_info(line) == ("rsa", 3072)
    kind, blob, *_ = line.split()
    assert sshd.key_info(f"{kind} {blob[:200]}") == (None, None)  # truncated: not a smaller key
    assert sshd.key_info("ssh-rsa not-base64") == (None, None)
    assert sshd.key_info("ssh-rsa") == (None, None)


def test_host_keys_are_read_from_the_public_half_or_derived(tmp_path: Path) -> None:
    for kind in ("ed25519", "rsa"):
        key = tmp_path / f"ssh_host_{kind}_key"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
    (tmp_path / "ssh_host_rsa_key.pub").unlink()
    asked: list[list[str]] = []

    def run(argv: list[str]) -> tuple[int, str, str]:
        asked.append(argv)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr

    options = {"hostkey": [str(tmp_path / "ssh_host_ed25519_key")]}
    keys = sshd.host_keys(options, run, str(tmp_path))
    assert [(k["path"][len(str(tmp_path)) :], k["configured"], k["type"]) for k in keys] == [
        ("/ssh_host_ed25519_key", True, "ed25519"),
        ("/ssh_host_rsa_key", False, "rsa"),
    ]
    assert asked == [["ssh-keygen", "-y", "-f", str(tmp_path / "ssh_host_rsa_key")]]


# --- audit rules ---------------------------------------------------------------------------------


def test_watches_of_a_rule_file_and_of_auditctl_l() -> None:
    rules = recorded("casemate-docker.rules")
    found = audit.watches(rules)
    assert ("/usr/sbin/dockerd", "rwxa", "docker") in found
    assert ("/etc/docker", "rwxa", "docker") in found
    loaded = recorded("auditctl-l.txt")
    assert audit.watches(loaded)[0] == ("/etc/group", "wa", "identity")
    assert ("/etc/sudoers.d", "wa", "scope") in audit.watches(loaded)  # trailing slash dropped
    assert audit.missing_rules(rules.splitlines(), loaded) == [
        line for line in rules.splitlines() if "/run/containerd" in line
    ]
    assert audit.audit_status(recorded("auditctl-s.txt")) == 1
    assert audit.audit_status("garbage") is None


def test_the_audit_check_reads_rules_with_the_role_reader() -> None:
    rules = recorded("casemate-docker.rules")
    assert audit.watched(rules, "/etc/docker/", "wa")
    assert not audit.watched(rules, "/etc/docker/certs.d", "wa")
    host_rules = recorded("casemate-host.rules")
    assert audit.watched(host_rules, "/etc/shadow", "wa")
    assert not audit.watched(host_rules, "/etc/shadow", "r")
    assert audit.permissions_of("-w /x -p r\n-a always,exit -F path=/x -F perm=wa\n", "/x") == [
        "r",
        "wa",
    ]


# --- flags on a command line ---------------------------------------------------------------------

ARGV = ["/usr/bin/dockerd", "--icc", "--data-root", "/srv/docker", "--tlsverify=false",
        "--log-opt", "max-size=10m", "--log-opt=max-file=3", "--data-root=/data", "--debug"]  # fmt: skip


def test_flag_values_by_type() -> None:
    assert host.flag_values(ARGV, ["--icc"], "bool") == ["true"]
    assert host.flag_values(ARGV, ["--icc"], None) == ["true"]  # a flag follows: a bool
    assert host.flag_values(ARGV, ["--data-root"], "str") == ["/srv/docker", "/data"]
    assert host.flag_values(ARGV, ["--log-opt"], "list") == ["max-size=10m", "max-file=3"]
    assert host.flag_values(ARGV, ["--tlsverify"], "bool") == ["false"]
    assert host.flag_values(ARGV, ["--debug"], None) == ["true"]  # last on the line
    assert host.flag_values(["x", "--a", "-b"], ["--a"], "str") == ["-b"]  # a value may be "-b"
    assert host.flag_value(ARGV, "--data-root") == "/data"  # the last one given wins
    assert host.flag_value(ARGV, "--nothing") is None
    for names, kind in ((["--data-root"], "str"), (["--icc"], "bool"), (["--log-opt"], "list")):
        assert argv_kind.flag_values(ARGV, names, kind) == host.flag_values(ARGV, names, kind)


def test_docker_files_finds_the_path_dockerd_runs_with() -> None:
    # the role took the first --tlscacert and an empty one as "no path"; dockerd and verify's
    # ref_stat take the last one, and an empty flag falls back to daemon.json
    files = load("docker_files", "library", "docker_files_facts")
    argv = ["dockerd", "--tlscacert", "/old/ca.pem", "--tlscacert=/etc/docker/ca.pem"]
    assert files.configured_path(argv, {}, "tlscacert") == "/etc/docker/ca.pem"
    config = {"tlscacert": "/etc/docker/tls/ca.pem"}
    assert files.configured_path(["dockerd", "--tlscacert"], config, "tlscacert") == (
        "/etc/docker/tls/ca.pem"
    )


# --- processes -----------------------------------------------------------------------------------


def fake_proc(root: Path, procs: dict[int, tuple[str, list[str], int]]) -> str:
    """A /proc with pid -> (comm, argv, start ticks)."""
    for pid, (comm, argv, start) in procs.items():
        d = root / str(pid)
        d.mkdir(parents=True)
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        (d / "comm").write_text(comm + "\n")
        (d / "stat").write_text(f"{pid} ({comm}) {' '.join(['S', *['0'] * 18, str(start)])}\n")
    return str(root)


def test_the_kubernetes_roles_find_a_process_as_verify_does(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        {
            10: ("kube-apiserver", ["/usr/local/bin/kube-apiserver", "--etcd-servers=x"], 500),
            20: ("kube-apiserver", ["apiserver", "--secure-port=6443"], 700),  # argv[0] renamed
            30: ("sh", ["/bin/sh", "-c", "kube-apiserver"], 900),
        },
    )
    kp = load("kube_node", "module_utils", "kube_process")
    role = sorted(p["pid"] for p in kp.processes_named("kube-apiserver", proc))
    verify = sorted(pid for _, pid, _ in host.processes("kube-apiserver", True, proc))
    assert role == verify == [10, 20]


# --- engines -------------------------------------------------------------------------------------


def test_engine_evidence_here() -> None:
    names = [*sysctl_kind.ENGINES, "sh"]
    found = host.gather_engines(names, ["lo", *sysctl_kind.CNI_INTERFACES], sysctl_kind.ENGINE_PATH)
    assert "lo" in found["interfaces"] and "sh" in found["commands"]
    lines = host.evidence_of(found, ["sh"], ["lo"], ["docker_hosts"], ["docker_hosts"])
    assert lines[:2] == ["group docker_hosts", f"sh ({found['commands']['sh']})"]
    assert lines[-1] == "lo (interface)"
    assert host.evidence_of(found, ["sh"], ["lo"], ["docker_hosts"], []) == lines[1:]


def unlistable_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.listdir

    def listdir(path: str = ".") -> list[str]:
        if str(path) == "/sys/class/net":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(host.os, "listdir", listdir)


def test_engine_evidence_that_cannot_be_read_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    unlistable_interfaces(monkeypatch)
    assert host.gather_engines(["dockerd"], ["docker0"], "/usr/bin") == {
        "error": "cannot list /sys/class/net: [Errno 13] Permission denied"
    }


def test_the_sysctl_role_never_reads_unlistable_interfaces_as_no_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the role read an unlistable /sys/class/net as "no engine interface" (and might turn
    # forwarding off), while verify reported an error
    unlistable_interfaces(monkeypatch)
    here = host.os_release()  # this machine's system, so that the role does not refuse it first
    params = {"controls": {}, "supported_os": {here["id"]: [here["version_id"]]}, "settings": {}, "engine_settings": {}, "no_engine_settings": {},
              "accepted": {}, "cni_owned": [], "engines": ["dockerd"], "kubernetes_engines": [],
              "engine_interfaces": ["docker0"], "cni_interfaces": [], "engine_groups": [],
              "kubernetes_groups": [], "group_names": [], "engine_path": "/nonexistent",
              "engine_host": "auto", "machine_wide": [], "path": str(tmp_path / "x.conf")}  # fmt: skip
    sysctl = load("sysctl", "library", "sysctl_facts")
    with pytest.raises(FailedError, match="cannot tell whether a container engine runs here"):
        run_main(sysctl, monkeypatch, params, detect_virt((0, "docker\n", "")))


# --- the probe carries the library; nothing else keeps a copy -------------------------------------


def library_functions() -> dict[str, str]:
    """name -> source of every top-level function of the library."""
    found = {}
    for name in LIBRARY:
        text = library_path(name).read_text()
        for node in ast.parse(text).body:
            if isinstance(node, ast.FunctionDef):
                found[node.name] = ast.get_source_segment(text, node) or ""
    return found


def test_the_probe_script_carries_the_library_verbatim() -> None:
    script = probe_script()
    for name, source in library_functions().items():
        assert source in script, name
    imports = [n for n in ast.parse(script).body if isinstance(n, ast.ImportFrom)]
    assert not [n.module for n in imports if (n.module or "").startswith("ansible")]
    assert script.index("def read_container(") < script.index("REQUEST = []")
    compile(script, "<probe>", "exec")


def top_level_names(tree: ast.Module) -> Iterator[str]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            yield node.name
        elif isinstance(node, ast.Assign):
            yield from (t.id for t in node.targets if isinstance(t, ast.Name))


def test_the_probe_script_defines_each_name_once() -> None:
    # one namespace: a name remote.py defined again would silently replace the library's
    parts = [library_path(n).read_text() for n in LIBRARY]
    parts.append(package_file("probe", "remote.py").read_text())
    seen: dict[str, int] = {}
    for i, part in enumerate(parts):
        for name in top_level_names(ast.parse(part)):
            assert seen.setdefault(name, i) == i, f"{name} is defined twice"


def test_the_library_runs_on_python_3_6() -> None:
    for path in [library_path(n) for n in LIBRARY] + [package_file("probe", "remote.py")]:
        text = path.read_text()
        tree = ast.parse(text, feature_version=(3, 6))  # no walrus, no positional-only
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)], path  # f-strings
        assert not [
            n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"
        ]
        assert "dataclass" not in text, path
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for a in n.names}  # fmt: skip
        imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}  # fmt: skip
        # ansible_collections: the collection casemate.hardening's fallback import of the same file
        assert imported - {"ansible", "ansible_collections"} <= set(sys.stdlib_module_names), path


def reader_copies() -> Iterator[tuple[str, str]]:
    """(file, function) for every function outside the library named like a library reader."""
    readers = set(library_functions())
    places = [
        *ROOT.glob("roles/*/library/*.py"),
        *ROOT.glob("roles/*/module_utils/*.py"),
        *package_file("checks").glob("*.py"),
        package_file("probe", "remote.py"),
    ]
    for path in places:
        if path.parent.name == "module_utils" and path.stem in LIBRARY:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name in readers:
                yield str(path.relative_to(ROOT)), node.name


def test_no_copy_of_a_host_reader_is_left() -> None:
    assert list(reader_copies()) == []


def test_the_probe_and_the_roles_import_the_readers() -> None:
    probe = package_file("probe", "remote.py").read_text()
    for name in ("read_container", "gather_engines", "parse_effective", "match_entries",
                 "host_keys", "read_os_release", "systemctl_show", "flag_value"):  # fmt: skip
        assert name in probe
    for role, name, reader in [
        ("apparmor", "apparmor_facts", "read_container"),
        ("kube_node", "kube_node_facts", "read_container"),
        ("sysctl", "sysctl_facts", "gather_engines"),
        ("auditd_rules", "auditd_rules_facts", "missing_rules"),
        ("sshd", "sshd_facts", "match_entries"),
        ("docker_daemon", "docker_daemon_facts", "flag_values"),
        ("docker_daemon", "docker_daemon_facts", "engine_get"),
        ("docker_files", "docker_files_facts", "flag_value"),
        ("sshd", "sshd_facts", "find_session"),
        ("host_baseline", "host_baseline_facts", "connecting_user"),
    ]:
        text = (ROOT / "roles" / role / "library" / f"{name}.py").read_text()
        assert "from ansible.module_utils.casemate_" in text and reader in text, name


def test_every_role_whose_module_imports_the_readers_depends_on_host_common() -> None:
    for module in ROOT.glob("roles/*/library/*.py"):
        role = module.parent.parent
        if "ansible.module_utils.casemate_" not in module.read_text() or role.name == "host_common":
            continue
        deps = yaml.safe_load((role / "meta" / "main.yml").read_text())["dependencies"]
        names = {d["role"] if isinstance(d, dict) else d for d in deps}
        # kube_node's dependants reach host_common through it
        assert "host_common" in names or "kube_node" in names, role.name


class _Loading:
    """The first load of a library file stops half-way until told to go on."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()


SLOW_LIBRARY = """\
import sys
_loading = sys.modules["casemate_test_loading"].LOADING
if not _loading.reached.is_set():
    _loading.reached.set()
    _loading.go.wait()


def answer():
    return 42
"""


def test_a_reader_library_loading_in_one_thread_is_never_seen_half_made_by_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verify judges hosts in threads: while one thread runs a library file for the first time,
    another asking for it gets a whole module (its functions defined), never the half-run one."""
    (tmp_path / "casemate_slow.py").write_text(SLOW_LIBRARY)
    holder = ModuleType("casemate_test_loading")
    holder.LOADING = _Loading()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "casemate_test_loading", holder)
    monkeypatch.setattr(readers, "library_path", lambda name: tmp_path / f"{name}.py")
    monkeypatch.delitem(sys.modules, "casemate._readers.casemate_slow", raising=False)
    first: list[ModuleType] = []
    second: list[ModuleType] = []
    loading = threading.Thread(target=lambda: first.append(readers.library_module("casemate_slow")))
    asking = threading.Thread(target=lambda: second.append(readers.library_module("casemate_slow")))
    loading.start()
    try:
        assert holder.LOADING.reached.wait(60)  # type: ignore[attr-defined]
        asking.start()
        asking.join(0.5)
        assert not second  # it waits for the load under way: never handed the half-run module
    finally:
        holder.LOADING.go.set()  # type: ignore[attr-defined]
        loading.join()
        if asking.is_alive() or second:
            asking.join()
        sys.modules.pop("casemate._readers.casemate_slow", None)
    assert second[0].answer() == 42
    assert first == second  # one module for the process, however many threads asked for it


def test_a_library_file_importing_a_sibling_loads_on_the_controller_with_the_siblings_function() -> (
    None
):
    """casemate_engine imports find_command as ansible.module_utils.casemate_host, which exists
    only on a host: the controller's loader gives it casemate_host's own function instead."""
    from casemate.readers import library_module

    engine = library_module("casemate_engine")
    assert engine.find_command is library_module("casemate_host").find_command
    assert engine.__file__.endswith("module_utils/casemate_engine.py")
