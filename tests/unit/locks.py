"""Host-lock helpers for unit tests: a lock answer for tests that play no real host, and a host
that is this machine (the lock script really runs, in a subprocess, on a directory of the test's)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

from casemate.hostlock import Acquired


def every_host_free(inventory: Any, hosts: list[str], run_id: str, **_: Any) -> Acquired:
    """hostlock.acquire when every host answers and none is busy."""
    return Acquired(held=tuple(hosts))


@dataclass(frozen=True)
class Ran:
    rc: int
    stdout: str
    stderr: str


class ThisMachine:
    """A transport whose host is this machine: each command runs in `sh -c`."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def run(self, command: str) -> Ran:
        self.commands.append(command)
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
        return Ran(done.returncode, done.stdout, done.stderr)
