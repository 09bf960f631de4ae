"""verify and harden through the CLI without a host: hosts answer the probe from a recorded answer
and the playbook is not run (the `offline` fixture in conftest.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from casemate import cli
from casemate.inventory import Inventory

from .test_verify import Done

RECORDED = Path(__file__).parent.parent / "fixtures" / "observations"
SECRET = "hunter2-pg-password"


class Answering:
    def run(self, command: str) -> Done:
        return Done(0, (RECORDED / "hardened-level2.json").read_text(), "")


def site() -> Inventory:
    raw = {"_meta": {"hostvars": {"n1": {}, "n2": {}}}, "docker_hosts": {"hosts": ["n1", "n2"]}}
    return Inventory(Path("site/inventory.yml"), raw)


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI as `casemate ARGV` (run records keep sys.argv as the command)."""
    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit) as done:
        patch.setattr(sys, "argv", ["casemate", *argv])
        cli.main(list(argv))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err
