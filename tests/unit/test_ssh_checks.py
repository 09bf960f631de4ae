"""The SSH check kinds (sshd_option, ssh_host_keys, listening, package_state) judged on crafted
observations, and the whole SSH catalog judged on probe answers recorded from real lab nodes:
fresh Debian 12, drifted on purpose (tests/lab/fixtures/spoil_ssh.sh), hardened at level 2, and
turned off by profile immutable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Status, Verdict
from casemate.probe.collect import parse_answer
from casemate.verify import judge

from .obs import obs

KINDS = builtin_kinds()
EFFECTIVE = "sshd_effective:/etc/ssh/sshd_config"
KEYS = "ssh_host_keys:/etc/ssh/sshd_config"
RECORDED = Path(__file__).parent.parent / "fixtures" / "observations"
CATALOG = load_catalog(None, KINDS)
SSH = [e for e in CATALOG.entries if e.id.startswith("cm_host_1_")]
HARDENING = {e.id for e in SSH if "standard" in e.control.profiles}
OFF = {e.id for e in SSH if "immutable" in e.control.profiles}


def run(kind: str, params: dict[str, Any], o: Observations) -> Verdict:
    k = KINDS[kind]
    return k.judge(k.params.model_validate(params), o)


def sshd(
    *, match: list[dict[str, Any]] | None = None, files: dict[str, Any] | None = None,
    **options: str | list[str],
) -> Observations:  # fmt: skip
    return obs(
        {
            EFFECTIVE: {
                "installed": True,
                "options": {k: v if isinstance(v, list) else [v] for k, v in options.items()},
                "match": match or [],
                "match_error": "",
                "files": files or {},
            }
        }
    )


# --- sshd_option --------------------------------------------------------------------------------

ROOT = {"expect": [{"option": "permitrootlogin", "op": "eq", "value": "no"}]}


@pytest.mark.parametrize(
    ("value", "status"),
    [("no", Status.PASS), ("yes", Status.FAIL), ("without-password", Status.FAIL)],
)
def test_sshd_option_eq(value: str, status: Status) -> None:
    v = run("sshd_option", ROOT, sshd(permitrootlogin=value))
    assert v.status is status
    assert v.observed == f"permitrootlogin {value} (effective, sshd -T)"
    assert v.evidence == (EFFECTIVE,)


def test_sshd_option_missing_unreadable_and_absent() -> None:
    assert run("sshd_option", ROOT, sshd()).status is Status.FAIL  # sshd did not print it
    broken = obs({EFFECTIVE: {"installed": True, "error": "sshd -T failed: line 3: Bad option"}})
    v = run("sshd_option", ROOT, broken)
    assert (v.status, v.observed) == (Status.ERROR, "sshd -T failed: line 3: Bad option")
    none = run("sshd_option", ROOT, obs({EFFECTIVE: {"installed": False}}))
    assert none.status is Status.NOT_APPLICABLE
    assert "no SSH server" in none.observed
    assert run("sshd_option", ROOT, obs({})).status is Status.ERROR  # probe returned nothing


def test_sshd_option_ranges_name_only_the_wrong_setting() -> None:
    p = {
        "expect": [
            {"option": "clientaliveinterval", "op": "ge", "value": 1},
            {"option": "clientaliveinterval", "op": "le", "value": 300},
            {"option": "clientalivecountmax", "op": "le", "value": 3},
        ]
    }
    good = run("sshd_option", p, sshd(clientaliveinterval="300", clientalivecountmax="2"))
    assert good.status is Status.PASS
    assert good.observed == "clientaliveinterval 300; clientalivecountmax 2 (effective, sshd -T)"
    bad = run("sshd_option", p, sshd(clientaliveinterval="0", clientalivecountmax="2"))
    assert bad.status is Status.FAIL
    assert bad.observed == "clientaliveinterval 0 (effective, sshd -T)"


def test_sshd_option_subset_names_what_is_not_allowed() -> None:
    p = {"expect": [{"option": "ciphers", "subset_of": ["aes256-gcm@openssh.com", "aes256-ctr"]}]}
    assert run("sshd_option", p, sshd(ciphers="aes256-ctr")).status is Status.PASS
    bad = run("sshd_option", p, sshd(ciphers="aes256-ctr,aes128-cbc,3des-cbc"))
    assert bad.status is Status.FAIL
    assert "(not allowed: aes128-cbc, 3des-cbc)" in bad.observed
    assert run("sshd_option", p, sshd()).status is Status.FAIL  # nothing offered is not a pass


def test_sshd_option_any_of_and_lists() -> None:
    p = {
        "any_of": True,
        "expect": [
            {"option": "allowgroups", "op": "nonempty"},
            {"option": "allowusers", "op": "nonempty"},
        ],
    }
    assert run("sshd_option", p, sshd(allowgroups=["ops", "admins"])).status is Status.PASS
    assert run("sshd_option", p, sshd(allowusers="alice")).status is Status.PASS
    v = run("sshd_option", p, sshd())
    assert v.status is Status.FAIL
    assert v.observed == "allowgroups <unset>; allowusers <unset> (effective, sshd -T)"
    keys = {
        "expect": [
            {"option": "authorizedkeysfile", "op": "not_contains", "value": ".ssh/authorized_keys2"}
        ]
    }
    two = sshd(authorizedkeysfile=".ssh/authorized_keys .ssh/authorized_keys2")
    assert run("sshd_option", keys, two).status is Status.FAIL
    one = sshd(authorizedkeysfile=".ssh/authorized_keys")
    assert run("sshd_option", keys, one).status is Status.PASS


def entry(cid: str) -> dict[str, Any]:
    (found,) = [e for e in SSH if e.id == cid]
    params: dict[str, Any] = found.control.check.params
    return params


def match(option: str, value: str, line: int = 130) -> dict[str, Any]:
    return {"file": "/etc/ssh/sshd_config", "line": line, "match": "Match all",
            "option": option, "value": value}  # fmt: skip


def test_a_match_block_that_undoes_a_setting_fails() -> None:
    """sshd -T leaves Match blocks out: passwords off globally but back on for every connection."""
    p = entry("cm_host_1_2")
    bad = run("sshd_option", p, sshd(passwordauthentication="no",
                                     match=[match("passwordauthentication", "Yes")]))  # fmt: skip
    assert bad.status is Status.FAIL
    assert bad.observed == (
        "passwordauthentication no (effective, sshd -T), but passwordauthentication yes in "
        "/etc/ssh/sshd_config line 130 (Match all)"
    )
    ok = sshd(passwordauthentication="no", match=[match("passwordauthentication", "no"),
                                                  match("x11forwarding", "yes")])  # fmt: skip
    assert run("sshd_option", p, ok).status is Status.PASS
    root = run("sshd_option", entry("cm_host_1_1"),
               sshd(permitrootlogin="no", match=[match("permitrootlogin", "prohibit-password")]))  # fmt: skip
    assert root.status is Status.FAIL
    # times are judged as sshd prints them: 10m is 600 s, more than 300
    alive = sshd(clientaliveinterval="300", clientalivecountmax="2",
                 match=[match("clientaliveinterval", "10m")])  # fmt: skip
    assert run("sshd_option", entry("cm_host_1_8"), alive).status is Status.FAIL
    # an allow list in a Match block only narrows access further
    groups = sshd(allowgroups="ops", match=[match("allowgroups", "")])
    assert run("sshd_option", entry("cm_host_1_18"), groups).status is Status.PASS


def test_match_blocks_that_could_not_be_read_are_not_verifiable() -> None:
    p = entry("cm_host_1_2")
    raw = {"installed": True, "options": {"passwordauthentication": ["no"]},
           "match": [], "match_error": "cannot read the Match blocks: [Errno 13] /etc/ssh/x.conf"}  # fmt: skip
    v = run("sshd_option", p, obs({EFFECTIVE: raw}))
    assert v.status is Status.NOT_VERIFIABLE
    assert v.observed.endswith("Match blocks not judged: cannot read the Match blocks: [Errno 13] /etc/ssh/x.conf")  # fmt: skip
    old = {"installed": True, "options": {"passwordauthentication": ["no"]}}
    assert run("sshd_option", p, obs({EFFECTIVE: old})).status is Status.NOT_VERIFIABLE
    # a value that is already wrong fails, whatever the Match blocks say
    wrong = {**raw, "options": {"passwordauthentication": ["yes"]}}
    assert run("sshd_option", p, obs({EFFECTIVE: wrong})).status is Status.FAIL


def test_banner_must_name_a_file_with_something_in_it() -> None:
    p = entry("cm_host_1_16")
    path = "/etc/ssh/sshd_banner"
    good = sshd(banner=path, files={path: {"exists": True, "size": 80}})
    assert run("sshd_option", p, good).status is Status.PASS
    missing = run("sshd_option", p, sshd(banner=path, files={path: {"exists": False, "error": "No such file or directory"}}))  # fmt: skip
    assert missing.status is Status.FAIL
    assert missing.observed.endswith(
        f"but banner {path} does not exist (No such file or directory)"
    )
    empty = run("sshd_option", p, sshd(banner=path, files={path: {"exists": True, "size": 0}}))
    assert (empty.status, empty.observed.endswith(f"but banner {path} is empty")) == (
        Status.FAIL,
        True,
    )
    assert run("sshd_option", p, sshd(banner=path)).status is Status.FAIL  # not examined
    assert run("sshd_option", p, sshd(banner="none")).status is Status.FAIL


@pytest.mark.parametrize(
    ("cid", "options", "status", "observed"),
    [
        ("cm_host_1_23", {"compression": "no"}, Status.PASS, "compression no"),
        ("cm_host_1_23", {"compression": "yes"}, Status.FAIL, "compression yes"),
        ("cm_host_1_23", {"compression": "delayed"}, Status.FAIL, "compression delayed"),
        ("cm_host_1_24", {"maxsessions": "2"}, Status.PASS, "maxsessions 2"),
        ("cm_host_1_24", {"maxsessions": "10"}, Status.FAIL, "maxsessions 10"),
        ("cm_host_1_24", {"maxsessions": "0"}, Status.FAIL, "maxsessions 0"),
        ("cm_host_1_25", {"tcpkeepalive": "no", "clientaliveinterval": "300"}, Status.PASS, ""),
        ("cm_host_1_25", {"tcpkeepalive": "yes", "clientaliveinterval": "300"}, Status.FAIL,
         "tcpkeepalive yes"),
        # TCP keepalives off with nothing else to notice a dead client is no better
        ("cm_host_1_25", {"tcpkeepalive": "no", "clientaliveinterval": "0"}, Status.FAIL,
         "clientaliveinterval 0"),
    ],
)  # fmt: skip
def test_sshd_extras_compression_sessions_and_keepalive(
    cid: str, options: dict[str, str], status: Status, observed: str
) -> None:
    v = run("sshd_option", entry(cid), sshd(**options))
    assert v.status is status
    assert observed in v.observed


@pytest.mark.parametrize(
    ("files", "status"),
    [
        (".ssh/authorized_keys", Status.PASS),
        (".ssh/authorized_keys .ssh/authorized_keys2", Status.FAIL),
        ("%h/.ssh/authorized_keys2", Status.FAIL),
        ("/etc/ssh/keys/%u/authorized_keys2", Status.FAIL),
        ("/etc/ssh/authorized_keys/%u", Status.PASS),
    ],
)
def test_legacy_key_file_is_refused_however_it_is_spelled(files: str, status: Status) -> None:
    opts = {"pubkeyauthentication": "yes", "hostbasedauthentication": "no", "ignorerhosts": "yes",
            "permituserenvironment": "no", "authorizedkeysfile": files}  # fmt: skip
    assert run("sshd_option", entry("cm_host_1_5"), sshd(**opts)).status is status


@pytest.mark.parametrize(
    "params",
    [
        {"expect": []},
        {"expect": [{"option": "x11forwarding"}]},
        {"expect": [{"option": "ciphers", "op": "eq", "value": "a", "subset_of": ["a"]}]},
        {"expect": [{"option": "x11forwarding", "op": "eq"}]},
        {
            "expect": [{"option": "X11Forwarding", "op": "eq", "value": "no"}]
        },  # sshd -T is lowercase
        {"expect": [{"option": "x11forwarding", "op": "eq", "value": "no"}], "colour": 1},
    ],
)
def test_sshd_option_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        KINDS["sshd_option"].params.model_validate(params)


# --- ssh_host_keys ------------------------------------------------------------------------------


def keys(*entries: tuple[str, str | None, int | None, bool]) -> Observations:
    return obs(
        {
            KEYS: {
                "installed": True,
                "keys": [
                    {"path": p, "type": t, "bits": b, "configured": c, "exists": True}
                    for p, t, b, c in entries
                ],
            }
        }
    )


ED = ("/etc/ssh/ssh_host_ed25519_key", "ed25519", 256, True)
RSA = ("/etc/ssh/ssh_host_rsa_key", "rsa", 3072, True)


def test_host_keys_pass_and_fail() -> None:
    assert run("ssh_host_keys", {}, keys(ED, RSA)).status is Status.PASS
    short = run("ssh_host_keys", {}, keys(ED, ("/etc/ssh/ssh_host_rsa_key", "rsa", 2048, True)))
    assert short.status is Status.FAIL
    assert short.observed == "weak: /etc/ssh/ssh_host_rsa_key (rsa 2048)"
    dsa = run("ssh_host_keys", {}, keys(ED, ("/etc/ssh/ssh_host_dsa_key", "dsa", 1024, False)))
    assert dsa.status is Status.FAIL  # a weak key lying in /etc/ssh counts even when not loaded
    assert "not loaded" in dsa.observed
    assert run("ssh_host_keys", {"min_rsa_bits": 4096}, keys(ED, RSA)).status is Status.FAIL


def test_host_keys_none_loaded_unreadable_absent() -> None:
    unloaded = keys(("/etc/ssh/ssh_host_ed25519_key", "ed25519", 256, False))
    assert run("ssh_host_keys", {}, unloaded).status is Status.FAIL
    odd = run("ssh_host_keys", {}, keys(ED, ("/etc/ssh/ssh_host_x_key", None, None, True)))
    assert odd.status is Status.ERROR
    gone = run("ssh_host_keys", {}, obs({KEYS: {"installed": False}}))
    assert gone.status is Status.NOT_APPLICABLE
    err = run("ssh_host_keys", {}, obs({KEYS: {"error": "sshd -T failed: no hostkeys"}}))
    assert err.status is Status.ERROR


# --- listening and package_state ----------------------------------------------------------------


def sockets(*ports: tuple[str, str, int]) -> Observations:
    return obs(
        {"listening:tcp": {"sockets": [{"family": f, "addr": a, "port": p} for f, a, p in ports]}}
    )


def test_listening() -> None:
    closed = {"port": 22, "listening": False}
    quiet = run("listening", closed, sockets(("ipv4", "127.0.0.1", 41965)))
    assert (quiet.status, quiet.observed) == (Status.PASS, "nothing listens on TCP port 22")
    loud = run("listening", closed, sockets(("ipv4", "0.0.0.0", 22), ("ipv6", "::", 22)))
    assert loud.status is Status.FAIL
    assert loud.observed == "listening on 0.0.0.0:22, [::]:22"
    assert (
        run("listening", {"port": 22, "listening": True}, sockets(("ipv6", "::", 22))).status
        is Status.PASS
    )
    assert (
        run("listening", closed, obs({"listening:tcp": {"error": "read: EACCES"}})).status
        is Status.ERROR
    )
    assert run("listening", closed, obs({"listening:tcp": {}})).status is Status.ERROR


def test_package_state() -> None:
    gone = {"package:openssh-server": {"manager": "dpkg", "installed": False, "status": "rc"}}
    here = {"package:openssh-server": {"manager": "dpkg", "installed": True, "version": "1:9.2p1"}}
    absent = {"name": "openssh-server", "installed": False}
    assert run("package_state", absent, obs(gone)).status is Status.PASS
    v = run("package_state", absent, obs(here))
    assert (v.status, v.observed) == (Status.FAIL, "openssh-server 1:9.2p1 installed (dpkg)")
    assert run("package_state", {**absent, "installed": True}, obs(here)).status is Status.PASS
    unknown = {"package:openssh-server": {"error": "neither dpkg nor rpm is available"}}
    assert run("package_state", absent, obs(unknown)).status is Status.ERROR
    with pytest.raises(ValidationError):
        KINDS["package_state"].params.model_validate({"name": "x; rm -rf /", "installed": False})


# --- the SSH catalog on recorded lab nodes -------------------------------------------------------


def verdicts(name: str) -> dict[str, Verdict]:
    o, _ = parse_answer("node", (RECORDED / name).read_text())
    return {e.id: judge(e, o) for e in SSH}


def statuses(name: str, ids: set[str]) -> dict[str, str]:
    return {i: v.status.value for i, v in verdicts(name).items() if i in ids}


def test_catalog_lists_every_ssh_control_with_its_profile_and_mode() -> None:
    assert [e.id for e in SSH] == [f"cm_host_1_{n}" for n in range(1, 26)]
    assert {f"cm_host_1_{n}" for n in (*range(1, 19), 23, 24, 25)} == HARDENING
    assert {f"cm_host_1_{n}" for n in range(19, 23)} == OFF
    assert {e.control.mode for e in SSH} == {"automated"}
    assert {e.control.remediation.role for e in SSH if e.control.remediation} == {"sshd"}


def test_drifted_node_fails_every_hardening_control() -> None:
    got = statuses("ssh-drifted.json", HARDENING)
    assert got == dict.fromkeys(HARDENING, "fail"), "a check that cannot fail is a bug"


def test_fresh_debian_node() -> None:
    got = statuses("ssh-fresh.json", HARDENING)
    # Debian 12 already refuses keyboard-interactive logins and empty passwords, logs at INFO and
    # ships no DSA or short RSA host key; everything else is what casemate changes.
    passing = {"cm_host_1_3", "cm_host_1_4", "cm_host_1_15", "cm_host_1_17"}
    assert {i for i, s in got.items() if s == "pass"} == passing
    assert {i for i, s in got.items() if s != "pass"} == HARDENING - passing
    assert set(statuses("ssh-fresh.json", OFF).values()) == {"fail"}


def test_hardened_node_passes_every_hardening_control() -> None:
    got = statuses("ssh-hardened.json", HARDENING)
    assert got == dict.fromkeys(HARDENING, "pass")
    assert set(statuses("ssh-hardened.json", OFF).values()) == {"fail"}


def test_node_with_ssh_off() -> None:
    assert statuses("ssh-off.json", OFF) == dict.fromkeys(OFF, "pass")
    # with no sshd left, the hardening controls do not concern the host
    assert set(statuses("ssh-off.json", HARDENING).values()) == {"not_applicable"}
