"""Load and validate catalog files. Any problem is one line naming file, line, entry and field."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from casemate.catalog.model import CatalogFile, Control, Entry
from casemate.checks.base import CheckKind
from casemate.checks.command_output import CommandOutputParams
from casemate.errors import CatalogError
from casemate.locations import package_file


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
        node = yaml.compose(text, Loader=yaml.SafeLoader)
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


def _load_file(path: Path) -> tuple[CatalogFile, list[int], bytes]:
    raw = path.read_bytes()
    text = raw.decode("utf-8", errors="replace")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or "not valid YAML"
        raise CatalogError(f"{path.name}{line}: {reason}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{path.name}: a catalog file is a mapping with `controls:`")
    lines = _control_lines(text)
    try:
        parsed = CatalogFile.model_validate(data)
    except ValidationError as exc:
        loc, msg = _first_error(exc)
        where, field = _where(path, lines, loc)
        ident = _entry_id(data, loc)
        prefix = f"{where}: {ident}: " if ident else f"{where}: "
        raise CatalogError(f"{prefix}{field or 'entry'}: {msg}") from None
    return parsed, lines, raw


def _entry_id(data: Mapping[str, Any], loc: tuple[int | str, ...]) -> str:
    if len(loc) < 2 or loc[0] != "controls" or not isinstance(loc[1], int):
        return ""
    controls = data.get("controls")
    if isinstance(controls, list) and loc[1] < len(controls) and isinstance(controls[loc[1]], dict):
        return str(controls[loc[1]].get("id", f"entry #{loc[1] + 1}"))
    return f"entry #{loc[1] + 1}"


def _check_params(control: Control, kinds: Mapping[str, CheckKind[Any]], where: str) -> None:
    if control.check is None:
        return
    kind = kinds.get(control.check.kind)
    if kind is None:
        known = ", ".join(sorted(kinds))
        raise CatalogError(
            f"{where}: {control.id}: check.kind: unknown kind '{control.check.kind}' "
            f"(known: {known})"
        )
    try:
        kind.params.model_validate(control.check.params)
    except ValidationError as exc:
        loc, msg = _first_error(exc)
        raise CatalogError(f"{where}: {control.id}: check.params.{_dotted(loc)}: {msg}") from None
    if control.check.only_if is not None:
        try:
            CommandOutputParams.model_validate(control.check.only_if)
        except ValidationError as exc:
            loc, msg = _first_error(exc)
            raise CatalogError(
                f"{where}: {control.id}: check.only_if.{_dotted(loc)}: {msg}"
            ) from None


def load_catalog(directory: Path | None, kinds: Mapping[str, CheckKind[Any]]) -> Catalog:
    """Load every `*.yml` in `directory` (default: the catalog shipped with casemate)."""
    directory = directory or default_catalog_dir()
    if not directory.is_dir():
        raise CatalogError(f"{directory}: catalog directory not found")
    files = sorted(directory.glob("*.yml"))
    if not files:
        raise CatalogError(f"{directory}: no catalog files (*.yml)")
    digest = hashlib.sha256()
    entries: list[Entry] = []
    seen: dict[str, str] = {}
    for path in files:
        parsed, lines, raw = _load_file(path)
        digest.update(path.name.encode() + b"\0" + raw)
        for index, control in enumerate(parsed.controls):
            where = f"{path.name}:{lines[index] if index < len(lines) else 0}"
            if not control.id.startswith(parsed.id_prefix):
                raise CatalogError(
                    f"{where}: {control.id}: id: must start with '{parsed.id_prefix}'"
                )
            if control.id in seen:
                raise CatalogError(
                    f"{where}: {control.id}: id: duplicate (also in {seen[control.id]})"
                )
            seen[control.id] = path.name
            _check_params(control, kinds, where)
            entries.append(
                Entry(
                    control=control,
                    benchmark=parsed.benchmark,
                    benchmark_version=parsed.version,
                    benchmark_title=parsed.title,
                    id_prefix=parsed.id_prefix,
                    source=path.name,
                )
            )
    return Catalog(entries=tuple(entries), digest=digest.hexdigest())
