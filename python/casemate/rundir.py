"""Run directories: everything one harden or verify run produced, kept together as evidence.

A run directory is private (0700, its files 0600) and holds no secret: whatever casemate writes
passes through the run's redactor, and what ansible-runner wrote is redacted in place by `seal`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casemate import __version__, private
from casemate.errors import BadInputError
from casemate.evidence.versions import versions
from casemate.redact import Redactor

if TYPE_CHECKING:
    from casemate.catalog.loader import Catalog

ANSIBLE = "ansible"  # ansible-runner's private data directory inside a run


@dataclass(frozen=True, slots=True)
class RunDir:
    path: Path
    redactor: Redactor = field(default_factory=Redactor)

    @property
    def id(self) -> str:
        return self.path.name

    def file(self, *parts: str) -> Path:
        target = self.path.joinpath(*parts)
        private.make_dir(target.parent)
        return target

    def write_json(self, name: str, data: Any) -> Path:
        clean = self.redactor.scrub(json.loads(json.dumps(data, default=str)))
        # one line: the C encoder (indented JSON is written by the slow pure-Python one)
        return private.write(self.file(name), json.dumps(clean, sort_keys=True) + "\n")

    def write_text(self, name: str, text: str) -> Path:
        return private.write(self.file(name), self.redactor.text(text))

    def read_json(self, name: str) -> Any:
        return json.loads(self.path.joinpath(name).read_text())

    def seal(self) -> None:
        """Once ansible-runner is done (or interrupted): every file it wrote under the run is
        redacted in place, and every directory made 0700 and every file 0600."""
        for path in sorted(self.path.joinpath(ANSIBLE).rglob("*")):
            if not path.is_symlink() and path.is_file():  # never a link, a fifo or a socket
                self._redact(path)
        private.seal_modes(self.path)

    def _redact(self, path: Path) -> None:
        """A JSON file (events, `command`) is replaced when redaction changed it. A text file
        (`stdout`, `stderr`) is replaced always: ansible-runner may still hold it open (an
        interrupted run), and what it writes later then goes into a file nobody keeps."""
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        try:
            data = json.loads(text)
        except ValueError:
            clean = self.redactor.text(text)
        else:
            redacted = self._runner_json(path, data)
            if redacted == data:
                return
            clean = json.dumps(redacted, ensure_ascii=False)
        private.write(path, clean.encode("utf-8", "surrogateescape"))

    def _runner_json(self, path: Path, data: Any) -> Any:
        """ansible-runner's JSON files: its `env/` files are variables; the `command` file (and
        any other record with one) holds the whole environment under `env`."""
        if "env" in path.relative_to(self.path / ANSIBLE).parts[:-1]:
            return self.redactor.variables(data)
        if isinstance(data, dict) and isinstance(data.get("env"), dict):
            return self.redactor.scrub(data) | {"env": self.redactor.variables(data["env"])}
        return self.redactor.scrub(data)


def runs_root(state: Path) -> Path:
    return state / "runs"


def now_utc() -> datetime:
    return datetime.now(UTC)


def run_meta(
    kind: str,
    *,
    command: Sequence[str],
    started: str,
    inventory: Path,
    catalog: Catalog,
    level: int,
    profile: str | None,
    hosts: Sequence[str],
    controls: Sequence[str],
) -> dict[str, Any]:
    """What every run record (run.json) of verify and harden starts with: what ran, with which
    versions (evidence bundles carry them; the history keeps ansible-core's), on what."""
    ran_with = versions()
    return {
        "kind": kind,
        "casemate_version": __version__,
        "versions": ran_with,
        "ansible_version": ran_with["ansible-core"],
        "command": list(command),
        "started": started,
        "inventory": str(inventory),
        "catalog": {"digest": catalog.digest, "benchmarks": catalog.benchmarks()},
        "level": level,
        "profile": profile,
        "hosts": list(hosts),
        "controls": list(controls),
    }


def new_run(state: Path, kind: str, redactor: Redactor | None = None) -> RunDir:
    """A fresh, private run directory; what is written into it passes through `redactor`."""
    stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
    root = private.state_dir(state, runs_root(state).name)
    path = root / f"{stamp}-{kind}-{secrets.token_hex(3)}"
    path.mkdir(mode=private.DIR_MODE)
    path.chmod(private.DIR_MODE)
    return RunDir(path, redactor or Redactor())


STAMP = len("20261205T120501Z")  # a run id starts with when it began, to the second


EPOCH = datetime.fromtimestamp(0, UTC)


def _started(path: Path) -> datetime:
    """When the run in `path` started as its run.json says (to the microsecond; UTC when it
    names no zone), or the epoch when it cannot be told."""
    try:
        moment = datetime.fromisoformat(json.loads((path / "run.json").read_text())["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return EPOCH
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def newest(runs: Sequence[Path]) -> Path:
    """The run that started last of `runs` (sorted by name). Names order runs to the second;
    runs of the same second are told apart by the start time their run.json records (its
    name's random tail says nothing), so only those run records are read."""
    last = runs[-1].name[:STAMP]
    same_second = [p for p in runs if p.name[:STAMP] == last]
    return max(same_second, key=lambda p: (_started(p), p.name))


def find_run(state: Path, ref: str) -> RunDir:
    """A run by path, id, unique id prefix, or `latest` / `latest-verify` / `latest-harden`
    (the one that started last)."""
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
        return RunDir(newest(picked))
    matches = [p for p in runs if p.name.startswith(ref)]
    if len(matches) != 1:
        why = "no run" if not matches else f"{len(matches)} runs"
        raise BadInputError(f"{why} matching '{ref}' under {root}")
    return RunDir(matches[0])
