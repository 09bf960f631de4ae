"""Run directories: everything one harden or verify run produced, kept together as evidence."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from casemate.errors import BadInputError


@dataclass(frozen=True, slots=True)
class RunDir:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    def file(self, *parts: str) -> Path:
        target = self.path.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_json(self, name: str, data: Any) -> Path:
        target = self.file(name)
        target.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return target

    def read_json(self, name: str) -> Any:
        return json.loads(self.path.joinpath(name).read_text())


def runs_root(state: Path) -> Path:
    return state / "runs"


def now_utc() -> datetime:
    return datetime.now(UTC)


def new_run(state: Path, kind: str) -> RunDir:
    stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
    path = runs_root(state) / f"{stamp}-{kind}-{secrets.token_hex(3)}"
    path.mkdir(parents=True)
    return RunDir(path)


def find_run(state: Path, ref: str) -> RunDir:
    """A run by path, id, unique id prefix, or `latest` / `latest-verify` / `latest-harden`."""
    candidate = Path(ref)
    if (candidate / "run.json").is_file():
        return RunDir(candidate.resolve())
    root = runs_root(state)
    runs = sorted(p for p in root.glob("*") if (p / "run.json").is_file()) if root.is_dir() else []
    if ref.startswith("latest"):
        kind = ref.partition("-")[2]
        picked = [p for p in runs if not kind or p.name.split("-")[1] == kind]
        if not picked:
            raise BadInputError(f"no stored {kind or 'run'} under {root}")
        return RunDir(picked[-1])
    matches = [p for p in runs if p.name.startswith(ref)]
    if len(matches) != 1:
        why = "no run" if not matches else f"{len(matches)} runs"
        raise BadInputError(f"{why} matching '{ref}' under {root}")
    return RunDir(matches[0])
