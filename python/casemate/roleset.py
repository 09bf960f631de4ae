"""Which roles a run needs: a run of some controls plays only the roles that fix them (the
catalog's `remediate` and `also`), with the roles that set a fact one of those reads, and skips
every other role of the playbook whole, validation and preflight included (issue 14)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from casemate import private
from casemate.catalog.model import Entry

# playbooks/harden.yml tags each role it plays with this prefix and its name; a run skips the
# roles it does not need with --skip-tags, which wins over `always` (Ansible filters tasks by tag
# on the controller, before any host is contacted: a skipped role costs nothing per host).
ROLE_TAG = "casemate_role_"
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class FactRead:
    """One role reads a fact another role sets (set_fact or register) in a task carrying `tags`:
    when the reader runs with one of those tags, the setter must run before it."""

    reader: str
    fact: str
    setter: str
    tags: tuple[str, ...]


# Every fact one role sets and another reads. tests/unit/test_roleset.py finds each cross-role
# read in roles/ and the tags of the task that sets it, and fails when this table differs.
# (gvisor_docker_runtimes, the runsc runtime docker_daemon writes to daemon.json, is a role var of
# gvisor, set by no task: gvisor plays in every run of cm_rt_1_2 as the catalog's `also`.)
FACT_READS: tuple[FactRead, ...] = (
    # the seccomp profile dockerd makes its default (docker_daemon_seccomp_profile)
    FactRead(
        "docker_daemon", "seccomp_docker_profile", "seccomp", ("cis_docker_2_17", "cm_rt_2_2")
    ),
)


def fix_roles(entries: Iterable[Entry]) -> set[str]:
    """The roles that fix `entries`: each control's role and those that take part (`also`)."""
    return {
        r
        for e in entries
        if e.control.remediation is not None
        for r in (e.control.remediation.role, *e.control.remediation.also)
    }


def needed(
    entries: Iterable[Entry], tags: Iterable[str], reads: Iterable[FactRead] = FACT_READS
) -> list[str]:
    """The roles a run of `tags` needs: those that fix the tagged entries, and each role that sets
    a fact one of them reads under a tag of the run (and so on), sorted."""
    run = set(tags)
    roles = fix_roles(e for e in entries if e.id in run)
    reads = list(reads)
    grown = True
    while grown:
        grown = False
        for read in reads:
            wanted = "always" in read.tags or bool(run & set(read.tags))
            if read.reader in roles and wanted and read.setter not in roles:
                roles.add(read.setter)
                grown = True
    return sorted(roles)


def playbook_roles(playbook: Path) -> list[str]:
    """The roles `playbook` plays (its plays' `roles:` lists), in order, each once."""
    plays: Any = yaml.load(playbook.read_text(), Loader=_LOADER)
    found: dict[str, None] = {}
    for play in plays or []:
        for role in play.get("roles") or []:
            found[_role_name(role)] = None
    return list(found)


def skipped(played: Iterable[str], roles: Iterable[str]) -> list[str]:
    """The --skip-tags that leave out every role of the playbook (`played`) not in `roles`."""
    keep = set(roles)
    return [f"{ROLE_TAG}{r}" for r in played if r not in keep]


# A play's host pattern casemate can judge: plain group or host names joined by ':' or ','. Any
# other pattern (wildcards, `&`, `!`, `all`, a regex) is kept whole: it may match any host.
_PLAIN = re.compile(r"^[A-Za-z0-9_.-]+$")
_BODY = ("tasks", "pre_tasks", "post_tasks", "handlers")


def _matches(pattern: object, names: set[str]) -> bool:
    """Whether a play's `hosts` may match a host named or grouped in `names`."""
    parts = pattern if isinstance(pattern, list) else re.split(r"[:,]", str(pattern))
    plain = [str(p).strip() for p in parts]
    if not all(_PLAIN.match(p) and p != "all" for p in plain):
        return True
    return bool(names & set(plain))


def trimmed(
    plays: list[dict[str, Any]], names: Iterable[str], roles: Iterable[str] | None
) -> list[dict[str, Any]]:
    """The plays of a playbook a run needs: those whose hosts may match one of the run's hosts
    (`names`: the hosts and every group they are in), each with only the roles in `roles` (None:
    every role); a play left with no role and no task goes. ansible-playbook parses every role
    of every play before the first task, those of plays that match no host and roles skipped by
    tag included: what is left out here is never parsed. What runs is what --skip-tags and
    --limit would run on the whole playbook."""
    seen = set(names)
    keep = None if roles is None else set(roles)
    out: list[dict[str, Any]] = []
    for play in plays:
        if not _matches(play.get("hosts", ""), seen):
            continue
        kept = play
        if keep is not None and "roles" in play:
            kept = play | {"roles": [r for r in play["roles"] if _role_name(r) in keep]}
            if not kept["roles"] and not any(play.get(k) for k in _BODY):
                continue
        out.append(kept)
    return out


def _role_name(role: object) -> str:
    return str(role["role"]) if isinstance(role, Mapping) else str(role)


def write_trimmed(
    playbook: Path, target: Path, names: Iterable[str], roles: Iterable[str] | None
) -> Path:
    """`playbook` trimmed (see `trimmed`) for a run of hosts called or grouped in `names`,
    written to `target` (kept in the run's directory: the plays the run parsed)."""
    plays: Any = yaml.load(playbook.read_text(), Loader=_LOADER)
    kept = trimmed(list(plays or []), names, roles)
    head = f"# {playbook.name} as casemate played it: only the plays and roles this run needed\n"
    private.write(target, head + yaml.safe_dump(kept, sort_keys=False, width=100))
    return target
