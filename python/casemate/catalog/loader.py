"""Load and validate catalog files. Any problem is one line naming file, line, entry and field.

A catalog is loaded once per command (the CLI passes it down): YAML with PyYAML's C loader where it
is built in, every check bound to its kind with its parameters validated here, once. Line numbers
cost a second parse of the file, so they are looked up only when an error is reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from casemate.catalog.model import CatalogFile, ConditionSpec, Control, Entry
from casemate.checks.base import Check, CheckKind
from casemate.errors import CatalogError
from casemate.locations import package_file

# libyaml's loader where PyYAML was built with it (about 20 times faster); the same documents
_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TextDates(_BASE):  # type: ignore[valid-type,misc]  # PyYAML's C loader where built
    """Safe YAML with dates left as text, as waivers.py reads its files: PyYAML's own date
    parsing raises a bare ValueError on an impossible date (`2026-02-30`) instead of a YAML
    error with a line; no catalog field is a date, so an unquoted one is text like any other."""


TextDates.add_constructor("tag:yaml.org,2002:timestamp", TextDates.construct_yaml_str)
_LOADER: type[yaml.SafeLoader] = TextDates


@dataclass(frozen=True, slots=True)
class Catalog:
    entries: tuple[Entry, ...]
    digest: str  # sha256 over the catalog files: identifies the catalog a run used

    def get(self, control_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == control_id), None)

    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def benchmarks(self) -> dict[str, str]:
        """benchmark name -> version."""
        return {e.benchmark: e.benchmark_version for e in self.entries}


def default_catalog_dir() -> Path:
    return package_file("catalog")


def _first_error(err: ValidationError) -> tuple[tuple[int | str, ...], str]:
    first = err.errors()[0]
    return tuple(first["loc"]), str(first["msg"]).removeprefix("Value error, ")


def _dotted(loc: Iterable[int | str]) -> str:
    return ".".join(str(p) for p in loc)


def _control_lines(text: str) -> list[int]:
    """1-based line of each item of the top-level `controls` list (best effort)."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError:
        return []
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if key.value == "controls" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _where(path: Path, lines: Sequence[int], loc: tuple[int | str, ...]) -> tuple[str, str]:
    """(file:line, remaining field path) for a pydantic location inside a catalog file."""
    if len(loc) >= 2 and loc[0] == "controls" and isinstance(loc[1], int):
        line = lines[loc[1]] if loc[1] < len(lines) else 0
        return f"{path.name}:{line}", _dotted(loc[2:])
    return path.name, _dotted(loc)


def _yaml_error(path: Path, text: str) -> str:
    """The file's YAML error as one line, in the words of PyYAML's Python parser (clearer than
    libyaml's)."""
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or "not valid YAML"
        return f"{path.name}{line}: {reason}"
    return f"{path.name}: not valid YAML"


def _load_file(path: Path) -> tuple[CatalogFile, str, bytes]:
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError:
        raise CatalogError(_yaml_error(path, text)) from None
    if not isinstance(data, dict):
        raise CatalogError(f"{path.name}: a catalog file is a mapping with `controls:`")
    try:
        parsed = CatalogFile.model_validate(data)
    except ValidationError as exc:
        loc, msg = _first_error(exc)
        where, field = _where(path, _control_lines(text), loc)
        ident = _entry_id(data, loc)
        prefix = f"{where}: {ident}: " if ident else f"{where}: "
        raise CatalogError(f"{prefix}{field or 'entry'}: {msg}") from None
    return parsed, text, raw


def _entry_id(data: Mapping[str, Any], loc: tuple[int | str, ...]) -> str:
    if len(loc) < 2 or loc[0] != "controls" or not isinstance(loc[1], int):
        return ""
    controls = data.get("controls")
    if isinstance(controls, list) and loc[1] < len(controls) and isinstance(controls[loc[1]], dict):
        return str(controls[loc[1]].get("id", f"entry #{loc[1] + 1}"))
    return f"entry #{loc[1] + 1}"


def _bound(
    spec: ConditionSpec, kinds: Mapping[str, CheckKind[Any]], field: str
) -> tuple[CheckKind[Any], Any]:
    """(kind, validated params) of a check as the catalog writes it; ValueError names the field."""
    kind = kinds.get(spec.kind)
    if kind is None:
        known = ", ".join(sorted(kinds))
        raise ValueError(f"{field}.kind: unknown kind '{spec.kind}' (known: {known})")
    try:
        return kind, kind.params.model_validate(spec.params)
    except ValidationError as exc:
        loc, msg = _first_error(exc)
        raise ValueError(f"{field}.params.{_dotted(loc)}: {msg}") from None


def _check(control: Control, kinds: Mapping[str, CheckKind[Any]]) -> Check | None:
    """The control's check bound to its kind, precondition included. ValueError on a bad one."""
    spec = control.check
    if spec is None:
        return None
    only_if = None
    if spec.only_if is not None:
        only_if = Check(*_bound(spec.only_if, kinds, "check.only_if"))
    return Check(*_bound(spec, kinds, "check"), only_if=only_if)


def _digest_file(digest: Any, name: str, raw: bytes) -> None:
    digest.update(name.encode() + b"\0" + raw)


def catalog_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """The digest `load_catalog` gives a catalog of these (file name, content) pairs, in the order
    it reads them (sorted by name)."""
    digest = hashlib.sha256()
    for name, raw in sorted(files):
        _digest_file(digest, name, raw)
    return digest.hexdigest()


def catalog_files(directory: Path | None) -> list[Path]:
    """The files a catalog directory (default: the shipped one) consists of, as `load_catalog`
    reads them."""
    directory = directory or default_catalog_dir()
    if not directory.is_dir():
        raise CatalogError(f"{directory}: catalog directory not found")
    files = sorted(directory.glob("*.yml"))
    if not files:
        raise CatalogError(f"{directory}: no catalog files (*.yml)")
    return files


def load_catalog(directory: Path | None, kinds: Mapping[str, CheckKind[Any]]) -> Catalog:
    """Load every `*.yml` in `directory` (default: the catalog shipped with casemate)."""
    files = catalog_files(directory)
    digest = hashlib.sha256()
    entries: list[Entry] = []
    seen: dict[str, str] = {}
    for path in files:
        parsed, text, raw = _load_file(path)
        _digest_file(digest, path.name, raw)
        for index, control in enumerate(parsed.controls):
            problem = ""
            check = None
            if not control.id.startswith(parsed.id_prefix):
                problem = f"id: must start with '{parsed.id_prefix}'"
            elif control.id in seen:
                problem = f"id: duplicate (also in {seen[control.id]})"
            else:
                try:
                    check = _check(control, kinds)
                except ValueError as exc:
                    problem = str(exc)
            if problem:
                lines = _control_lines(text)
                line = lines[index] if index < len(lines) else 0
                raise CatalogError(f"{path.name}:{line}: {control.id}: {problem}")
            seen[control.id] = path.name
            entries.append(
                Entry(
                    control=control,
                    check=check,
                    benchmark=parsed.benchmark,
                    benchmark_version=parsed.version,
                    benchmark_title=parsed.title,
                    id_prefix=parsed.id_prefix,
                    source=path.name,
                )
            )
    return Catalog(entries=tuple(entries), digest=digest.hexdigest())
