"""What `casemate harden` shows while it runs: per-host progress, and the changes of `--diff`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from casemate.report import diff
from casemate.runner import HostEvent


def short_task(task: str) -> str:
    """A task name for a progress line: long lists of control ids are summarised."""
    name, sep, ids = task.partition(" | ")
    count = len(ids.split())
    if sep and name.startswith(("Preflight", "Prep")):
        return task
    return f"{name} | {count} controls" if count > 3 else task


@dataclass(slots=True)
class _HostRow:
    task: str = ""
    ok: int = 0
    changed: int = 0
    failed: int = 0


class HardenProgress:
    """Per-host progress: a live table on a terminal; a line per change or failure elsewhere
    (CI logs), so the record shows what changed where."""

    def __init__(self, console: Console, hosts: list[str]) -> None:
        self.console = console
        self.rows = {h: _HostRow() for h in hosts}
        self.live = (
            Live(self._table(), console=console, auto_refresh=False)
            if console.is_terminal
            else None
        )

    def _table(self) -> Table:
        t = Table(box=None)
        for col in ("host", "ok", "changed", "failed", "current task"):
            t.add_column(col)
        for host, r in self.rows.items():
            t.add_row(host, str(r.ok), str(r.changed), str(r.failed), r.task[:70])
        return t

    def __enter__(self) -> HardenProgress:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def __call__(self, event: HostEvent) -> None:
        row = self.rows.setdefault(event.host, _HostRow())
        row.task = event.task
        if event.status in ("ok", "changed"):
            row.ok += 1
        if event.status == "changed":
            row.changed += 1
        if event.status in ("failed", "unreachable"):
            row.failed += 1
        if self.live is not None:
            self.live.update(self._table(), refresh=True)
        if event.status in ("changed", "failed", "unreachable"):
            style = "yellow" if event.status == "changed" else "red"
            first = event.message.splitlines()[0][:160] if event.message else ""
            msg = f": {first}" if first and event.status != "changed" else ""
            self.console.print(
                f"  [{style}]{event.status:<11}[/] {event.host}  {short_task(event.task)}{msg}"
            )


def diff_text(artifacts: Path) -> list[str]:
    """`--diff`: each recorded change as plain text (a header line, then its unified diff)."""
    out: list[str] = []
    for header, body in diff.render(artifacts):
        out.append(f"--- {short_task(header)}")
        if body:
            out.append(body)
    return out
