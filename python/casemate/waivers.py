"""Waivers: accepted risk, written down with a reason, an owner, a ticket and an end date.

A waiver file (docs/waivers.md) is validated like the catalog: any problem is one line naming the
file, the line, the entry and the field, before any host is touched. Inside, a waiver is a frozen
`Waiver`; `apply` judges results against a `WaiverSet` on a given day. It is the one place that
decides what a waiver covers, for verify, report, harden and (later) drift.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from casemate.errors import WaiverError

# Picked up from the working directory when present and no --waivers is given (docs/waivers.md).
DEFAULT_FILE = "casemate-waivers.yml"

_BASE: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE):  # type: ignore[valid-type,misc]  # PyYAML's C loader where built
    """Safe YAML with dates left as text: PyYAML's own date parsing raises on `2026-13-01`
    instead of reporting it; `expires` is parsed by the model, which names the field."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)
_LOADER: type[yaml.SafeLoader] = _Loader


class _Spec(BaseModel):
    """One waiver as the file writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    control: str | None = None
    controls: list[str] | None = None
    hosts: list[str] = Field(min_length=1)
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    ticket: str | None = Field(default=None, min_length=1)
    url: str | None = Field(default=None, min_length=1)
    expires: date

    @field_validator("hosts", mode="before")
    @classmethod
    def _one_host(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("hosts", "controls")
    @classmethod
    def _no_blank(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and any(not v.strip() for v in value):
            raise ValueError("an empty name")
        return value

    @field_validator("reason", "owner")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must say something")
        return value.strip()

    @field_validator("expires", mode="before")
    @classmethod
    def _a_date(cls, value: object) -> date:
        # 2026-12-31, quoted or not (the loader leaves dates as text). Nothing else: not a
        # timestamp, not a number of days, not "next quarter".
        if isinstance(value, date) and type(value) is date:
            return value
        if isinstance(value, str) and len(value.strip()) == len("YYYY-MM-DD"):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}")

    @model_validator(mode="after")
    def _consistent(self) -> _Spec:
        if (self.control is None) == (self.controls is None):
            raise ValueError("give exactly one of `control: ID` or `controls: [IDS]`")
        if self.controls is not None and not self.controls:
            raise ValueError("controls: an empty list")
        if self.ticket is None and self.url is None:
            raise ValueError("give a `ticket:` or a `url:` (where the risk was accepted)")
        return self


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    waivers: list[_Spec]


@dataclass(frozen=True, slots=True)
class Waiver:
    number: int  # 1-based position in the file
    source: str  # file:line of the entry
    controls: tuple[str, ...]
    hosts: tuple[str, ...]  # shell-style patterns matched against host and group names
    reason: str
    owner: str
    ticket: str | None
    url: str | None
    expires: date

    def covers(self, host: str, groups: Iterable[str], control_id: str) -> bool:
        """Whether the waiver names the control and the host (by its name or a group it is in)."""
        if control_id not in self.controls:
            return False
        names = (host, *groups)
        return any(fnmatch.fnmatchcase(n, pattern) for pattern in self.hosts for n in names)

    def expired(self, today: date) -> bool:
        """A waiver holds through its expiry date and no longer from the day after."""
        return today > self.expires

    def record(self, today: date) -> dict[str, Any]:
        """As reports and run records keep it."""
        return {
            "state": "expired" if self.expired(today) else "active",
            "source": self.source,
            "controls": list(self.controls),
            "hosts": list(self.hosts),
            "reason": self.reason,
            "owner": self.owner,
            "ticket": self.ticket,
            "url": self.url,
            "expires": self.expires.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class WaiverSet:
    path: Path
    waivers: tuple[Waiver, ...]

    def find(
        self, host: str, groups: Iterable[str], control_id: str, today: date
    ) -> tuple[Waiver | None, Waiver | None]:
        """(the first waiver in force that covers the host's control, else None; the covering
        waiver that expired last, when none is in force)."""
        groups = tuple(groups)
        covering = [w for w in self.waivers if w.covers(host, groups, control_id)]
        active = next((w for w in covering if not w.expired(today)), None)
        if active is not None or not covering:
            return active, None
        return None, max(covering, key=lambda w: w.expires)


def waiver_file(given: Path | None, cwd: Path) -> Path | None:
    """The waiver file a command uses: the one given (it must exist), else `casemate-waivers.yml`
    in the working directory when there is one, else none."""
    if given is not None:
        if not given.is_file():
            raise WaiverError(f"--waivers {given}: no such file")
        return given
    default = cwd / DEFAULT_FILE
    return default if default.is_file() else None


def _entry_nodes(text: str) -> list[yaml.Node]:
    """The YAML node of each item of the top-level `waivers` list (for line numbers)."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError:
        return []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "waivers" and isinstance(value, yaml.SequenceNode):
                return list(value.value)
    return []


def _line(nodes: Sequence[yaml.Node], index: int, field: str | None) -> int:
    """1-based line of entry `index`, or of its `field` when the entry has that key."""
    if index >= len(nodes):
        return 0
    node = nodes[index]
    if field and isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            if key.value == field:
                return int(key.start_mark.line) + 1
    return int(node.start_mark.line) + 1


