#!/usr/bin/python
"""Read sshd's configuration, find the SSH session Ansible arrived by, decide what the run's
selected controls set, plan the change, test the candidate with `sshd -t`/`sshd -T`, and run the
lockout guard: all in one read-only call. It also says whether the role has anything left to do
(`act`), so that a compliant host skips the rest of the role in one step."""

DOCUMENTATION = r"""
module: sshd_facts
short_description: Plan an sshd change and check it cannot lock the connecting user out (read-only)
description:
  - Reads the main sshd configuration and its drop-in directory, merges the managed options into
    casemate's drop-in (or a managed block at the top of the main file where no drop-in directory is
    included first), and returns every file the change would write or remove.
  - Builds the candidate configuration in a private temporary directory (copies, with the Include
    of the drop-in directory pointed at the copies) and validates it with sshd -t; nothing on the
    host is changed.
  - Finds the SSH session this module runs under (an sshd ancestor process), its user and address,
    and judges the candidate configuration for that user with sshd -T -C (Match blocks included), for
    AllowUsers, AllowGroups, DenyUsers, DenyGroups, PermitRootLogin, password and key
    authentication, AuthorizedKeysFile and the key the controller uses.
  - Comments out lines inside Match blocks that set one of casemate's single values to something
    else (a Match block would give those connections back what casemate turns off).
options:
  config: {description: main sshd configuration file, type: path, default: /etc/ssh/sshd_config}
  dropin_dir: {description: drop-in directory, type: path, default: /etc/ssh/sshd_config.d}
  dropin_name: {description: casemate's drop-in file name, type: str, default: 00-casemate-hardening.conf}
  mode: {description: auto, dropin or main, type: str, default: auto}
  state: {description: "hardened (profile standard) or off (profile immutable: nothing is set)", type: str, default: hardened}
  controls: {description: "control id -> the options it sets (name -> value: bool, int, str or list)", type: dict, default: {}}
  run_tags: {description: "the run's --tags (ansible_run_tags): the controls selected", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
  extra_options: {description: "the site's own options, set when any hardening control is selected (null removes one)", type: dict, default: {}}
  max_sessions: {description: "sshd_max_sessions as given (below 1 the role refuses the run)", type: raw, default: 1}
  banner_path: {description: banner file the Banner option points to, type: str, default: ""}
  banner_text: {description: "banner content, written when cm_host_1_16 is selected (\"\" leaves the file alone)", type: str, default: ""}
  min_rsa_bits: {description: shortest RSA host key kept, type: int, default: 3072}
  guard: {description: run the lockout guard, type: bool, default: true}
  connection: {description: Ansible's connection plugin for this host, type: str, default: ""}
  ansible_user: {description: the user Ansible was told to log in as (may be empty), type: str, default: ""}
  controller_pubkey: {description: public key of the controller's private key file, type: str, default: ""}
  uses_password: {description: whether Ansible logs in with a password, type: bool, default: false}
  server_package: {description: package of the SSH server, type: str, default: openssh-server}
"""

RETURN = r"""
selected: {description: the hardening controls the run selects, type: list}
settings: {description: managed option name -> value the selected controls (and the site) set, type: dict}
owned: {description: options the selected controls own (set, or removed when absent from settings), type: list}
remove_weak_keys: {description: whether weak host keys are removed (cm_host_1_15 selected), type: bool}
act: {description: "whether the role's steps after this read have anything to do or say: a refusal, a note, a change, or profile immutable", type: bool}
installed: {description: whether an sshd binary exists, type: bool}
mode: {description: dropin or main, type: str}
managed_path: {description: the file holding casemate's options, type: str}
writes: {description: "path -> {content, mode} for every file the change writes", type: dict}
removes: {description: files the change removes (weak host keys), type: list}
pending: {description: whether the change alters anything, type: bool}
loaded: {description: "{loaded, why, pid}: whether the running sshd has loaded casemate's file (null: sshd is not running)", type: dict}
reload_pending: {description: "no file changes, but the running sshd has not loaded casemate's file (an interrupted run): it is reloaded, commit-confirmed", type: bool}
rollback_to: {description: "for a pending reload: path -> content (null: remove) of the configuration without casemate's options, which a rollback puts back", type: dict}
candidate: {description: "{valid, error}: sshd -t on the candidate configuration", type: dict}
session: {description: "{via_ssh, user, client_addr, server_addr, server_port, pid}", type: dict}
guard: {description: "{checked, ok, reasons, message}", type: dict}
overridden: {description: managed options whose effective value after the change is not casemate's, type: list}
before: {description: effective options now (for the session's user when there is one), type: dict}
after: {description: effective options after the change (same user), type: dict}
host_keys: {description: every host key file with type, bits and whether it is weak, type: list}
units: {description: "{service, socket}: systemd units of the SSH server with their states", type: dict}
package: {description: "{name, installed, version}", type: dict}
listen_ports: {description: TCP ports sshd listens on after the change (its listenaddress lines), type: list}
ssh_connection: {description: whether Ansible's connection plugin is an SSH one, type: bool}
reached_over_ssh: {description: an sshd among this task's parents, or an SSH connection plugin, type: bool}
os: {description: "{id, id_like, version} from /etc/os-release", type: dict}
os_supported: {description: whether the host is of the Debian family the role knows, type: bool}
match_kept: {description: Match-block lines setting a list casemate also sets (kept, reported), type: list}
"""

