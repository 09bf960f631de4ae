"""`--strategy auto` (the default) runs mitogen_linear where mitogen drives every host of the run
and falls back to linear, with the reason, where it cannot; an explicit strategy is kept."""

from __future__ import annotations

import importlib.util
from importlib.machinery import ModuleSpec

import pytest

from casemate import runner
from casemate.runner import STRATEGIES, choose_strategy


def test_auto_is_mitogen_where_every_host_is_driven_by_it() -> None:
    got = choose_strategy("auto", {"n1": "docker", "n2": "ssh", "n3": "local"})
    assert (got.name, got.why) == ("mitogen_linear", "")


def test_an_explicit_strategy_is_kept_whatever_the_hosts() -> None:
    for name in STRATEGIES[1:]:
        assert choose_strategy(name, {"n1": "community.docker.docker"}).name == name


def test_a_connection_mitogen_does_not_drive_falls_back_to_linear_naming_it() -> None:
    got = choose_strategy(
        "auto", {"n1": "docker", "n2": "community.docker.docker", "n3": "paramiko"}
    )
    assert got.name == "linear"
    assert (
        got.why == "mitogen does not drive connection 'community.docker.docker' of n2 (and 1 more)"
    )


def test_without_the_mitogen_package_auto_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_mitogen(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "ansible_mitogen" else real(name, package)

    monkeypatch.setattr(runner.importlib.util, "find_spec", without_mitogen)
    got = choose_strategy("auto", {"n1": "docker"})
    assert (got.name, got.why) == ("linear", "the mitogen package is not installed")
