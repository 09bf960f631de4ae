"""casemate's readers of audit rules: the watches a rule file or `auditctl -l` holds, and the state
`auditctl -s` reports. A sibling of casemate_host.py (read its docstring): imported by the
auditd_rules role as ansible.module_utils.casemate_audit, and by the controller's audit_rule check
kind (python/casemate/probe/library.py), which judges the raw text the probe returns. Standard
library only, python3 >= 3.6."""

import functools
import os

# Where a binary is looked for: root's PATH on Debian (and systemd's default), fixed so that the
# role and the probe find the same files whatever PATH each was started with.
BINARY_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def _norm(path):
    return path.rstrip("/") or "/"


def watches(rules):
    """(path, permissions, key) of every watch rule in `rules`, as written: `-w PATH [-p PERMS]
    [-k KEY]`, or a syscall rule with `-F path=PATH` / `-F dir=PATH` [`-F perm=PERMS`]
    [`-F key=KEY` / `-k KEY`]. A rule without permissions watches everything (rwxa), as auditctl
    -l shows it; a path's trailing slash is dropped. Comments and other rules are left out."""
    return list(_watches(rules))


# The last texts read: a judge asks about many paths of one rule text, and hosts of one kind hold
# the same rules.
@functools.lru_cache(maxsize=16)
def _watches(rules):
    found = []
    for raw in rules.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] not in ("-w", "-a", "-A"):
            continue
        path, perms, key = "", "rwxa", ""
        for i, word in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if word == "-w":
                path = nxt
            elif word == "-p":
                perms = nxt
            elif word == "-k":
                key = nxt
            elif word == "-F" and "=" in nxt:
                field, _, value = nxt.partition("=")
                if field in ("path", "dir"):
                    path = value
                elif field == "perm":
                    perms = value
                elif field == "key":
                    key = value
        if path:
            found.append((_norm(path), perms, key))
    return tuple(found)


def watched(rules, path, permissions=None):
    """Whether a watch rule in `rules` covers exactly `path`, with at least `permissions`."""
    need = set(permissions or "")
    return any(p == _norm(path) and need <= set(perms) for p, perms, _ in _watches(rules))


def permissions_of(rules, path):
    """The permissions of every watch of exactly `path` in `rules`, as written."""
    return [perms for p, perms, _ in _watches(rules) if p == _norm(path)]


def missing_rules(wanted, loaded):
    """The lines of `wanted` whose watch (path, permissions, key) `loaded` (auditctl -l) lacks;
    permissions compare as sets (auditctl -l prints them in its own order)."""

    def same(rules):
        return {(p, "".join(sorted(perms)), k) for p, perms, k in watches(rules)}

    have = same(loaded)
    return [line for line in wanted if watches(line) and not same(line) <= have]


def audit_status(text):
    """The `enabled` flag of `auditctl -s` (2: rules locked until reboot), or None when it does not
    say."""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "enabled" and words[1].isdigit():
            return int(words[1])
    return None


def binary_paths(name, documented=(), dirs=BINARY_DIRS):
    """Every path an audit watch of the binary `name` must cover, so that a watch rule is found
    whichever path a checker reads: each path it can be called by (`name` in a directory of `dirs`,
    a directory reached through a symlink such as /sbin -> usr/sbin counted once), the file each
    resolves to when it is a symlink (/usr/bin/runc -> /usr/sbin/runc), and the `documented` paths
    (those the benchmark names, e.g. /usr/bin/dockerd where Debian installs /usr/sbin/dockerd)
    whose directory exists: a watch there also covers a binary put there later. Empty when `name`
    is installed nowhere in `dirs` (nothing to watch: the control does not apply)."""
    found, seen_dirs = [], set()
    for folder in dirs:
        real_dir = os.path.realpath(folder)
        if real_dir in seen_dirs or not os.path.isdir(real_dir):
            continue
        seen_dirs.add(real_dir)
        called = os.path.join(real_dir, name)
        if not (os.path.isfile(called) and os.access(called, os.X_OK)):
            continue
        for path in (called, os.path.realpath(called)):
            if path not in found:
                found.append(path)
    if not found:
        return []
    for path in documented:
        if path not in found and os.path.isdir(os.path.dirname(path)):
            found.append(path)
    return found
