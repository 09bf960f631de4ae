"""How casemate reaches a host outside Ansible (the probe, the reachability check, break-glass
proofs): a testinfra host built from the resolved inventory."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from casemate.errors import BadInputError
from casemate.inventory import Inventory
from casemate.probe.collect import Transport

ANSIBLE_CONTROL_DIR = "~/.ansible/cp"


def ssh_options(hostvars: Mapping[str, Any]) -> str:
    """The SSH options a host's inventory gives Ansible that testinfra does not read itself:
    `ansible_ssh_args`, and the control socket (`ansible_control_path`, with `%(directory)s` taken
    from `ansible_control_path_dir`), so that casemate's own connection goes where Ansible's goes
    (through a master connection the site keeps open, for instance)."""
    parts = []
    if hostvars.get("ansible_ssh_args"):
        parts.append(str(hostvars["ansible_ssh_args"]))
    path = hostvars.get("ansible_control_path")
    if path:
        directory = str(hostvars.get("ansible_control_path_dir") or ANSIBLE_CONTROL_DIR)
        socket = str(path) % {"directory": os.path.normpath(Path(directory).expanduser())}
        parts.append(f"-o ControlPath={shlex.quote(socket)}")
    return " ".join(parts)


def _with_ssh_options(inventory: Inventory, host: str) -> Inventory:
    hostvars = inventory.hostvars(host)
    extra = ssh_options(hostvars)
    if not extra:
        return inventory
    raw = dict(inventory.raw)
    meta = dict(raw.get("_meta", {}))
    allvars = dict(meta.get("hostvars", {}))
    given = str(hostvars.get("ansible_ssh_extra_args") or "")
    allvars[host] = {**hostvars, "ansible_ssh_extra_args": f"{given} {extra}".strip()}
    meta["hostvars"] = allvars
    raw["_meta"] = meta
    return Inventory(source=inventory.source, raw=raw)


def testinfra_transport(inventory: Inventory, host: str) -> Transport:
    """A testinfra host built from the resolved inventory (docker, ssh, local... connections)."""
    import configparser  # noqa: PLC0415 - only when a host is contacted

    # testinfra pulls in pytest; import it only when a host is actually contacted
    from testinfra.utils.ansible_runner import get_ansible_host  # noqa: PLC0415

    found = get_ansible_host(
        configparser.ConfigParser(), _with_ssh_options(inventory, host).raw, host
    )
    if found is None:
        conn = inventory.hostvars(host).get("ansible_connection", "ssh")
        raise BadInputError(f"{host}: connection '{conn}' is not supported by the verifier")
    transport: Transport = found
    return transport


def interpreter_of(hostvars: Mapping[str, Any]) -> str:
    value = str(hostvars.get("ansible_python_interpreter", "python3"))
    return "python3" if value.startswith("auto") else value
