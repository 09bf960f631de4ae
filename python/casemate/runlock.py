"""The controller lock: runs of one inventory from one controller never overlap.

An flock(2) on `STATE/locks/<inventory digest>.lock`, held for as long as the command runs (the
kernel drops it when the process ends, however it ends: nothing to expire). The file names its
holder (pid, command, run id, start), so a second run can say who it waits for. The digest is the
resolved inventory's (every host and variable), so two paths to one inventory share the lock.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casemate import private
from casemate.errors import BadInputError, BusyError
from casemate.inventory import Inventory
from casemate.rundir import now_utc

LOCKS = "locks"  # under the state directory
POLL = 0.2  # seconds between two attempts while waiting


def digest(inventory: Inventory) -> str:
    raw = json.dumps(inventory.raw, sort_keys=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()


def lock_path(state: Path, inventory: Inventory) -> Path:
    return state / LOCKS / f"{digest(inventory)[:32]}.lock"


def check_wait(wait: float) -> None:
    if wait < 0:
        raise BadInputError(f"--wait must be 0 or more seconds, not {wait:g}")


@dataclass
class ControllerLock:
    """Held while the object lives and `release` was not called."""

    path: Path
    fd: int
    holder: dict[str, Any]

    def name_run(self, run_id: str) -> None:
        """Say which run holds it, once the run has an id."""
        self.holder["run_id"] = run_id
        _write(self.fd, self.holder)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # drops the flock
            self.fd = -1


def _write(fd: int, holder: dict[str, Any]) -> None:
    data = (json.dumps(holder, sort_keys=True) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _holder(path: Path) -> str:
    """Who holds the lock, as its file says: one phrase."""
    try:
        found = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        found = {}
    if not isinstance(found, dict) or not found:
        return "a run that has not said who it is yet"
    run = found.get("run_id") or "(no run id yet)"
    return (
        f"{found.get('command', 'casemate')} run {run} (pid {found.get('pid')}), "
        f"started {found.get('started')}"
    )


def acquire(
    state: Path, inventory: Inventory, *, command: str, wait: float = 0.0
) -> ControllerLock:
    """Take the inventory's controller lock, waiting up to `wait` seconds for the run that holds
    it; BusyError (exit 4) naming that run when it is still held."""
    check_wait(wait)
    path = lock_path(state, inventory)
    private.state_dir(state, LOCKS)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, private.FILE_MODE)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
        if time.monotonic() >= deadline:
            os.close(fd)
            waited = f"waited {wait:g}s; " if wait else ""
            raise BusyError(
                f"another casemate run holds inventory {inventory.source} on this controller: "
                f"{_holder(path)} ({waited}--wait SECONDS to wait for it; lock {path})"
            )
        time.sleep(POLL)
    holder = {
        "pid": os.getpid(),
        "command": command,
        "run_id": None,
        "started": now_utc().strftime("%Y-%m-%d %H:%M:%S UTC"),
        "inventory": str(inventory.source),
    }
    _write(fd, holder)
    return ControllerLock(path, fd, holder)
