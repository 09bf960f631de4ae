"""Files only their owner reads: everything casemate keeps under its state directory (run records,
lab inventories) is made with directories 0700 and files 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
# What casemate itself keeps at the top of a state directory. A state directory holding nothing
# else is casemate's own and is made 0700 too; one holding other things (a home directory, /tmp)
# keeps its mode, and casemate's own directories inside it are 0700.
STATE_ENTRIES = (
    frozenset(  # history.sqlite3*: history/store.py; locks: runlock.py; schedule: schedule.py
        {
            "runs",
            "lab",
            "cache",
            "keys",
            "locks",
            "schedule",
            "history.sqlite3",
            "history.sqlite3-journal",
        }
    )
)


def make_dir(path: Path, *, own: bool = True) -> Path:
    """`path` as a directory: missing directories (parents too) are made 0700; an existing one is
    made 0700 only when it is casemate's `own`."""
    missing: list[Path] = []
    here = path
    while not here.exists():
        missing.append(here)
        here = here.parent
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        directory.chmod(DIR_MODE)  # mkdir's mode is cut by the umask
    if own and not missing and stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def state_dir(state: Path, *parts: str) -> Path:
    """A directory of casemate's under the state directory (`runs`, `lab/NAME`...), made 0700
    with every directory between; the state directory itself as STATE_ENTRIES says."""
    if not state.exists() or (
        state.is_dir()
        and state.stat().st_uid == os.geteuid()
        and {p.name for p in state.iterdir()} <= STATE_ENTRIES
    ):
        make_dir(state)
    here = state
    for part in parts:
        here = make_dir(here / part)
    return here


def write(path: Path, data: str | bytes) -> Path:
    """Write a file 0600 (replacing it whole, so a reader never sees half of it)."""
    make_dir(path.parent, own=False)
    partial = path.with_name(f".{path.name}.partial")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, FILE_MODE)  # an earlier partial file may have had another mode
        handle.write(raw)
    partial.replace(path)
    return path


def seal_modes(root: Path) -> None:
    """Every directory under `root` 0700 and every regular file 0600. Symbolic links are never
    followed: what they point at is not casemate's."""
    for here, _dirs, files in os.walk(root):  # never descends through a link
        Path(here).chmod(DIR_MODE)
        for name in files:
            target = Path(here, name)
            if stat.S_ISREG(target.lstat().st_mode):
                target.chmod(FILE_MODE)
