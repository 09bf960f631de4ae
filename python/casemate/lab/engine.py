"""The docker CLI, as the lab uses it: every call is `docker ...` with captured output, and every
failure becomes a one-line LabError (or EnvironmentProblemError when there is no daemon)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from casemate.errors import EnvironmentProblemError, LabError

NO_DAEMON = "docker daemon not reachable: start dockerd (see README)"


@dataclass(frozen=True, slots=True)
class Engine:
    docker: str = "docker"

    def run(
        self,
        args: Sequence[str],
        *,
        timeout: float = 120,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.docker, *args],
                check=False,
                capture_output=True,
                text=True,
                input=stdin,
                timeout=timeout,
                env={**os.environ, **env} if env else None,
            )
        except FileNotFoundError:
            raise EnvironmentProblemError(
                f"{self.docker!r} not found: install Debian's docker.io (see README)"
            ) from None
        except subprocess.TimeoutExpired:
            raise LabError(
                f"'docker {' '.join(args[:2])}' took longer than {timeout:.0f} s"
            ) from None

    def must(self, args: Sequence[str], what: str, *, timeout: float = 120) -> str:
        """stdout of `docker ARGS`; a LabError "WHAT: <docker's last error line>" if it fails."""
        done = self.run(args, timeout=timeout)
        if done.returncode != 0:
            raise LabError(f"{what}: {last_line(done.stderr) or f'exit status {done.returncode}'}")
        return done.stdout

    def ping(self) -> None:
        """EnvironmentProblemError unless the daemon answers."""
        done = self.run(["version", "--format", "{{.Server.Version}}"], timeout=30)
        if done.returncode != 0 or not done.stdout.strip():
            raise EnvironmentProblemError(NO_DAEMON)

    def image_id(self, tag: str) -> str | None:
        done = self.run(["image", "inspect", "--format", "{{.Id}}", tag], timeout=60)
        if done.returncode != 0:
            return None
        return done.stdout.strip() or None

    def network_exists(self, name: str) -> bool:
        return self.run(["network", "inspect", name], timeout=30).returncode == 0

    def containers(self, label: str) -> list[dict[str, Any]]:
        """`docker inspect` of every container, running or not, that carries `label`."""
        ids = self.must(["ps", "-aq", "--filter", f"label={label}"], "listing lab nodes").split()
        if not ids:
            return []
        done = self.run(["inspect", *ids])
        # A container removed between ps and inspect: inspect still prints the others.
        found: list[dict[str, Any]] = json.loads(done.stdout or "[]")
        if done.returncode != 0 and not found:
            raise LabError(f"inspecting lab nodes: {last_line(done.stderr)}")
        return found

    def sh(
        self, node: str, script: str, *, timeout: float = 20
    ) -> subprocess.CompletedProcess[str]:
        return self.run(["exec", node, "sh", "-c", script], timeout=timeout)


def last_line(text: str) -> str:
    """The last non-empty line, at most 300 characters: what goes into a one-line error."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
