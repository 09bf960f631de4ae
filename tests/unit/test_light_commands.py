"""Commands that touch no host (`--help`, `version`, the catalog commands) import neither Ansible
nor testinfra (nor pytest, which testinfra pulls in) nor SQLAlchemy (the history store): each would
cost every such command a start-up it has no use for."""

from __future__ import annotations

import subprocess
import sys

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
"""


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
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{SCRIPT}", *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "HEAVY:"
