"""Commands that touch no host (`--help`, `version`, the catalog commands) import neither Ansible
nor testinfra (nor pytest, which testinfra pulls in) nor SQLAlchemy (the history store): each would
cost every such command a start-up it has no use for. Nor does a command import another command's
code: `catalog list` loads neither rich nor the harden or verify flows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("ansible", "ansible_runner", "testinfra", "pytest", "_pytest", "sqlalchemy")
SCRIPT = """
import sys
from casemate import cli
try:
    cli.main(sys.argv[1:])
except SystemExit as done:
    assert done.code in (0, None), done.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print("HEAVY:" + ",".join(heavy))
print("LOADED:" + ",".join(sorted(set(sys.modules) & set(OTHERS))))
"""
# What another command needs (its flow, its renderers), never one of these
OTHERS = (
    "rich",
    "rich.console",
    "casemate.harden",
    "casemate.verify",
    "casemate.drift",
    "casemate.hostlock",
    "casemate.report.table",
    "casemate.report.html_page",
)


def _loaded_by(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """`casemate ARGV` run in a Python of its own, printing the HEAVY and OTHERS it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\nOTHERS = {OTHERS!r}\n{SCRIPT}", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["version"],
        ["catalog", "list"],
        ["catalog", "list", "--format", "json"],
        ["catalog", "show", "cis_docker_2_2"],
        ["catalog", "tags", "--level", "2"],
    ],
    ids=" ".join,
)
def test_commands_that_touch_no_host_import_neither_ansible_nor_testinfra(argv: list[str]) -> None:
    done = _loaded_by(argv)
    assert done.stdout.splitlines()[-2] == "HEAVY:"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["version"],
        ["catalog", "list"],
        ["catalog", "list", "--format", "json"],
        ["catalog", "tags", "--level", "2"],
        ["verify", "--help"],
        ["harden", "--help"],
    ],
    ids=" ".join,
)
def test_a_command_imports_no_other_commands_code_nor_rich(argv: list[str]) -> None:
    done = _loaded_by(argv)
    assert done.stdout.splitlines()[-1] == "LOADED:"


OPEN_HISTORY = """
import sys
from pathlib import Path
from rich.console import Console
from casemate import cli
state = Path(sys.argv[1])
ctx = cli.Ctx(catalog_dir=None, state=state, out=Console(), err=Console())
cli._open_history(ctx, None).close()
print("LOADED:" + ",".join(sorted({m.split(".")[0] for m in sys.modules} & {"prometheus_client"})))
"""


def test_a_run_without_a_metrics_file_does_not_load_prometheus_client(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", OPEN_HISTORY, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "LOADED:"
