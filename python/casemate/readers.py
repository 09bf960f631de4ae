"""The host readers, as the controller sees them. Each fact about a host is read by one stdlib-only
function in roles/host_common/module_utils/casemate_*.py: the roles' modules import them there (as
ansible.module_utils.NAME), the probe's one remote script carries their text (probe/collect.py),
and the check kinds that judge raw text the probe returns (audit rules, command lines) parse it with
the same functions, loaded from the same files here."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from casemate.locations import content_root

# In the order they go into the probe's script: a file may use the names of those before it.
LIBRARY = ("casemate_host", "casemate_sshd", "casemate_audit", "casemate_proof", "casemate_engine")
LIBRARY_IMPORT = "ansible.module_utils.casemate_"


def library_path(name: str) -> Path:
    return content_root() / "roles" / "host_common" / "module_utils" / f"{name}.py"


def _imports_library(node: ast.stmt) -> bool:
    """A `from ansible.module_utils.casemate_* import ...`, or the `try:` holding such imports
    with the collection's `except ImportError:` fallback (roles/*/module_utils in a collection)."""
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").startswith(LIBRARY_IMPORT)
    return isinstance(node, ast.Try) and all(_imports_library(n) for n in node.body)


# Where a file's definitions begin, and a top-level statement that may be a library import
_FIRST_DEFINITION = re.compile(r"^(?:def|class|async|@)\b", re.MULTILINE)
_MAYBE_LIBRARY_IMPORT = re.compile(r"^(?:try\s*:|from\s+ansible\.module_utils\.)", re.MULTILINE)


def _head(source: str) -> str:
    """The part of `source` that holds every top-level library import: the lines before its first
    definition, when nothing after them could be one (the whole of it otherwise). Parsing only
    that part is what makes the probe's script cheap to build on every verify."""
    first = _FIRST_DEFINITION.search(source)
    if first is None or _MAYBE_LIBRARY_IMPORT.search(source, first.start()):
        return source
    return source[: first.start()]


def without_library_imports(source: str) -> str:
    """`source` without its `from ansible.module_utils.casemate_* import ...` statements: in the
    probe's one script those names are already defined by the library text in front of it."""
    lines = source.splitlines(keepends=True)
    try:
        body = ast.parse(_head(source)).body
    except SyntaxError:  # the head ended inside a statement (a string): the whole file then
        body = ast.parse(source).body
    dropped: set[int] = set()
    for node in body:
        if _imports_library(node):
            dropped.update(range(node.lineno - 1, node.end_lineno or node.lineno))
    return "".join(line for i, line in enumerate(lines) if i not in dropped)


def library_module(name: str) -> ModuleType:
    """A library file loaded as a module of its own (once per process, like any import).

    verify judges hosts in threads: the module is published in sys.modules only once it is
    whole, so a second thread never finds a half-executed module (one without its functions yet),
    and one thread at a time loads (a lock), so threads that all ask at once run the file once,
    not once each (eight hosts' threads each compiled casemate_host before)."""
    key = f"casemate._readers.{name}"
    loaded = sys.modules.get(key)
    if loaded is not None:
        return loaded
    with _LOADING:  # reentrant: a file that imports from a sibling loads the sibling first
        return sys.modules.get(key) or _load(name, key)


_LOADING = threading.RLock()


def _load(name: str, key: str) -> ModuleType:
    """Run library file `name` as module `key` and publish it (library_module holds the lock)."""
    path = library_path(name)
    source = path.read_text(encoding="utf-8")
    needs = _library_names(source)
    if needs:  # it imports from a sibling (as ansible.module_utils.casemate_*): given here
        module = ModuleType(key)
        module.__file__ = str(path)
        for sibling, names in needs.items():
            found = library_module(sibling)
            module.__dict__.update({bound: getattr(found, n) for bound, n in names.items()})
        exec(compile(without_library_imports(source), str(path), "exec"), module.__dict__)
    else:
        spec = importlib.util.spec_from_file_location(key, path)
        if spec is None or spec.loader is None:  # pragma: no cover - a .py path has one
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # the files are plain functions: none looks itself up
    return sys.modules.setdefault(key, module)


def _library_names(source: str) -> dict[str, dict[str, str]]:
    """sibling library file -> {the name `source` binds: the sibling's name} of its imports."""
    try:
        tree = ast.parse(_head(source))
    except SyntaxError:  # the head ended inside a statement (a string): the whole file then
        tree = ast.parse(source)
    needs: dict[str, dict[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(LIBRARY_IMPORT):
            sibling = (node.module or "").removeprefix("ansible.module_utils.")
            needs.setdefault(sibling, {}).update({a.asname or a.name: a.name for a in node.names})
    return needs


# --- the pure parsers the check kinds use ---------------------------------------------------------


def audit_watches(rules: str) -> list[tuple[str, str, str]]:
    """(path, permissions, key) of every watch rule in a rule file or `auditctl -l` output."""
    return cast(list[tuple[str, str, str]], library_module("casemate_audit").watches(rules))


def audit_watched(rules: str, path: str, permissions: str | None) -> bool:
    """Whether a watch rule covers exactly `path`, with at least `permissions` (e.g. "wa")."""
    return bool(library_module("casemate_audit").watched(rules, path, permissions))


def audit_permissions(rules: str, path: str) -> list[str]:
    """The permissions of every watch of exactly `path`, as written."""
    return cast(list[str], library_module("casemate_audit").permissions_of(rules, path))


def flag_values(argv: Sequence[str], names: Sequence[str], value_type: str | None) -> list[str]:
    """Every value given to any of `names` on a command line, in order (Go's flag rules)."""
    found = library_module("casemate_host").flag_values(list(argv), list(names), value_type)
    return cast(list[str], found)


def evidence_of(
    found: Mapping[str, Any],
    names: Sequence[str],
    interfaces: Sequence[str],
    groups: Sequence[str],
    host_groups: Sequence[str],
) -> list[str]:
    """What marks a host as running one of `names` (the probe's `engines` answer and its groups)."""
    lines = library_module("casemate_host").evidence_of(
        found, list(names), list(interfaces), list(groups), list(host_groups)
    )
    return cast(list[str], lines)


def sshd_seconds(text: str) -> str | None:
    """sshd's time format (1h30m) in seconds, as `sshd -T` prints it; None if unreadable."""
    return cast(str | None, library_module("casemate_sshd").seconds(text))


def sshd_comma_lists() -> frozenset[str]:
    """The options `sshd -T` prints as one comma-separated list."""
    return frozenset(cast(tuple[str, ...], library_module("casemate_sshd").COMMA_LISTS))


def sshd_time_options() -> frozenset[str]:
    """The options `sshd -T` prints in seconds, whatever unit the configuration used."""
    return frozenset(cast(tuple[str, ...], library_module("casemate_sshd").TIME_OPTIONS))
