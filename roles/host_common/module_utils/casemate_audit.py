"""casemate's readers of audit rules: the watches a rule file or `auditctl -l` holds, and the state
`auditctl -s` reports. A sibling of casemate_host.py (read its docstring): imported by the
auditd_rules role as ansible.module_utils.casemate_audit, and by the controller's audit_rule check
kind (python/casemate/probe/library.py), which judges the raw text the probe returns. Standard
library only, python3 >= 3.6."""


def _norm(path):
    return path.rstrip("/") or "/"


def watches(rules):
    """(path, permissions, key) of every watch rule in `rules`, as written: `-w PATH [-p PERMS]
    [-k KEY]`, or a syscall rule with `-F path=PATH` / `-F dir=PATH` [`-F perm=PERMS`]
    [`-F key=KEY` / `-k KEY`]. A rule without permissions watches everything (rwxa), as auditctl
    -l shows it; a path's trailing slash is dropped. Comments and other rules are left out."""
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
    return found


def watched(rules, path, permissions=None):
    """Whether a watch rule in `rules` covers exactly `path`, with at least `permissions`."""
    need = set(permissions or "")
    return any(p == _norm(path) and need <= set(perms) for p, perms, _ in watches(rules))


def permissions_of(rules, path):
    """The permissions of every watch of exactly `path` in `rules`, as written."""
    return [perms for p, perms, _ in watches(rules) if p == _norm(path)]


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