import fnmatch
import glob
import ipaddress
import os
import pwd
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        config_loaded,
        find_command,
        find_session,
        groups_of,
        os_release,
        package_state,
        parse_show_units,
        read_text,
        systemctl_show,
    )
    from ansible.module_utils.casemate_selection import selected_controls
    from ansible.module_utils.casemate_sshd import (
        COMMA_LISTS,
        SSH_DIR,
        TIME_OPTIONS,
        include_targets,
        key_blob,
        key_fingerprint,
        match_entries,
        parse_effective,
        seconds,
        words,
    )
    from ansible.module_utils.casemate_sshd import (
        host_keys as read_host_keys,
    )
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        config_loaded,
        find_command,
        find_session,
        groups_of,
        os_release,
        package_state,
        parse_show_units,
        read_text,
        systemctl_show,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_sshd import (
        COMMA_LISTS,
        SSH_DIR,
        TIME_OPTIONS,
        include_targets,
        key_blob,
        key_fingerprint,
        match_entries,
        parse_effective,
        seconds,
        words,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_sshd import (
        host_keys as read_host_keys,
    )

QUERY = {
    "kexalgorithms": "kex",
    "ciphers": "cipher",
    "macs": "mac",
    "hostkeyalgorithms": "HostKeyAlgorithms",
}
QUERY_FALLBACK = {"hostkeyalgorithms": ("key", "sig")}
HEADER = (
    "# Managed by casemate (role sshd): changes here are overwritten on the next run.\n"
    "# Previous versions are kept in casemate's backup directory.\n"
)
BEGIN = "# BEGIN casemate sshd (managed block: edits are overwritten)"
END = "# END casemate sshd"
WEAK_MARK = "# disabled by casemate (weak host key): "
MATCH_MARK = "# disabled by casemate (a Match block undid casemate's setting): "


# The controls of profile standard, in the order their options are set (a later one keeps an
# option's place: ClientAliveInterval belongs to cm_host_1_8 and cm_host_1_25).
HARDENING = tuple("cm_host_1_%d" % n for n in [*range(1, 19), 23, 24, 25])
WEAK_KEYS = "cm_host_1_15"  # removes DSA and short RSA host keys (sets no option)
BANNER = "cm_host_1_16"  # writes the banner file as well as the Banner option
# AllowGroups/AllowUsers left empty leave access unrestricted: the option is removed, never set empty
EMPTY_MEANS_UNSET = ("AllowGroups", "AllowUsers")


# --- what the selected controls set -------------------------------------------------------------


def decide(state, controls, extra_options, banner_text, selected):
    """{settings, owned, remove_weak_keys, banner_text} of the `selected` controls: each sets the
    options `controls` gives it (a later control keeps an earlier one's place); the site's
    extra_options come last, whenever any hardening control is selected. Profile immutable sets
    nothing."""
    out = {"settings": {}, "owned": [], "remove_weak_keys": False, "banner_text": ""}
    if state != "hardened":
        return out
    for ident in HARDENING:
        if ident not in selected:
            continue
        for name, value in (controls.get(ident) or {}).items():
            out["settings"][name] = None if name in EMPTY_MEANS_UNSET and not value else value
            out["owned"].append(name)
        if ident == WEAK_KEYS:
            out["remove_weak_keys"] = True
        if ident == BANNER:
            out["banner_text"] = banner_text
    if selected and extra_options:
        out["settings"].update(extra_options)
    return out


def max_sessions_ok(value):
    """As the role's assert reads it (`| int >= 1`): what does not parse counts as 0."""
    try:
        return int(value) >= 1
    except (TypeError, ValueError):
        try:
            return int(float(value)) >= 1
        except (TypeError, ValueError):
            return False


def act_of(p, result, selected):
    """Whether the role's later steps have anything to do or say for this host: profile immutable
    (its steps keep SSH off), a refusal (system, MaxSessions, sshd -t, an option sshd would not use,
    the lockout guard), the note that the guard is off, or a change or reload to make."""
    if (
        p["state"] != "hardened"
        or not result["os_supported"]
        or not max_sessions_ok(p["max_sessions"])
    ):
        return True
    if not result.get("installed") or not selected:
        return False
    return bool(
        result["pending"]
        or result["reload_pending"]
        or not result["candidate"]["valid"]
        or result["overridden"]
        or not result["guard"]["ok"]
        or (not p["guard"] and result["reached_over_ssh"])
    )


# --- configuration text -------------------------------------------------------------------------


def value_text(name, value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        sep = "," if name.lower() in COMMA_LISTS else " "
        return sep.join(str(v) for v in value)
    return str(value)


def parse_managed(text):
    """Options of casemate's own file or block: [(Name, value)], in order."""
    out = []
    for line in (text or "").splitlines():
        key, arg = words(line)
        if key is not None:
            out.append((line.strip().split(None, 1)[0], arg))
    return out


def merge(existing, settings, owned):
    """The managed options after this run: earlier ones stay unless a selected control owns them;
    the selected controls' values (and the site's extra options) replace or add. None removes."""
    owned_l = {o.lower() for o in owned} | {k.lower() for k in settings}
    kept = [(k, v) for k, v in existing if k.lower() not in owned_l]
    new = [(k, value_text(k, v)) for k, v in settings.items() if v is not None]
    return sorted(kept + new, key=lambda kv: kv[0].lower())


def render(options, header=HEADER):
    return header + "".join("%s %s\n" % (k, v) for k, v in options)


def strip_block(text):
    """The main file without casemate's managed block, and the block's text."""
    lines = text.splitlines(True)
    try:
        start = next(i for i, text_line in enumerate(lines) if text_line.strip() == BEGIN)
        end = next(i for i, text_line in enumerate(lines) if i > start and text_line.strip() == END)
    except StopIteration:
        return text, ""
    return "".join(lines[:start] + lines[end + 1 :]), "".join(lines[start + 1 : end])


def resolve(pattern):
    return pattern if pattern.startswith("/") else os.path.join(SSH_DIR, pattern)


def dropin_support(main_text, dropin_dir, managed_names, earlier=None):
    """(supported, why): the main file includes dropin_dir/*.conf before it sets any managed option
    and outside any Match block, and no drop-in read before casemate's sets one, so casemate's
    drop-in is read first and wins (sshd keeps the first value it reads)."""
    seen = set()
    for line in main_text.splitlines():
        key, arg = words(line)
        if key is None:
            continue
        if key == "match":
            return False, "the Include of %s comes after a Match block or is missing" % dropin_dir
        if key == "include" and any(
            os.path.dirname(t) == dropin_dir.rstrip("/") for t in include_targets(arg)
        ):
            early = sorted(seen & managed_names)
            if early:
                return False, "the main file sets %s before including %s" % (
                    ", ".join(early),
                    dropin_dir,
                )
            for path, text in sorted((earlier or {}).items()):
                found = sorted({words(row)[0] for row in text.splitlines()} & managed_names)
                if found:
                    return False, "%s, read before casemate's drop-in, sets %s" % (
                        path,
                        ", ".join(found),
                    )
            return True, ""
        seen.add(key)
    return False, "the main file does not include %s/*.conf" % dropin_dir


# What sshd -T prints for a value that is spelled differently in the configuration.
ALIASES = {"prohibit-password": "without-password"}


def normal(name, value):
    text = value_text(name, value).strip()
    text = ALIASES.get(text, text)
    if name.lower() in TIME_OPTIONS:
        return seconds(text) or text
    return text if name.lower() in COMMA_LISTS else " ".join(text.split()).lower()


def overridden(settings, effective_after):
    """Managed options whose effective value (sshd -T on the candidate) is not the one casemate
    writes: something sshd reads first sets them. Only plain values are compared."""
    out = []
    for name, value in sorted(settings.items()):
        if value is None or isinstance(value, dict):
            continue
        key = name.lower()
        seen = effective_after.get(key)
        if not seen:
            continue
        got = seen[0] if key in COMMA_LISTS or len(seen) == 1 else " ".join(seen)
        got = got if key in COMMA_LISTS else " ".join(got.split()).lower()
        want = normal(name, value)
        if not re.match(r"^[\w@.,/:+-]+( [\w@.,/:+-]+)*$", want):
            continue  # time units (1m), patterns or quoting: sshd rewrites them, do not compare
        if key == "listenaddress" and got.startswith(want + ":"):
            continue  # sshd -T adds the port to a ListenAddress given without one
        if got != want:
            out.append("%s %s (wanted %s)" % (name, got, want))
    return out


# --- host keys ----------------------------------------------------------------------------------


# --- effective configuration --------------------------------------------------------------------


def first(options, name, default=""):
    values = options.get(name) or [default]
    return values[0]


def all_words(options, name):
    out = []
    for value in options.get(name, []):
        out.extend(value.split())
    return out


def effective(module, sshd, config, spec):
    argv = [sshd, "-T", "-f", config]
    if spec:
        argv += ["-C", spec]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        return None, one_line(err) or "sshd -T exited %d" % rc
    return parse_effective(out), ""


def one_line(text):
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return "; ".join(lines)[:400]


# --- the session Ansible arrived by -------------------------------------------------------------


# --- the lockout guard --------------------------------------------------------------------------


def _addr_matches(pattern, addr):
    if "/" in pattern:
        try:
            return ipaddress.ip_address(addr) in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    return fnmatch.fnmatchcase(addr, pattern)


def user_matches(pattern, user, addr):
    """sshd's USER or USER@HOST pattern (wildcards, CIDR in the host part)."""
    negate = pattern.startswith("!")
    pattern = pattern.lstrip("!")
    upat, at, hpat = pattern.partition("@")
    hit = fnmatch.fnmatchcase(user, upat) and (not at or (addr and _addr_matches(hpat, addr)))
    return bool(hit) != negate


def key_files(options, user, home):
    out = []
    for pattern in all_words(options, "authorizedkeysfile"):
        if pattern == "none":
            continue
        path = pattern.replace("%%", "\0").replace("%h", home).replace("%u", user)
        path = path.replace("%U", str(pwd.getpwnam(user).pw_uid) if user else "").replace("\0", "%")
        out.append(path if path.startswith("/") else os.path.join(home, path))
    return out


ALGS_FOR_KEY = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
}


def guard_reasons(session, after, connection_password, pubkey, read=None, *, before=None):
    """Why the session's user could not log in with the configuration `after` ([] = it can).
    With `before` (the configuration now), keys count by what the change takes away."""
    read = read or _read_lines
    user, addr = session.get("user", ""), session.get("client_addr", "")
    reasons = []
    root_login = first(after, "permitrootlogin", "yes")
    if user == "root" and root_login in ("no", "forced-commands-only"):
        reasons.append(
            "root login is turned off (PermitRootLogin %s) and Ansible logs in as root" % root_login
        )
    if (
        user == "root"
        and root_login in ("prohibit-password", "without-password")
        and connection_password
    ):
        reasons.append(
            "root may log in with a key only (PermitRootLogin %s) and Ansible uses a password"
            % root_login
        )
    allow = all_words(after, "allowusers")
    if allow and not any(user_matches(p, user, addr) for p in allow):
        reasons.append("%s is not in AllowUsers (%s)" % (user, " ".join(allow)))
    deny = [p for p in all_words(after, "denyusers") if user_matches(p, user, addr)]
    if deny:
        reasons.append("%s matches DenyUsers (%s)" % (user, " ".join(deny)))
    mine = groups_of(user)
    allow_g = all_words(after, "allowgroups")
    if allow_g and not any(fnmatch.fnmatchcase(g, p) for g in mine for p in allow_g):
        reasons.append(
            "%s (groups %s) is in none of AllowGroups (%s)"
            % (user, ", ".join(mine) or "none", " ".join(allow_g))
        )
    deny_g = sorted(
        {g for g in mine for p in all_words(after, "denygroups") if fnmatch.fnmatchcase(g, p)}
    )
    if deny_g:
        reasons.append("%s is in DenyGroups (%s)" % (user, ", ".join(deny_g)))
    if connection_password:
        # a password reaches sshd as PasswordAuthentication or through PAM's keyboard-interactive
        if (
            first(after, "passwordauthentication", "yes") == "no"
            and first(after, "kbdinteractiveauthentication", "yes") == "no"
        ):
            reasons.append("Ansible logs in with a password and password login is turned off")
        return reasons
    reasons.extend(_key_reasons(after, user, pubkey, read, before))
    return reasons


def _read_lines(path):
    try:
        with open(path) as handle:
            return handle.read().splitlines()
    except OSError:
        return None


def authorized(options, user, home, read):
    """(the AuthorizedKeysFile paths, the set of key blobs found in them) under `options`."""
    files = key_files(options, user, home)
    found = set()
    for path in files:
        for line in read(path) or []:
            _, b = key_blob(line)
            if b and not line.lstrip().startswith("#"):
                found.add(b)
    return files, found


def _keys_taken_away(user, key, now, found, where):
    """Compare the keys sshd finds for the user now and after the change: only a key the change
    stops reading can be the one this session (or its agent) logged in with."""
    kind, blob = key
    if blob is not None and blob in found:
        return []
    if blob is not None and blob in now:
        return [
            "%s's key (%s %s) is not in %s (AuthorizedKeysFile after the change)"
            % (user, kind, key_fingerprint(blob), where)
        ]
    lost = sorted(now - found)
    if lost:  # the session's key is unknown (or not read today): keep every key readable
        return [
            "%s's keys %s would no longer be read: they are not in %s (AuthorizedKeysFile "
            "after the change)" % (user, ", ".join(key_fingerprint(b) for b in lost), where)
        ]
    return []  # nothing the change takes away (an agent key, a certificate, ...)


def _key_reasons(after, user, pubkey, read, before=None):
    if first(after, "pubkeyauthentication", "yes") == "no":
        return ["public-key login is turned off (PubkeyAuthentication no)"]
    methods = first(after, "authenticationmethods", "any")
    if methods != "any" and not any(m.split(",") == ["publickey"] for m in methods.split()):
        return ["AuthenticationMethods %s asks for more than a key" % methods]
    kind, blob = key_blob(pubkey) if pubkey else (None, None)
    accepted = first(after, "pubkeyacceptedalgorithms", "")
    if kind and accepted:
        names = set(accepted.split(","))
        if not names & set(ALGS_FOR_KEY.get(kind, (kind,))):
            return ["the key Ansible uses (%s) is not among PubkeyAcceptedAlgorithms" % kind]
    if first(after, "authorizedkeyscommand", "none") != "none":
        return []  # keys come from a command: the fresh login after the reload decides
    if first(after, "trustedusercakeys", "none") != "none":
        return []  # certificates need no authorized_keys line: the fresh login decides
    try:
        home = pwd.getpwnam(user).pw_dir
    except KeyError:
        return ["no local account %s" % user]
    files, found = authorized(after, user, home, read)
    where = " ".join(files) or "none"
    if before is not None:
        _, now = authorized(before, user, home, read)
        return _keys_taken_away(user, (kind, blob), now, found, where)
    if blob is not None:
        if blob not in found:
            return [
                "%s's key (%s %s) is not in %s (AuthorizedKeysFile after the change)"
                % (user, kind, key_fingerprint(blob), where)
            ]
        return []
    if not found:
        return ["%s has no key in %s (AuthorizedKeysFile after the change)" % (user, where)]
    return []


# --- units and package --------------------------------------------------------------------------


def units(module):
    names = ["ssh.service", "sshd.service", "ssh.socket", "sshd.socket"]
    text, _ = systemctl_show(names, ["Id,LoadState,ActiveState,UnitFileState"], module.run_command)
    found = {"service": None, "socket": None}
    if text is None:
        return found
    blocks = parse_show_units(text)
    for i, name in enumerate(names):
        props = dict(blocks[i]) if i < len(blocks) else {}
        props["Name"] = name
        kind = "service" if name.endswith(".service") else "socket"
        if found[kind] is None and props.get("LoadState") not in (None, "not-found"):
            props["Name"] = props.get("Id") or name
            found[kind] = props
    for kind in ("service", "socket"):
        if found[kind] is None:  # not installed (or removed): still masked under its Debian name
            found[kind] = {
                "Name": "ssh." + kind,
                "LoadState": "not-found",
                "ActiveState": "inactive",
            }
    return found


def package(module, name):
    """{name, installed (None: cannot tell), version} of the SSH server's package."""
    found = package_state(name, module.run_command)
    return {"name": name, "installed": found.get("installed"), "version": found.get("version", "")}


# --- planning -----------------------------------------------------------------------------------


def supported(module, settings):
    """Drop algorithms this OpenSSH does not know (older releases lack the newest names)."""
    out = dict(settings)
    ssh = shutil.which("ssh")
    for name, value in settings.items():
        query = QUERY.get(name.lower())
        if not ssh or query is None or not isinstance(value, list):
            continue
        known = set()
        rc, listed, _ = module.run_command([ssh, "-Q", query])
        if rc == 0:
            known = set(listed.split())
        if not known and name.lower() in QUERY_FALLBACK:
            # OpenSSH before 8.x knows no `ssh -Q HostKeyAlgorithms`: key types and signatures
            for one in QUERY_FALLBACK[name.lower()]:
                rc, listed, _ = module.run_command([ssh, "-Q", one])
                if rc == 0:
                    known |= set(listed.split())
        if not known:
            continue
        kept = [a for a in value if a in known]
        if not kept:
            module.fail_json(
                msg="none of the %s casemate wants is known to this OpenSSH (%s)"
                % (name, ", ".join(value))
            )
        out[name] = kept
    return out


def comment_weak(text, weak_paths):
    out, changed = [], False
    for line in text.splitlines(True):
        key, arg = words(line)
        if key == "hostkey" and resolve(arg) in weak_paths:
            out.append(WEAK_MARK + line.lstrip())
            changed = True
        else:
            out.append(line)
    return "".join(out), changed


def match_lines(main_path, texts):
    """Lines set inside a Match block, file by file: {path: [(index, Match line, key, arg)]}, read
    from `texts` (path -> the content the change leaves) by the host readers' Match scanner, the
    one verify judges by (casemate_sshd.match_entries)."""
    out = {}

    def expand(pattern):
        return sorted(t for t in texts if fnmatch.fnmatchcase(t, pattern))

    for entry in match_entries(main_path, texts.get, expand):
        out.setdefault(entry["file"], []).append(
            (entry["line"] - 1, entry["match"], entry["option"], entry["value"])
        )
    return out


def match_change(main_path, texts, new, settings):
    """Comment out what a Match block sets against casemate's managed single values (the block
    would give those connections back what casemate turns off), in `new`; return the lines kept
    because they hold lists (AllowGroups, AuthorizedKeysFile...), which casemate will not guess."""
    wanted = {
        k.lower(): normal(k, v)
        for k, v in settings.items()
        if v is not None and not isinstance(v, (list, tuple, dict))
    }
    current = {path: new.get(path, text) for path, text in texts.items()}
    kept, edits = [], {}
    for path, found in match_lines(main_path, current).items():
        for index, match, key, arg in found:
            if key in wanted:
                if normal(key, arg) != wanted[key]:
                    edits.setdefault(path, set()).add(index)
            elif key in {k.lower() for k, v in settings.items() if v is not None}:
                kept.append("%s line %d (%s): %s %s" % (path, index + 1, match, key, arg))
    for path, indexes in edits.items():
        lines = current[path].splitlines(True)
        for index in indexes:
            lines[index] = MATCH_MARK + lines[index].lstrip()
        new[path] = "".join(lines)
    return kept


def managed_change(p, main_text, dropins, settings):
    """(mode, why the main file is used, the managed file, {path: new content})."""
    main_path, dropin_dir = p["config"], p["dropin_dir"].rstrip("/")
    managed = {k.lower() for k in settings} | {o.lower() for o in p["owned"]}
    mode, why = p["mode"], ""
    if mode == "auto":
        earlier = {
            path: text
            for path, text in dropins.items()
            if os.path.basename(path) < p["dropin_name"]
        }
        ok, why = dropin_support(main_text, dropin_dir, managed, earlier)
        mode = "dropin" if ok else "main"
    new = {}
    stripped, block = strip_block(main_text)
    if mode == "dropin":
        dropin_path = os.path.join(dropin_dir, p["dropin_name"])
        current = dropins.get(dropin_path)
        options = merge(parse_managed(current), settings, p["owned"])
        text = render(options)
        if options and text != current:
            new[dropin_path] = text
        if block:  # a block from an earlier main-file run: the drop-in takes over
            new[main_path] = stripped
        return mode, "", dropin_path, new
    options = merge(parse_managed(block), settings, p["owned"])
    text = (BEGIN + "\n" + render(options, "") + END + "\n" + stripped) if options else stripped
    if text != main_text:
        new[main_path] = text
    return mode, why, main_path, new


def describe_host_keys(module, sshd, p):
    """Every host key sshd loads now and every key file in /etc/ssh, with type, size, weakness."""
    effective_now, _ = effective(module, sshd, p["config"], "")
    keys = read_host_keys(effective_now or {}, module.run_command)
    for key in keys:
        if key["exists"]:
            weak_rsa = key["type"] == "rsa" and (key["bits"] or 0) < p["min_rsa_bits"]
            key["weak"] = key["type"] == "dsa" or weak_rsa
    return keys


def weak_change(module, keys, texts, new):
    """Weak key files to remove; their HostKey lines are commented out in `new`. Never the last
    strong key: with none left, the weak keys stay and the host is told why."""
    strong = [k for k in keys if k["configured"] and k.get("exists") and not k["weak"]]
    weak = [k["path"] for k in keys if k.get("exists") and k["weak"]]
    if weak and not strong:
        module.warn(
            "only weak host keys are configured (%s): kept, never the last key" % ", ".join(weak)
        )
        return []
    for path, text in texts.items():
        edited, changed = comment_weak(new.get(path, text), set(weak))
        if changed:
            new[path] = edited
    removes = []
    for path in weak:
        removes.append(path)
        if os.path.exists(path + ".pub"):
            removes.append(path + ".pub")
    return removes


def file_specs(p, new):
    writes = {}
    for path, content in new.items():
        if path == p["banner_path"]:
            bits = "0644"
        elif os.path.exists(path):
            bits = "%04o" % (os.stat(path).st_mode & 0o7777)
        else:
            bits = "0600"
        writes[path] = {"content": content, "mode": bits}
    return writes


def plan(module, p, sshd):
    main_path, dropin_dir = p["config"], p["dropin_dir"].rstrip("/")
    main_text = read_text(main_path)
    if main_text is None:
        module.fail_json(msg="cannot read %s" % main_path)
    dropins = {
        path: read_text(path) or ""
        for path in sorted(glob.glob(os.path.join(dropin_dir, "*.conf")))
    }
    settings = supported(module, p["settings"])
    mode, why, managed_path, new = managed_change(p, main_text, dropins, settings)
    keys = describe_host_keys(module, sshd, p)
    removes = []
    if p["remove_weak_keys"]:
        removes = weak_change(module, keys, dict(dropins, **{main_path: main_text}), new)
    texts = dict(dropins, **{main_path: main_text})
    dropin_path = os.path.join(dropin_dir, p["dropin_name"])
    if dropin_path in new:
        texts.setdefault(dropin_path, "")
    try:
        match_kept = match_change(main_path, texts, new, settings)
    except ValueError as exc:  # an Include loop: sshd refuses the configuration too
        module.fail_json(msg="cannot read sshd's Match blocks: %s" % exc)
    if p["banner_text"] and p["banner_path"]:
        banner = p["banner_text"].rstrip("\n") + "\n"
        if read_text(p["banner_path"]) != banner:
            new[p["banner_path"]] = banner
    return {
        "mode": mode,
        "why_main": why,
        "managed_path": managed_path,
        "writes": file_specs(p, new),
        "removes": removes,
        "keys": keys,
        "main_text": main_text,
        "dropins": dropins,
        "settings": settings,
        "match_kept": match_kept,
    }


def without_casemate(p, planned):
    """The configuration as it was before casemate's options (a reload that never happened): the
    planned inputs with casemate's drop-in removed or its block taken out of the main file, and
    what a rollback writes to get there ({path: content, or None to remove})."""
    main_path, managed = p["config"], planned["managed_path"]
    dropins = dict(planned["dropins"])
    main_text = planned["main_text"]
    if managed == main_path:
        stripped, _ = strip_block(main_text)
        return dict(planned, writes={main_path: {"content": stripped, "mode": "0644"}}), {
            main_path: stripped
        }
    dropins.pop(managed, None)
    return dict(planned, dropins=dropins, writes={}), {managed: None}


def candidate_tree(tmp, p, planned):
    """Copies of the configuration with the change applied; Include of the drop-in directory is
    pointed at the copies. Returns the candidate main file."""
    main_path, dropin_dir = p["config"], p["dropin_dir"].rstrip("/")
    main_text, dropins, new = planned["main_text"], planned["dropins"], planned["writes"]
    ddir = os.path.join(tmp, "sshd_config.d")
    os.mkdir(ddir)
    files = dict(dropins)
    for path, spec in new.items():
        if os.path.dirname(path) == dropin_dir:
            files[path] = spec["content"]
    for path, text in files.items():
        with open(os.path.join(ddir, os.path.basename(path)), "w") as handle:
            handle.write(text)
    text = new[main_path]["content"] if main_path in new else main_text
    lines = []
    for line in text.splitlines(True):
        key, arg = words(line)
        if key != "include":
            lines.append(line)
            continue
        targets = [
            os.path.join(ddir, os.path.basename(t)) if os.path.dirname(t) == dropin_dir else t
            for t in include_targets(arg)
        ]
        lines.append("Include %s\n" % " ".join(targets))
    main = os.path.join(tmp, "sshd_config")
    with open(main, "w") as handle:
        handle.write("".join(lines))
    return main


def new_reasons(session, before, after, p, read=None):
    """What the change would take away: a reason that holds for the current configuration too
    cannot be the way this session got in (it did get in, e.g. with an agent key rather than the
    key file named in the inventory), so only reasons the change adds count."""
    args = (p["uses_password"], p["controller_pubkey"], read)
    now = guard_reasons(session, before, *args, before=before) if before else []
    later = guard_reasons(session, after, *args, before=before or None)
    return [r for r in later if r not in now]


def real_paths(text, tmp, p):
    """sshd's complaint about the candidate copies, naming the files they stand for."""
    text = text.replace(os.path.join(tmp, "sshd_config.d"), p["dropin_dir"].rstrip("/"))
    return text.replace(os.path.join(tmp, "sshd_config"), p["config"])


def spec_of(session):
    if not session.get("via_ssh"):
        return ""
    parts = ["user=%s" % session["user"]]
    if session.get("client_addr"):
        parts += ["host=%s" % session["client_addr"], "addr=%s" % session["client_addr"]]
    if session.get("server_addr"):
        parts += ["laddr=%s" % session["server_addr"], "lport=%s" % session["server_port"]]
    return ",".join(parts)


def listen_ports(options):
    """The TCP ports sshd listens on, from sshd -T's listenaddress lines (a ListenAddress with a
    port of its own overrides Port), else its port lines."""
    ports = []
    for value in options.get("listenaddress", []):
        addr = value.split()[0] if value.split() else ""
        port = addr.rsplit(":", 1)[-1] if ":" in addr else ""
        if port.isdigit() and int(port) not in ports:
            ports.append(int(port))
    if not ports:
        ports = [int(v) for v in options.get("port", ["22"]) if v.isdigit()]
    return sorted(set(ports))


def os_of(path="/etc/os-release"):
    """{id, id_like, version} of the host (casemate_host's reader)."""
    found = os_release(path)
    return {"id": found["id"], "id_like": found["id_like"], "version": found["version_id"]}


def debian_family(release):
    """The role knows Debian's layout: ssh.service and ssh.socket, openssh-server, sshd_config.d."""
    return "debian" in [release.get("id", ""), *release.get("id_like", "").split()]


SSH_CONNECTIONS = (
    "ssh",
    "smart",
    "ansible.builtin.ssh",
    "paramiko",
    "paramiko_ssh",
    "ansible.builtin.paramiko_ssh",
)


def finish(module, p, result, selected):
    result["act"] = act_of(p, result, selected)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec={
            "config": {"type": "path", "default": "/etc/ssh/sshd_config"},
            "dropin_dir": {"type": "path", "default": "/etc/ssh/sshd_config.d"},
            "dropin_name": {"type": "str", "default": "00-casemate-hardening.conf"},
            "mode": {"type": "str", "default": "auto", "choices": ["auto", "dropin", "main"]},
            "state": {"type": "str", "default": "hardened", "choices": ["hardened", "off"]},
            "controls": {"type": "dict", "default": {}},
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
            "extra_options": {"type": "dict", "default": {}},
            "max_sessions": {"type": "raw", "default": 1},
            "banner_path": {"type": "str", "default": ""},
            "banner_text": {"type": "str", "default": ""},
            "min_rsa_bits": {"type": "int", "default": 3072},
            "guard": {"type": "bool", "default": True},
            "connection": {"type": "str", "default": ""},
            "ansible_user": {"type": "str", "default": ""},
            "controller_pubkey": {"type": "str", "default": "", "no_log": False},
            "uses_password": {"type": "bool", "default": False, "no_log": False},
            "server_package": {"type": "str", "default": "openssh-server"},
        },
        supports_check_mode=True,
    )
    p = dict(module.params)
    selected = selected_controls(list(HARDENING), p["run_tags"], p["skip_tags"])
    p.update(decide(p["state"], p["controls"], p["extra_options"], p["banner_text"], selected))
    session = find_session()
    connection = p["connection"] or "ssh"
    release = os_of()
    result = {
        "changed": False,
        "session": session,
        "connection": connection,
        # reached over SSH: an sshd among this task's parents, or an SSH connection plugin (the
        # process tree can hide the session: become through machinectl or run0, a hidden /proc)
        "ssh_connection": connection in SSH_CONNECTIONS,
        "reached_over_ssh": bool(session["via_ssh"]) or connection in SSH_CONNECTIONS,
        "os": release,
        "os_supported": debian_family(release),
        "units": units(module),
        "package": package(module, p["server_package"]),
        "listen_ports": [],
        "selected": selected if p["state"] == "hardened" else [],
        "settings": p["settings"],
        "owned": p["owned"],
        "remove_weak_keys": p["remove_weak_keys"],
    }
    if not result["os_supported"]:
        result.update(
            installed=False,
            guard={"checked": False, "ok": True, "reasons": [], "message": ""},
            writes={},
            removes=[],
        )
        finish(module, p, result, selected)
    sshd = find_command("sshd")
    result["installed"] = bool(sshd) and os.path.exists(p["config"])
    if not result["installed"]:
        result.update(
            guard={"checked": False, "ok": True, "reasons": [], "message": ""},
            writes={},
            removes=[],
        )
        finish(module, p, result, selected)
    planned = plan(module, p, sshd)
    result.update(
        mode=planned["mode"],
        why_main=planned["why_main"],
        managed_path=planned["managed_path"],
        writes=planned["writes"],
        removes=planned["removes"],
        host_keys=planned["keys"],
        pending=bool(planned["writes"] or planned["removes"]),
    )
    # A file written after sshd last loaded its configuration (a run interrupted between the write
    # and the reload) is reloaded too, through the same guard and commit-confirmed path: the change
    # is then from the configuration without casemate's options, which a rollback puts back.
    service = result["units"]["service"]["Name"]
    result["loaded"] = config_loaded(module, service, [planned["managed_path"]])
    result["reload_pending"] = not result["pending"] and result["loaded"]["loaded"] is False
    result["rollback_to"] = {}
    spec = spec_of(session)
    result["before"], before_err = effective(module, sshd, p["config"], spec)
    tmp = tempfile.mkdtemp(prefix="casemate-sshd-")
    try:
        if result["reload_pending"]:
            fallback, result["rollback_to"] = without_casemate(p, planned)
            os.mkdir(os.path.join(tmp, "before"))
            earlier = candidate_tree(os.path.join(tmp, "before"), p, fallback)
            result["before"], before_err = effective(module, sshd, earlier, spec)
        cand = candidate_tree(tmp, p, planned)
        rc, _, err = module.run_command([sshd, "-t", "-f", cand])
        error = real_paths(one_line(err), tmp, p) if rc != 0 else ""
        after, after_err = (None, error) if rc != 0 else effective(module, sshd, cand, spec)
        whole = effective(module, sshd, cand, "")[0] if spec and after is not None else after
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["candidate"] = {"valid": rc == 0 and after is not None, "error": error or after_err}
    result["after"] = after or {}
    result["listen_ports"] = listen_ports(after or {})
    result["match_kept"] = planned["match_kept"]
    for line in planned["match_kept"]:
        module.warn("a Match block sets a list casemate also sets, kept as it is: %s" % line)
    # casemate's values must be the ones sshd uses (Match blocks aside): anything read first wins
    result["overridden"] = overridden(planned["settings"], whole or {})
    result["guard"] = guard_of(p, session, result, after)
    if before_err:
        result["before_error"] = before_err
    finish(module, p, result, selected)


def guard_of(p, session, result, after):
    """The lockout guard's verdict on a planned, valid change."""
    connection = result["connection"]
    guard = {
        "checked": False,
        "ok": True,
        "reasons": [],
        "message": "",
        "user": session.get("user", ""),
    }
    if (
        p["guard"]
        and result["reached_over_ssh"]
        and result["candidate"]["valid"]
        and (result["pending"] or result["reload_pending"])
    ):
        guard["checked"] = True
        if not session["via_ssh"]:
            reasons = [
                "the connection is %s but no SSH session is among this task's parent processes, so the user "
                "Ansible logs in as cannot be checked" % connection
            ]
        else:
            reasons = new_reasons(session, result["before"], after, p)
        guard["reasons"] = reasons
        guard["ok"] = not reasons
        if reasons:
            who = session.get("user") or p["ansible_user"] or "the connecting user"
            guard["message"] = (
                "skipped, nothing changed: after this change %s could no longer log in over SSH: %s; "
                "fix the access first, or set sshd_lockout_guard: false to force it (commit-confirmed "
                "still rolls back a failed login)" % (who, "; ".join(reasons))
            )
    return guard


if __name__ == "__main__":
    main()