def _yaml_problem(text: str) -> tuple[int | None, str]:
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return (mark.line + 1 if mark is not None else None), (
            getattr(exc, "problem", None) or "not valid YAML"
        )
    return None, "not valid YAML"


def load_waivers(path: Path, known: Collection[str]) -> WaiverSet:
    """Read and validate a waiver file; every control it names must be in the catalog (`known`)."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise WaiverError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError:
        line, problem = _yaml_problem(text)
        raise WaiverError(f"{path}{f':{line}' if line else ''}: not YAML: {problem}") from None
    if not isinstance(data, dict) or "waivers" not in data:
        raise WaiverError(f"{path}: a waiver file is a mapping with a `waivers:` list")
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        raise WaiverError(_explained(path, text, exc)) from None
    nodes = _entry_nodes(text)
    waivers = []
    for index, spec in enumerate(parsed.waivers):
        controls = tuple(dict.fromkeys(spec.controls or [spec.control or ""]))
        unknown = [c for c in controls if c not in known]
        if unknown:
            field = "control" if spec.control is not None else "controls"
            raise WaiverError(
                f"{path}:{_line(nodes, index, field)}: entry {index + 1}: {field}: "
                f"unknown control '{unknown[0]}'"
            )
        waivers.append(
            Waiver(
                number=index + 1,
                source=f"{path.name}:{_line(nodes, index, None)}",
                controls=controls,
                hosts=tuple(spec.hosts),
                reason=spec.reason,
                owner=spec.owner,
                ticket=spec.ticket,
                url=spec.url,
                expires=spec.expires,
            )
        )
    return WaiverSet(path=path, waivers=tuple(waivers))


def _explained(path: Path, text: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "missing (required)"
    elif first["type"] == "model_type":
        msg = "an entry is a mapping: control(s), hosts, reason, owner, ticket or url, expires"
    if len(loc) >= 2 and loc[0] == "waivers" and isinstance(loc[1], int):
        index = loc[1]
        field = str(loc[2]) if len(loc) > 2 else None
        where = f"{path}:{_line(_entry_nodes(text), index, field)}"
        if first["type"] == "missing" or field is None:
            return f"{where}: entry {index + 1}: {f'{field}: ' if field else ''}{msg}"
        return f"{where}: entry {index + 1}: {field}: {msg}"
    return f"{path}: {'.'.join(str(p) for p in loc) or 'file'}: {msg}"


# --- judging results ----------------------------------------------------------------------------


def apply(
    results: Sequence[Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
    waivers: WaiverSet,
    today: date,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Results (as report.json keeps them) judged against `waivers` on `today`, and a warning per
    waiver that matches nothing in them.

    Each result is first taken back to what its check said (a result waived before is re-judged
    afresh). A waiver in force makes the result `waived`, keeping the check's own status under
    `judged` and its expected, observed and evidence; an expired one leaves the check's verdict
    and is shown beside it. A control that does not concern the host (`not_applicable`) is never
    waived. `groups`: host -> its inventory groups."""
    out: list[dict[str, Any]] = []
    used: set[int] = set()
    for raw in results:
        r = dict(raw)
        if "judged" in r:
            r["status"] = r.pop("judged")
        r.pop("waiver", None)
        active, expired = waivers.find(r["host"], groups.get(r["host"], ()), r["control_id"], today)
        for w in (active, expired):
            if w is not None:
                used.add(w.number)
        if r["status"] != "not_applicable":
            if active is not None:
                r["judged"] = r["status"]
                r["status"] = "waived"
                r["waiver"] = active.record(today)
            elif expired is not None:
                r["waiver"] = expired.record(today)
        out.append(r)
    return out, unmatched(waivers, used, results, groups)


def unmatched(
    waivers: WaiverSet,
    used: Collection[int],
    results: Sequence[Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
) -> list[str]:
    """One warning per waiver that covered no result, saying why."""
    ids = {r["control_id"] for r in results}
    hosts = sorted({r["host"] for r in results})
    warnings = []
    for w in waivers.waivers:
        if w.number in used:
            continue
        if not ids & set(w.controls):
            why = "none of its controls is in this run"
        elif not any(w.covers(h, groups.get(h, ()), c) for h in hosts for c in w.controls):
            why = "its hosts match no host of this run"
        else:  # e.g. a Kubernetes control waived on a host that is only judged for Docker
            why = "it covers no host x control of this run"
        warnings.append(f"{w.source}: waiver {w.number} ({', '.join(w.controls)}) unused: {why}")
    return warnings


def waived_ids(
    waivers: WaiverSet, host: str, groups: Iterable[str], control_ids: Iterable[str], today: date
) -> tuple[str, ...]:
    """The controls among `control_ids` a waiver in force covers on `host` (harden skips them)."""
    groups = tuple(groups)
    return tuple(c for c in control_ids if waivers.find(host, groups, c, today)[0] is not None)
