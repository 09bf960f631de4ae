"""Unit tests that start Ansible are marked and run as their own group (`make unit`): an unmarked
test that starts ansible-playbook, ansible-inventory or ansible-vault fails, even where the code
under test would have turned the refusal into an error of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()

STARTS_ANSIBLE = """
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest


def run_inventory():
    try:
        subprocess.run([str(Path(sys.executable).with_name("ansible-inventory")), "--version"], capture_output=True, check=False)
    except AssertionError:
        pass  # the code under test swallowing the refusal must not hide it


def test_unmarked_inventory():
    run_inventory()


def test_unmarked_playbook_through_pexpect():
    try:
        pexpect.spawn("ansible-playbook", ["--version"]).wait()
    except AssertionError:
        pass


@pytest.mark.ansible
def test_marked_inventory():
    run_inventory()


def test_unmarked_other_command():
    subprocess.run(["true"], check=True)
"""


def test_only_tests_marked_ansible_may_start_ansible(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    ansible: starts Ansible\n")
    pytester.makepyfile(test_inner=STARTS_ANSIBLE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    # all four bodies pass; the two unmarked starts are refused and fail at teardown
    assert (outcomes.get("passed"), outcomes.get("errors")) == (4, 2), result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*test_unmarked_inventory starts ansible-inventory: mark it pytest.mark.ansible*",
            "*test_unmarked_playbook_through_pexpect starts ansible-playbook*",
        ]
    )
