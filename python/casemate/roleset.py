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
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


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


# What a play's `roles:` entry may carry to become an import_role task with the same effect.
_AS_TASK = frozenset({"role", "tags", "when"})
VALIDATE_TASK = "Preflight | Validate the arguments of the roles of this play"


def _main_options(role_dir: Path) -> dict[str, Any] | None:
    """The options of a role's `main` entry point (meta/argument_specs.yml), or None when the
    role has no argument spec."""
    for name in ("argument_specs.yml", "argument_specs.yaml"):
        path = role_dir / "meta" / name
        if path.is_file():
            doc: Any = yaml.load(path.read_text(), Loader=_LOADER)
            main = ((doc or {}).get("argument_specs") or {}).get("main")
            return _checked(dict((main or {}).get("options") or {})) if main is not None else None
    return None


def _checked(options: Mapping[str, Any]) -> dict[str, Any]:
    """Argument spec options without their descriptions (the check never reads them, and
    ansible-playbook parses every byte of the playbook), suboptions included."""
    out: dict[str, Any] = {}
    for name, option in options.items():
        if not isinstance(option, Mapping):
            out[name] = option
            continue
        kept = {k: v for k, v in option.items() if k != "description"}
        if isinstance(kept.get("options"), Mapping):
            kept["options"] = _checked(kept["options"])
        out[name] = kept
    return out


def validated_once(play: dict[str, Any], roles_dir: Path) -> dict[str, Any]:
    """`play` with its roles' arguments validated in one task per host instead of one per role.
    Ansible puts a `validate_argument_spec` task before every role that has an argument spec
    (each costs controller CPU on every host, run or not); here the play's roles become
    `import_role` tasks with `rolespec_validate: false`, after one task that validates the
    options of all of them against the same variables (role options are prefixed with their
    role's name: none is shared). A play this cannot express the same way is left as it is."""
    roles = play.get("roles")
    if not roles or any(k in play for k in _BODY):
        return play
    entries = [{"role": r} if isinstance(r, str) else r for r in roles]
    if not all(isinstance(r, Mapping) and set(r) <= _AS_TASK for r in entries):
        return play
    spec: dict[str, Any] = {}
    names: list[str] = []
    for entry in entries:
        options = _main_options(roles_dir / str(entry["role"]))
        if options is None:
            continue
        if set(options) & set(spec):  # two roles would claim one option: Ansible's own way
            return play
        spec |= options
        names.append(str(entry["role"]))
    tasks: list[dict[str, Any]] = []
    if names:
        context = {"type": "role", "name": ", ".join(names), "argument_spec_name": "main"}
        tasks.append(
            {
                "name": VALIDATE_TASK,
                "ansible.builtin.validate_argument_spec": {
                    "argument_spec": spec,
                    "validate_args_context": context,
                },
                "tags": ["always"],
            }
        )
    for entry in entries:
        name = str(entry["role"])
        keywords = {k: v for k, v in entry.items() if k != "role"}
        task: dict[str, Any] = {"name": f"Play role {name}"}
        task |= {"ansible.builtin.import_role": {"name": name, "rolespec_validate": False}}
        tasks.append(task | keywords)
    return {k: v for k, v in play.items() if k != "roles"} | {"tasks": tasks}


def write_trimmed(
    playbook: Path, target: Path, names: Iterable[str], roles: Iterable[str] | None
) -> Path:
    """`playbook` trimmed (see `trimmed`) for a run of hosts called or grouped in `names`, each
    play's roles validated in one task (`validated_once`; roles from the content's roles/),
    written to `target` (kept in the run's directory: the plays the run parsed)."""
    plays: Any = yaml.load(playbook.read_text(), Loader=_LOADER)
    roles_dir = playbook.parent.parent / "roles"
    kept = [validated_once(p, roles_dir) for p in trimmed(list(plays or []), names, roles)]
    head = f"# {playbook.name} as casemate played it: only the plays and roles this run needed\n"
    text = yaml.dump(kept, Dumper=_DUMPER, sort_keys=False, width=100)
    private.write(target, head + text)
    return target
