"""conf_key: a setting of a plain-text configuration file, as the program that reads it would see
it: `KEY VALUE` lines (login.defs, limits.conf, where the key may be several words: `* hard core`),
`key = value` lines without sections (pwquality.conf, faillock.conf: a bare `key` is a flag, set
to the empty value) or INI sections (`[Coredump]` / `Storage=none`, systemd's files and
drop-ins). The files are read in the order given (globs in name order); a later setting wins,
and with none the program's built-in value (`unset`) applies."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import Field, model_validator

from casemate.checks.argv import ValueType, coerce
from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import MISSING, UNARY, Op, compare, describe, show

_GLOB = re.compile(r"[*?\[]")


class ConfKeyParams(Params):
    paths: list[str] = Field(min_length=1)  # files or globs, in the order the program reads them
    key: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()  # other spellings of the key (limits.conf: `* - core`)
    format: Literal["words", "assign", "ini"] = "words"
    section: str | None = None  # ini: the [section] the key belongs to
    ignore_case: bool = False  # match the key case-insensitively (PAM reads login.defs so)
    type: ValueType = "str"
    unset: Any = None  # the program's built-in value when no file sets the key
    op: Op = Op.EQ
    value: Any = None
    missing: Literal["fail", "not_applicable"] = "fail"  # when none of the files exists

    @model_validator(mode="after")
    def _consistent(self) -> ConfKeyParams:
        if self.op not in UNARY and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        if (self.section is not None) != (self.format == "ini"):
            raise ValueError("section goes with format: ini, and format: ini needs a section")
        return self


def file_probe(path: str) -> Probe:
    return Probe("read_glob", path) if _GLOB.search(path) else Probe("read", path)


@dataclass(frozen=True, slots=True)
class Setting:
    value: str
    path: str
    line: int


def _same(a: str, b: str, ignore_case: bool) -> bool:
    return a.lower() == b.lower() if ignore_case else a == b


def _words(p: Spec, path: str, text: str) -> list[Setting]:
    spellings = [k.split() for k in (p.key, *p.aliases)]
    found = []
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        for want in spellings:
            head = words[: len(want)]
            if len(words) > len(want) and all(
                _same(a, b, p.ignore_case) for a, b in zip(head, want, strict=True)
            ):
                found.append(Setting(" ".join(words[len(want) :]), path, number))
                break
    return found


def _assign(p: Spec, path: str, text: str) -> list[Setting]:
    found = []
    names = (p.key, *p.aliases)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        key, eq, value = line.partition("=")
        if not eq:  # `key value` or a bare flag
            key, _, value = line.partition(" ")
        if line and any(_same(key.strip(), n, p.ignore_case) for n in names):
            found.append(Setting(value.strip(), path, number))
    return found


def _ini(p: Spec, path: str, text: str) -> list[Setting]:
    found = []
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, eq, value = line.partition("=")
        names = (p.key, *p.aliases)
        if eq and section == p.section and any(_same(key.strip(), n, p.ignore_case) for n in names):
            found.append(Setting(value.strip(), path, number))
    return found


class Spec(NamedTuple):
    """What a parser needs of the params: hashable, so that a file's settings are parsed once."""

    key: str
    aliases: tuple[str, ...]
    section: str | None
    ignore_case: bool


PARSERS = {"ini": _ini, "assign": _assign, "words": _words}


# Hosts of one kind hold the same files, and several controls read one file for other keys.
@functools.lru_cache(maxsize=256)
def _settings(fmt: str, spec: Spec, path: str, text: str) -> tuple[Setting, ...]:
    return tuple(PARSERS[fmt](spec, path, text))


def _files(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The existing files of a `read` or `read_glob` observation."""
    if "files" in raw:
        return [f for f in raw["files"] if isinstance(f, Mapping) and f.get("exists")]
    return [raw] if raw.get("exists") else []


class ConfKey:
    name: ClassVar[str] = "conf_key"
    params: ClassVar[type[ConfKeyParams]] = ConfKeyParams

    def wants(self, p: ConfKeyParams) -> list[Probe]:
        return [file_probe(path) for path in p.paths]

    def judge(self, p: ConfKeyParams, obs: Observations) -> Verdict:
        probes = [file_probe(path) for path in p.paths]
        evidence = tuple(probe.key for probe in probes)
        where = f"[{p.section}] " if p.section else ""
        expected = f"{where}{p.key} {describe(p.op, p.value)}"
        files: list[Mapping[str, Any]] = []
        for probe in probes:
            raw = obs.get(probe)
            err = error_of(raw) or next((error_of(f) for f in raw.get("files", [])), None)
            if err:
                return Verdict(Status.ERROR, expected, err, evidence)
            files.extend(_files(raw))
        if not files:
            status = Status.NOT_APPLICABLE if p.missing == "not_applicable" else Status.FAIL
            return Verdict(status, expected, f"none of {', '.join(p.paths)} exists", evidence)
        spec = Spec(p.key, tuple(p.aliases), p.section, p.ignore_case)
        settings = [
            s
            for f in files
            for s in _settings(p.format, spec, str(f.get("path")), str(f.get("content", "")))
        ]
        value: Any
        if settings:
            last = settings[-1]
            value, source = last.value, f"{last.path}:{last.line}"
            if len(settings) > 1:
                source += f"; set {len(settings)} times, the last wins"
        elif p.unset is not None:
            value, source = p.unset, "built-in default"
        else:
            value, source = MISSING, "not set in any file"
        if value is not MISSING:
            value = coerce(value, p.type)
        status = Status.PASS if compare(p.op, value, p.value) else Status.FAIL
        return Verdict(status, expected, f"{p.key} = {show(value)} ({source})", evidence)
