from __future__ import annotations

from pathlib import Path

import pytest

from casemate.errors import InventoryError
from casemate.inventory import Inventory

RAW = {
    "_meta": {"hostvars": {"n1": {}, "n2": {}, "cp1": {}, "web": {}}},
    "all": {"children": ["ungrouped", "docker_hosts", "kube"]},
    "docker_hosts": {"hosts": ["n1", "n2"]},
    "kube": {"children": ["k8s_control_plane"]},
    "k8s_control_plane": {"hosts": ["cp1"]},
    "ungrouped": {"hosts": ["web"]},
}
INV = Inventory(Path("inv.yml"), RAW)


def test_groups_include_children() -> None:
    assert INV.groups()["kube"] == ["cp1"]
    assert INV.groups_of("cp1") == ["all", "k8s_control_plane", "kube"]


def test_only_casemate_groups_are_targets() -> None:
    assert INV.select(None) == ["cp1", "n1", "n2"]


@pytest.mark.parametrize(
    ("limit", "hosts"),
    [
        ("n1", ["n1"]),
        ("docker_hosts", ["n1", "n2"]),
        ("n*", ["n1", "n2"]),
        ("kube,n2", ["cp1", "n2"]),
        ("!n1", ["cp1", "n2"]),
    ],
)
def test_limit(limit: str, hosts: list[str]) -> None:
    assert INV.select(limit) == hosts


def test_unknown_limit_is_bad_input() -> None:
    with pytest.raises(InventoryError, match="'nope' matches no host or group"):
        INV.select("n1,nope")


def test_limit_to_non_target_host() -> None:
    with pytest.raises(InventoryError, match="leaves no host"):
        INV.select("web")


def test_no_casemate_groups() -> None:
    inv = Inventory(
        Path("x.yml"), {"_meta": {"hostvars": {"a": {}}}, "ungrouped": {"hosts": ["a"]}}
    )
    with pytest.raises(InventoryError, match="no host is in any of the groups"):
        inv.select(None)


@pytest.mark.ansible
def test_a_host_without_variables_is_still_a_host(tmp_path: Path) -> None:
    """ansible-inventory lists under _meta.hostvars only hosts that have variables."""
    from casemate.runner import resolve_inventory

    path = tmp_path / "inv.yml"
    path.write_text("all:\n  children:\n    docker_hosts:\n      hosts:\n        bare-1:\n")
    inv = resolve_inventory(path)
    assert "bare-1" not in inv.raw["_meta"]["hostvars"]
    assert inv.hosts() == ["bare-1"]
    assert inv.select(None) == ["bare-1"]
