"""A static inventory resolved once is read back from the state directory: a change to any file
or setting that can shape it misses the cache, and an inventory that holds a secret, an inventory
script, an inventory plugin's configuration or a vault value is never stored."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from casemate import inventory_cache
from casemate.redact import MARKER
from casemate.runner import resolve_inventory

FIX = Path(__file__).parent.parent / "fixtures" / "inventories"
STATIC = """all:
  children:
    docker_hosts:
      hosts:
        node-1: {ansible_host: node-1}
  vars:
    ansible_connection: community.docker.docker
"""


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every run of ansible-inventory (the real one runs)."""
    seen: list[str] = []
    real = ansible_runner.get_inventory

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.append(str(kwargs.get("inventories")))
        return real(*args, **kwargs)

    monkeypatch.setattr(ansible_runner, "get_inventory", counted)
    return seen


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site directory with an inventory, group_vars and host_vars; the current directory and
    HOME are its own, and no ANSIBLE_* variable is set."""
    for name in list(os.environ):
        if name.startswith("ANSIBLE_"):
            monkeypatch.delenv(name)
    root = tmp_path / "site"
    (root / "group_vars").mkdir(parents=True)
    (root / "host_vars").mkdir()
    (root / "inventory.yml").write_text(STATIC)
    (root / "group_vars" / "docker_hosts.yml").write_text("docker_daemon_icc: false\n")
    (root / "host_vars" / "node-1.yml").write_text("sysctl_engine_host: auto\n")
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(root)
    return root


@pytest.mark.ansible
def test_a_static_inventory_is_resolved_once(site: Path, tmp_path: Path, calls: list[str]) -> None:
    state = tmp_path / "state"
    first = resolve_inventory(site / "inventory.yml", state)
    second = resolve_inventory(site / "inventory.yml", state)
    assert len(calls) == 1
    assert second.raw == first.raw
    assert second.hostvars("node-1")["docker_daemon_icc"] is False
    assert second.hostvars("node-1")["sysctl_engine_host"] == "auto"
    (stored,) = (state / "cache" / "inventory").iterdir()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(state.stat().st_mode) == 0o700  # still casemate's own state directory
    resolve_inventory(site / "inventory.yml")  # no state directory: nothing is cached
    assert len(calls) == 2


def _edit(path: Path, text: str) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def change(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    return change


def _env(name: str, value: str) -> Callable[[Path, pytest.MonkeyPatch], None]:
    def change(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(name, value)

    return change


def _config_file(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (site.parent / "elsewhere.cfg").write_text("[defaults]\nforks = 3\n")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(site.parent / "elsewhere.cfg"))


CHANGES: dict[str, Callable[[Path, pytest.MonkeyPatch], None]] = {
    "inventory file": _edit(Path("inventory.yml"), STATIC.replace("node-1}", "node-1b}")),
    "group_vars file": _edit(Path("group_vars/docker_hosts.yml"), "docker_daemon_icc: true\n"),
    "new group_vars file": _edit(Path("group_vars/all.yml"), "casemate_level: 2\n"),
    "group_vars directory": _edit(Path("group_vars/all/main.yml"), "x: 1\n"),
    "host_vars file": _edit(Path("host_vars/node-1.yml"), "sysctl_engine_host: true\n"),
    "new host_vars file": _edit(Path("host_vars/node-2.yml"), "x: 1\n"),
    "ansible.cfg here": _edit(Path("ansible.cfg"), "[defaults]\nhost_key_checking = False\n"),
    "~/.ansible.cfg": _edit(Path("../home/.ansible.cfg"), "[defaults]\nforks = 3\n"),
    "ANSIBLE_CONFIG": _config_file,
    "ANSIBLE_* variable": _env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "False"),
    "ANSIBLE_* variable's value": _env("ANSIBLE_HOST_KEY_CHECKING", "True"),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=str)
def test_a_change_to_what_shapes_the_inventory_misses_the_cache(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    before = inventory_cache.key(site / "inventory.yml", os.environ)
    assert before is not None
    CHANGES[change](site, monkeypatch)
    after = inventory_cache.key(site / "inventory.yml", os.environ)
    assert after is not None
    assert after != before


def test_what_cannot_shape_the_inventory_keeps_the_key(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = inventory_cache.key(site / "inventory.yml", os.environ)
    monkeypatch.setenv("CASEMATE_UNRELATED", "1")
    (site / "README.md").write_text("notes\n")
    (site / "group_vars" / ".docker_hosts.yml.swp").write_text("editor swap file\n")
    assert inventory_cache.key(site / "inventory.yml", os.environ) == before


@pytest.mark.ansible
def test_a_changed_inventory_is_resolved_again(
    site: Path, tmp_path: Path, calls: list[str]
) -> None:
    state = tmp_path / "state"
    resolve_inventory(site / "inventory.yml", state)
    (site / "group_vars" / "docker_hosts.yml").write_text("docker_daemon_icc: true\n")
    again = resolve_inventory(site / "inventory.yml", state)
    assert len(calls) == 2
    assert again.hostvars("node-1")["docker_daemon_icc"] is True


def test_an_inventory_directory_is_keyed_by_every_file(site: Path, tmp_path: Path) -> None:
    inv = site / "inventory"
    inv.mkdir()
    shutil.move(site / "inventory.yml", inv / "hosts.yml")
    shutil.move(site / "group_vars", inv / "group_vars")
    before = inventory_cache.key(inv, os.environ)
    assert before is not None
    (inv / "more.ini").write_text("[docker_hosts]\nnode-2\n")
    after = inventory_cache.key(inv, os.environ)
    assert after not in (None, before)
    (inv / "group_vars" / "docker_hosts.yml").write_text("docker_daemon_icc: true\n")
    assert inventory_cache.key(inv, os.environ) not in (None, before, after)


@pytest.mark.ansible
def test_an_inventory_holding_a_secret_is_never_stored(tmp_path: Path, calls: list[str]) -> None:
    state = tmp_path / "state"
    inv = tmp_path / "secrets.yml"
    inv.write_text(STATIC + "    ansible_become_password: BecomePw-unit-4242\n")
    assert inventory_cache.key(inv, os.environ) is not None  # a static file: only its secret
    for _ in range(2):
        got = resolve_inventory(inv, state)
        assert got.hostvars("node-1")["ansible_become_password"] == "BecomePw-unit-4242"
    assert len(calls) == 2
    assert not (state / "cache").exists()
    stored = got.redacted(got.redactor())["_meta"]["hostvars"]["node-1"]
    assert stored["ansible_become_password"] == MARKER


def test_a_vault_value_is_never_cached(site: Path) -> None:
    shutil.copy(FIX / "secrets.yml", site / "inventory.yml")  # holds a !vault value
    assert inventory_cache.key(site / "inventory.yml", os.environ) is None
    (site / "inventory.yml").write_text(STATIC)
    (site / "group_vars" / "all.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n3430\n")
    assert inventory_cache.key(site / "inventory.yml", os.environ) is None


def test_scripts_and_plugins_are_resolved_every_time(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = site / "inventory.py"
    script.write_text("#!/bin/sh\necho '{}'\n")
    script.chmod(0o755)
    assert inventory_cache.key(script, os.environ) is None
    plugin = site / "aws_ec2.yml"
    plugin.write_text("plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n")
    assert inventory_cache.key(plugin, os.environ) is None
    assert inventory_cache.key(site / "inventory.yml", os.environ) is not None
    monkeypatch.setenv("ANSIBLE_INVENTORY_ENABLED", "amazon.aws.aws_ec2,yaml")
    assert inventory_cache.key(site / "inventory.yml", os.environ) is None
    monkeypatch.delenv("ANSIBLE_INVENTORY_ENABLED")
    (site / "ansible.cfg").write_text("[inventory]\nenable_plugins = custom.site.cmdb, yaml\n")
    assert inventory_cache.key(site / "inventory.yml", os.environ) is None
    (site / "ansible.cfg").write_text("[defaults]\nvars_plugins_enabled = host_group_vars, x\n")
    assert inventory_cache.key(site / "inventory.yml", os.environ) is None


@pytest.mark.ansible
def test_a_damaged_cache_entry_is_resolved_again(
    site: Path, tmp_path: Path, calls: list[str]
) -> None:
    state = tmp_path / "state"
    first = resolve_inventory(site / "inventory.yml", state)
    (stored,) = (state / "cache" / "inventory").iterdir()
    stored.write_text("{not json")
    assert resolve_inventory(site / "inventory.yml", state).raw == first.raw
    assert len(calls) == 2
