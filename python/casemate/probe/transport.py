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


DOCKER_CONNECTIONS = ("docker", "community.docker.docker")


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")
    return bool(value)


def _setting(hostvars: Mapping[str, Any], name: str, env: str) -> Any:
    """A connection setting as testinfra reads it: the host's variable, overridden by Ansible's
    environment variable."""
    return os.environ.get(env, hostvars.get(name))


def engine_transport(inventory: Inventory, host: str) -> Transport | None:
    """The Engine API transport (probe/engine.py) for a host reached with Ansible's docker
    connection to the daemon the docker client asks by default (engine.local_socket), or None
    for any other host (another connection, `ansible_docker_extra_args`, another daemon): those
    go through testinfra. The container and user are those Ansible's docker connection takes."""
    from casemate.probe.engine import EngineTransport, local_socket  # noqa: PLC0415

    hostvars = inventory.hostvars(host)
    if hostvars.get("ansible_connection", "ssh") not in DOCKER_CONNECTIONS:
        return None
    if hostvars.get("ansible_docker_extra_args"):
        return None
    path = local_socket()
    if path is None:
        return None
    container = hostvars.get("ansible_docker_host") or hostvars.get("ansible_host") or host
    user = hostvars.get("ansible_docker_user") or _setting(
        hostvars, "ansible_user", "ANSIBLE_REMOTE_USER"
    )
    become_user = _setting(hostvars, "ansible_become_user", "ANSIBLE_BECOME_USER")
    return EngineTransport(
        str(container),
        user=str(user) if user else None,
        sudo=_flag(_setting(hostvars, "ansible_become", "ANSIBLE_BECOME")),
        sudo_user=str(become_user) if become_user else None,
        socket_path=path,
    )


def host_transport(inventory: Inventory, host: str) -> Transport:
    """How casemate runs a command on `host` itself: through the Docker Engine API for a local
    container (no docker client started per command), else a testinfra host."""
    return engine_transport(inventory, host) or testinfra_transport(inventory, host)


def interpreter_of(hostvars: Mapping[str, Any]) -> str:
    value = str(hostvars.get("ansible_python_interpreter", "python3"))
    return "python3" if value.startswith("auto") else value
