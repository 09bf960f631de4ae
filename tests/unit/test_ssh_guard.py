"""The sshd role's planner and lockout guard (roles/sshd/library/sshd_facts.py), on crafted input:
who the session belongs to, whether that user could still log in after the change, where casemate's
options go, and what a change writes. The commit-confirmed flow itself runs on real nodes
(tests/lab/test_ssh_lab.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from casemate.locations import content_root

DEBIAN_MAIN = """\
# This is the sshd server system-wide configuration file.
Include /etc/ssh/sshd_config.d/*.conf

#PermitRootLogin prohibit-password
KbdInteractiveAuthentication no
UsePAM yes
X11Forwarding yes
Subsystem sftp /usr/lib/openssh/sftp-server
"""


def load(name: str) -> ModuleType:
    path = content_root() / "roles" / "sshd" / "library" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"casemate_test_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


F = load("sshd_facts")
SESSION = {"via_ssh": True, "user": "alice", "client_addr": "10.0.0.5"}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDuF7b8ydLkJ0qT0Ay9mVGN5tD8vJ0aI0x1Yq0TQK6ZT alice@ctl"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxPpR6lq8mQyD7m3u1QZ5xR1o2iHcR6Xc2y0ZK0z1Zq bob@ctl"


@pytest.fixture(autouse=True)
def alice(monkeypatch: pytest.MonkeyPatch) -> None:
    """A local account alice (groups alice, ops) and bob, whatever this machine has."""
    homes = {"alice": "/home/alice", "bob": "/home/bob", "root": "/root"}

    def getpwnam(name: str) -> Any:
        if name not in homes:
            raise KeyError(name)
        return SimpleNamespace(pw_dir=homes[name], pw_uid=1000, pw_gid=1000, pw_name=name)

    monkeypatch.setattr(F.pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(
        F, "groups_of", lambda user: ["alice", "ops"] if user == "alice" else [user]
    )


def after(**options: str | list[str]) -> dict[str, list[str]]:
    base = {
        "permitrootlogin": ["no"],
        "passwordauthentication": ["no"],
        "pubkeyauthentication": ["yes"],
        "authenticationmethods": ["any"],
        "authorizedkeyscommand": ["none"],
        "authorizedkeysfile": [".ssh/authorized_keys"],
        "pubkeyacceptedalgorithms": ["ssh-ed25519,rsa-sha2-512,rsa-sha2-256"],
    }
    base.update({k: v if isinstance(v, list) else [v] for k, v in options.items()})
    return base


def files(mapping: dict[str, list[str]]) -> Any:
    return mapping.get


ALICE_KEYS = files({"/home/alice/.ssh/authorized_keys": [KEY]})


def reasons(
    opts: dict[str, list[str]],
    *,
    session: dict[str, Any] = SESSION,
    password: bool = False,
    pubkey: str = KEY,
    read: Any = ALICE_KEYS,
) -> list[str]:
    out: list[str] = F.guard_reasons(session, opts, password, pubkey, read)
    return out


# --- the lockout guard -------------------------------------------------------------------------


def test_a_user_whose_key_stays_reachable_passes() -> None:
    assert reasons(after()) == []
    assert reasons(after(allowusers=["bob", "ali*"], allowgroups=["ops"])) == []


def test_allow_and_deny_lists() -> None:
    assert reasons(after(allowusers=["bob"])) == ["alice is not in AllowUsers (bob)"]
    assert reasons(after(allowusers=["alice@192.168.0.0/16"])) == [
        "alice is not in AllowUsers (alice@192.168.0.0/16)"
    ]
    assert reasons(after(allowusers=["alice@10.0.0.0/8"])) == []
    assert reasons(after(denyusers=["al?ce"])) == ["alice matches DenyUsers (al?ce)"]
    assert reasons(after(allowgroups=["sshusers"])) == [
        "alice (groups alice, ops) is in none of AllowGroups (sshusers)"
    ]
    assert reasons(after(denygroups=["op*"])) == ["alice is in DenyGroups (ops)"]


def test_root_login() -> None:
    root = {**SESSION, "user": "root"}
    keys = files({"/root/.ssh/authorized_keys": [KEY]})
    assert reasons(after(), session=root, read=keys) == [
        "root login is turned off (PermitRootLogin no) and Ansible logs in as root"
    ]
    assert reasons(after(permitrootlogin="without-password"), session=root, read=keys) == []
    assert reasons(
        after(permitrootlogin="without-password", passwordauthentication="yes"),
        session=root,
        password=True,
    ) == [
        "root may log in with a key only (PermitRootLogin without-password) and Ansible uses a password"
    ]


def test_keys_and_passwords() -> None:
    # the key Ansible offers must be in the files sshd will read after the change
    two = files({"/home/alice/.ssh/authorized_keys2": [KEY]})
    (why,) = reasons(after(), read=two)
    assert why.startswith("alice's key (ssh-ed25519 SHA256:")
    assert why.endswith(
        "is not in /home/alice/.ssh/authorized_keys (AuthorizedKeysFile after the change)"
    )
    assert (
        reasons(after(authorizedkeysfile=[".ssh/authorized_keys .ssh/authorized_keys2"]), read=two)
        == []
    )
    assert reasons(
        after(), read=files({"/home/alice/.ssh/authorized_keys": [OTHER]})
    )  # another key
    assert reasons(after(), read=files({"/home/alice/.ssh/authorized_keys": ["# " + KEY]}))
    opts = files({"/home/alice/.ssh/authorized_keys": ['from="10.0.0.0/8",no-pty ' + KEY]})
    assert reasons(after(), read=opts) == []  # options before the key are skipped
    # key unknown (agent or default key): at least one key must be there
    assert reasons(after(), pubkey="") == []
    assert reasons(after(), pubkey="", read=files({})) == [
        "alice has no key in /home/alice/.ssh/authorized_keys (AuthorizedKeysFile after the change)"
    ]
    assert reasons(after(pubkeyauthentication="no")) == [
        "public-key login is turned off (PubkeyAuthentication no)"
    ]
    assert reasons(after(authenticationmethods="publickey,password")) == [
        "AuthenticationMethods publickey,password asks for more than a key"
    ]
    assert reasons(after(pubkeyacceptedalgorithms="rsa-sha2-512")) == [
        "the key Ansible uses (ssh-ed25519) is not among PubkeyAcceptedAlgorithms"
    ]
    assert reasons(after(authorizedkeyscommand="/usr/bin/keys %u"), read=files({})) == []
    # a password gets in through PasswordAuthentication or keyboard-interactive (PAM): only both
    # turned off lock a password login out
    assert reasons(after(kbdinteractiveauthentication="no"), password=True) == [
        "Ansible logs in with a password and password login is turned off"
    ]
    assert reasons(after(kbdinteractiveauthentication="yes"), password=True) == []
    assert reasons(after(passwordauthentication="yes"), password=True) == []
    assert reasons(after(), session={**SESSION, "user": "mallory"}) == ["no local account mallory"]


def test_user_patterns() -> None:
    assert F.user_matches("alice", "alice", "")
    assert F.user_matches("a*", "alice", "")
    assert not F.user_matches("!alice", "alice", "")
    assert F.user_matches("alice@10.0.*", "alice", "10.0.0.5")
    assert not F.user_matches("alice@10.0.0.0/24", "alice", "")  # no address, no host match


# --- the session Ansible arrived by -------------------------------------------------------------


def test_session_is_the_nearest_sshd_ancestor(monkeypatch: pytest.MonkeyPatch) -> None:
    # python3 (50) <- sudo (40) <- sh (30) <- sshd: alice@notty (20, uid 1000) <- sshd (10) <- init
    tree = {50: ("python3", 40, 0), 40: ("sudo", 30, 0), 30: ("sh", 20, 1000),
            20: ("sshd-session", 10, 1000), 10: ("sshd", 1, 0)}  # fmt: skip
    host = sys.modules[F.find_session.__module__]  # the host reader (casemate_host) it imports
    monkeypatch.setattr(host, "_proc", lambda pid, proc: tree[pid])
    monkeypatch.setattr(
        host,
        "_environ",
        lambda pid, proc: {"SSH_CONNECTION": "10.0.0.5 50000 10.0.0.9 22"} if pid == 30 else {},
    )
    monkeypatch.setattr(host.pwd, "getpwuid", lambda uid: SimpleNamespace(pw_name="alice"))
    assert F.find_session(50) == {
        "via_ssh": True, "user": "alice", "pid": 20, "client_addr": "10.0.0.5",
        "server_addr": "10.0.0.9", "server_port": "22",
    }  # fmt: skip
    assert F.spec_of(F.find_session(50)) == (
        "user=alice,host=10.0.0.5,addr=10.0.0.5,laddr=10.0.0.9,lport=22"
    )
    # docker exec: the chain ends outside the container's PID namespace without any sshd
    monkeypatch.setattr(
        host, "_proc", lambda pid, proc: {50: ("python3", 40, 0), 40: ("sh", 0, 0)}[pid]
    )
    assert F.find_session(50) == {"via_ssh": False}
    assert F.spec_of({"via_ssh": False}) == ""


# --- where the options go and what is written -----------------------------------------------------


MANAGED = {"permitrootlogin", "passwordauthentication"}


def test_dropin_is_used_only_where_it_is_read_first() -> None:
    d = "/etc/ssh/sshd_config.d"
    assert F.dropin_support(DEBIAN_MAIN, d, MANAGED) == (True, "")
    early = "PermitRootLogin yes\n" + DEBIAN_MAIN
    assert F.dropin_support(early, d, MANAGED) == (
        False, "the main file sets permitrootlogin before including /etc/ssh/sshd_config.d"
    )  # fmt: skip
    assert F.dropin_support("Include sshd_config.d/*.conf\n", d, MANAGED) == (True, "")  # relative
    assert not F.dropin_support("PermitRootLogin no\n", d, MANAGED)[0]
    assert not F.dropin_support("Match User x\n  X11Forwarding no\n" + DEBIAN_MAIN, d, MANAGED)[0]
    cloud = {f"{d}/00-aaa.conf": "PasswordAuthentication yes\n"}
    ok, why = F.dropin_support(DEBIAN_MAIN, d, MANAGED, cloud)
    assert (ok, why) == (
        False,
        f"{d}/00-aaa.conf, read before casemate's drop-in, sets passwordauthentication",
    )


def test_merge_keeps_what_the_run_does_not_own() -> None:
    existing = [("PermitRootLogin", "no"), ("X11Forwarding", "no"), ("AllowGroups", "old")]
    settings = {"PasswordAuthentication": False, "AllowGroups": None, "Ciphers": ["a", "b"]}
    merged = F.merge(existing, settings, ["PasswordAuthentication", "AllowGroups", "Ciphers"])
    assert merged == [
        ("Ciphers", "a,b"),
        ("PasswordAuthentication", "no"),
        ("PermitRootLogin", "no"),
        ("X11Forwarding", "no"),
    ]
    assert F.value_text("AllowUsers", ["a", "b"]) == "a b"
    text = F.render(merged)
    assert F.parse_managed(text) == merged


def test_main_file_block_and_weak_host_key_lines() -> None:
    block = F.BEGIN + "\nPermitRootLogin no\n" + F.END + "\n"
    stripped, inner = F.strip_block(block + DEBIAN_MAIN)
    assert (stripped, inner) == (DEBIAN_MAIN, "PermitRootLogin no\n")
    assert F.strip_block(DEBIAN_MAIN) == (DEBIAN_MAIN, "")
    text, changed = F.comment_weak(
        "HostKey /etc/ssh/ssh_host_ed25519_key\nhostkey ssh_host_rsa2048_key\n",
        {"/etc/ssh/ssh_host_rsa2048_key"},
    )
    assert changed
    assert text.splitlines() == [
        "HostKey /etc/ssh/ssh_host_ed25519_key",
        F.WEAK_MARK + "hostkey ssh_host_rsa2048_key",
    ]


def test_overridden_names_values_sshd_would_not_use() -> None:
    wanted = {"PermitRootLogin": "prohibit-password", "X11Forwarding": False, "Ciphers": ["a", "b"],
              "LoginGraceTime": "1m", "AllowGroups": ["ops", "adm"]}  # fmt: skip
    seen = {"permitrootlogin": ["without-password"], "x11forwarding": ["yes"],
            "ciphers": ["a,b"], "logingracetime": ["60"], "allowgroups": ["ops", "adm"]}  # fmt: skip
    assert F.overridden(wanted, seen) == ["X11Forwarding yes (wanted no)"]
    assert F.overridden({"LoginGraceTime": "2m"}, seen) == ["LoginGraceTime 60 (wanted 120)"]
    listen = {"listenaddress": ["192.0.2.1:22"]}
    assert F.overridden({"ListenAddress": "192.0.2.1"}, listen) == []
    assert F.overridden({"ListenAddress": "192.0.2.9"}, listen) == [
        "ListenAddress 192.0.2.1:22 (wanted 192.0.2.9)"
    ]
    assert F.seconds("1h30m") == "5400"
    assert F.seconds("soon") is None


def test_candidate_copies_point_include_at_the_copies(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sshd_config.d").mkdir(parents=True)
    main = etc / "sshd_config"
    text = DEBIAN_MAIN.replace("/etc/ssh/sshd_config.d", str(etc / "sshd_config.d"))
    main.write_text(text)
    dropin = str(etc / "sshd_config.d" / "00-casemate-hardening.conf")
    p = {"config": str(main), "dropin_dir": str(etc / "sshd_config.d")}
    planned = {"main_text": text, "dropins": {str(etc / "sshd_config.d/50-cloud.conf"): "UsePAM yes\n"},
               "writes": {dropin: {"content": "PermitRootLogin no\n", "mode": "0600"}}}  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    cand = Path(F.candidate_tree(str(work), p, planned))
    assert f"Include {work}/sshd_config.d/*.conf" in cand.read_text()
    assert sorted(x.name for x in (work / "sshd_config.d").iterdir()) == [
        "00-casemate-hardening.conf", "50-cloud.conf"
    ]  # fmt: skip
    assert not Path(dropin).exists()  # the real files are never touched
    said = f"{work}/sshd_config.d/00-casemate-hardening.conf: line 3: Bad configuration option: X"
    assert F.real_paths(said, str(work), p) == f"{dropin}: line 3: Bad configuration option: X"


def test_only_what_the_change_takes_away_counts() -> None:
    p = {"uses_password": False, "controller_pubkey": KEY}
    # the inventory's key file is not authorized, yet the session got in (an agent key): the
    # change does not take that away, so it does not trip the guard
    elsewhere = files({"/home/alice/.ssh/authorized_keys": [OTHER]})
    assert F.new_reasons(SESSION, after(), after(), p, elsewhere) == []
    assert F.new_reasons(SESSION, after(), after(allowusers="bob"), p, elsewhere) == [
        "alice is not in AllowUsers (bob)"
    ]
    # keys read from authorized_keys2 today, not after the change: that is taken away
    two = files({"/home/alice/.ssh/authorized_keys2": [KEY]})
    both = after(authorizedkeysfile=".ssh/authorized_keys .ssh/authorized_keys2")
    assert len(F.new_reasons(SESSION, both, after(), p, two)) == 1


# --- keys: what the change takes away, not what the inventory names ------------------------------

DEBIAN_BEFORE = after(authorizedkeysfile=".ssh/authorized_keys .ssh/authorized_keys2")


def test_an_agent_key_kept_readable_passes_on_debian() -> None:
    """Debian reads authorized_keys and authorized_keys2 today; casemate keeps authorized_keys.
    The inventory's key file is not what the session used (an agent key): nothing is taken away."""
    p = {"uses_password": False, "controller_pubkey": KEY}
    agent = files({"/home/alice/.ssh/authorized_keys": [OTHER]})
    assert F.new_reasons(SESSION, DEBIAN_BEFORE, after(), p, agent) == []


def test_keys_that_would_no_longer_be_read_are_named_when_the_key_is_unknown() -> None:
    p = {"uses_password": False, "controller_pubkey": ""}
    both = files({"/home/alice/.ssh/authorized_keys": [OTHER],
                  "/home/alice/.ssh/authorized_keys2": [KEY]})  # fmt: skip
    (why,) = F.new_reasons(SESSION, DEBIAN_BEFORE, after(), p, both)
    assert why.startswith("alice's keys SHA256:")
    assert why.endswith(
        "would no longer be read: they are not in /home/alice/.ssh/authorized_keys "
        "(AuthorizedKeysFile after the change)"
    )
    assert F.key_fingerprint(KEY.split()[1]) in why
    kept = files({"/home/alice/.ssh/authorized_keys": [OTHER, KEY]})
    assert F.new_reasons(SESSION, DEBIAN_BEFORE, after(), p, kept) == []


def test_the_named_key_dropped_with_authorized_keys2_is_still_refused() -> None:
    p = {"uses_password": False, "controller_pubkey": KEY}
    two = files({"/home/alice/.ssh/authorized_keys2": [KEY]})
    (why,) = F.new_reasons(SESSION, DEBIAN_BEFORE, after(), p, two)
    assert why.startswith("alice's key (ssh-ed25519 SHA256:")
    assert why.endswith("is not in /home/alice/.ssh/authorized_keys (AuthorizedKeysFile after the change)")  # fmt: skip


def test_certificates_need_no_key_file() -> None:
    p = {"uses_password": False, "controller_pubkey": KEY}
    ca = after(trustedusercakeys="/etc/ssh/user_ca.pub")
    assert F.new_reasons(SESSION, DEBIAN_BEFORE, ca, p, files({})) == []
    assert reasons(ca, read=files({})) == []


# --- Match blocks in the role: casemate's single values are not undone ---------------------------


def test_match_lines_against_casemate_values_are_commented_out_lists_are_reported() -> None:
    main = (
        DEBIAN_MAIN
        + "Match all\n    PasswordAuthentication yes\n    X11Forwarding no\n    AllowGroups adm\n"
    )
    cloud = "/etc/ssh/sshd_config.d/50-cloud.conf"
    texts = {"/etc/ssh/sshd_config": main, cloud: "Match User bob\n  PermitRootLogin yes\n"}
    new: dict[str, str] = {}
    settings = {"PasswordAuthentication": False, "X11Forwarding": False, "PermitRootLogin": "no",
                "AllowGroups": ["ops"]}  # fmt: skip
    kept = F.match_change("/etc/ssh/sshd_config", texts, new, settings)
    assert kept == ["/etc/ssh/sshd_config line 12 (Match all): allowgroups adm"]
    assert new["/etc/ssh/sshd_config"].splitlines()[-3:] == [
        F.MATCH_MARK + "PasswordAuthentication yes", "    X11Forwarding no", "    AllowGroups adm"
    ]  # fmt: skip
    assert new[cloud] == "Match User bob\n" + F.MATCH_MARK + "PermitRootLogin yes\n"
    # a second run finds nothing left to do
    again: dict[str, str] = {}
    assert F.match_change("/etc/ssh/sshd_config", {**texts, **new}, again, settings) == kept
    assert again == {}


def test_include_inside_a_match_block_puts_the_whole_file_under_it() -> None:
    main = "Match Address 10.0.0.0/8\nInclude /etc/ssh/extra/*.conf\n"
    texts = {"/etc/ssh/sshd_config": main, "/etc/ssh/extra/a.conf": "PasswordAuthentication yes\n"}
    found = F.match_lines("/etc/ssh/sshd_config", texts)
    assert found == {"/etc/ssh/extra/a.conf": [(0, "Match Address 10.0.0.0/8", "passwordauthentication", "yes")]}  # fmt: skip


# --- older OpenSSH and other systems ---------------------------------------------------------------


class Queries:
    def __init__(self, answers: dict[str, tuple[int, str, str]]) -> None:
        self.answers = answers

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        return self.answers.get(argv[-1], (1, "", "unsupported query"))

    def fail_json(self, **kw: Any) -> None:
        raise AssertionError(kw)


def test_host_key_algorithms_fall_back_to_key_and_sig_queries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(F.shutil, "which", lambda name: "/usr/bin/ssh")
    old = Queries({"key": (0, "ssh-ed25519\nssh-rsa\n", ""), "sig": (0, "rsa-sha2-512\n", "")})
    wanted = {"HostKeyAlgorithms": ["sk-ssh-ed25519@openssh.com", "ssh-ed25519", "rsa-sha2-512"]}
    assert F.supported(old, wanted) == {"HostKeyAlgorithms": ["ssh-ed25519", "rsa-sha2-512"]}


def test_only_the_debian_family_is_supported(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n')
    assert F.os_of(str(release)) == {"id": "ubuntu", "id_like": "debian", "version": "24.04"}
    assert F.debian_family(F.os_of(str(release)))
    assert F.debian_family({"id": "debian", "id_like": ""})
    assert not F.debian_family({"id": "rhel", "id_like": "fedora"})
    assert not F.debian_family({"id": "", "id_like": ""})
