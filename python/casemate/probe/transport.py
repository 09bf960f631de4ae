"""How casemate reaches a host outside Ansible (the probe, the reachability check, break-glass
proofs): a testinfra host built from the resolved inventory."""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from typing import Any

from casemate.errors import BadInputError
from casemate.inventory import Inventory
from casemate.probe.collect import Transport


def testinfra_transport(inventory: Inventory, host: str) -> Transport:
    """A testinfra host built from the resolved inventory (docker, ssh, local... connections)."""
    # testinfra pulls in pytest; import it only when a host is actually contacted
    from testinfra.utils.ansible_runner import get_ansible_host  # noqa: PLC0415

    found = get_ansible_host(configparser.ConfigParser(), inventory.raw, host)
    if found is None:
        conn = inventory.hostvars(host).get("ansible_connection", "ssh")
        raise BadInputError(f"{host}: connection '{conn}' is not supported by the verifier")
    transport: Transport = found
    return transport


def interpreter_of(hostvars: Mapping[str, Any]) -> str:
    value = str(hostvars.get("ansible_python_interpreter", "python3"))
    return "python3" if value.startswith("auto") else value
