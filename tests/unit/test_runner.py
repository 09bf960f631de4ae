"""How runner events and ansible-inventory complaints are read (never from printed output)."""

from __future__ import annotations

from pathlib import Path

import pytest

from casemate.errors import InventoryError
from casemate.runner import _inventory_error, host_event, resolve_inventory

FIX = Path(__file__).parent.parent / "fixtures" / "inventories"


def test_events() -> None:
    ok = host_event(
        {
            "event": "runner_on_ok",
            "event_data": {"host": "n1", "task": "t", "res": {"changed": True}},
        }
    )
    assert ok is not None
    assert (ok.host, ok.status) == ("n1", "changed")
    failed = host_event(
        {
            "event": "runner_on_failed",
            "event_data": {"host": "n1", "task": "t", "res": {"msg": "boom"}},
        }
    )
    assert failed is not None
    assert (failed.status, failed.message) == ("failed", "boom")
    ignored = host_event(
        {
            "event": "runner_on_failed",
            "event_data": {"host": "n1", "ignore_errors": True, "res": {}},
        }
    )
    assert ignored is not None
    assert ignored.status == "ok"
    gone = host_event(
        {
            "event": "runner_on_unreachable",
            "event_data": {"host": "g", "res": {"msg": "No such container"}},
        }
    )
    assert gone is not None
    assert gone.status == "unreachable"
    assert host_event({"event": "playbook_on_start", "event_data": {}}) is None
    transport = host_event(
        {
            "event": "runner_on_failed",
            "event_data": {
                "host": "g",
                "res": {
                    "msg": "Module result deserialization failed: No start of json char found",
                    "module_stderr": "Error response from daemon: No such container: g\n",
                },
            },
        }
    )
    assert transport is not None
    assert transport.message.endswith(": Error response from daemon: No such container: g")


def test_inventory_error_picks_the_cause() -> None:
    stderr = (
        "[WARNING]: Failed to parse inventory with 'auto' plugin: YAML parsing failed\n\n"
        "<<< caused by >>>\n\nYAML parsing failed: did not find expected node content.\n"
        "Origin: /x/bad.yml:4:1\n"
    )
    assert (
        _inventory_error(stderr)
        == "YAML parsing failed: did not find expected node content (line 4)"
    )
    assert _inventory_error("[ERROR]: Completely failed to parse inventory source /x\n") == (
        "Completely failed to parse inventory source /x"
    )


@pytest.mark.ansible
def test_resolve_inventory_reads_groups() -> None:
    inv = resolve_inventory(FIX / "two_nodes.yml")
    assert inv.hosts() == ["ghost-1", "ghost-2"]
    assert inv.hostvars("ghost-1")["ansible_connection"] == "docker"


@pytest.mark.ansible
@pytest.mark.parametrize("name", ["malformed.yml", "malformed.ini", "empty.yml"])
def test_resolve_inventory_bad(name: str) -> None:
    with pytest.raises(InventoryError) as caught:
        resolve_inventory(FIX / name)
    assert "\n" not in str(caught.value)
