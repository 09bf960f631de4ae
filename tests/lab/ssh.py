"""SSH access to lab nodes for the SSH tests: a sudo user with a key of its own, an inventory that
reaches a node over SSH at its bridge address (the only address a test may target), and logins
with paramiko that say plainly whether the server let the user in."""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
import yaml

from .conftest import Lab

USER = "cmadmin"
GROUP = "sshusers"
PASSWORD = "lab-only-Secret-1"
NO_HOST_KEY_CHECK = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"


def bridge_ip(node: str) -> str:
    """The node's address on its lab network (never anything else)."""
    out = subprocess.run(
        ["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", node],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    nets: dict[str, Any] = json.loads(out)
    addresses = [n["IPAddress"] for n in nets.values() if n.get("IPAddress")]
    assert len(addresses) == 1, f"{node}: expected one bridge address, got {addresses}"
    return str(addresses[0])


def keypair(directory: Path, name: str) -> Path:
    """A fresh ed25519 key pair; returns the private key's path (the public half is beside it)."""
    key = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def add_user(
    lab: Lab,
    node: str,
    user: str,
    key: Path | None,
    *,
    password: str | None = None,
    keys_file: str = ".ssh/authorized_keys",
    groups: tuple[str, ...] = (GROUP,),
) -> None:
    """A local user with passwordless sudo, its key in `keys_file` and, optionally, a password."""
    script = [
        *(f"getent group {g} >/dev/null || groupadd {g}" for g in groups),
        f"id {user} >/dev/null 2>&1 || useradd -m -s /bin/bash {user}",
        *(f"usermod -aG {g} {user}" for g in groups),
        f"echo '{user} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-{user} && chmod 0440 /etc/sudoers.d/90-{user}",
        f"install -d -m 0700 -o {user} -g {user} /home/{user}/.ssh",
    ]
    if key is not None:
        path = f"/home/{user}/{keys_file}"
        script.append(
            f"echo {shlex.quote(Path(f'{key}.pub').read_text().strip())} > {path}"
            f" && chown {user}:{user} {path} && chmod 0600 {path}"
        )
    if password is not None:
        script.append(f"echo {shlex.quote(f'{user}:{password}')} | chpasswd")
    lab.sh(node, " && ".join(script))


def authorize_root(lab: Lab, node: str, key: Path) -> None:
    pub = shlex.quote(Path(f"{key}.pub").read_text().strip())
    lab.sh(node, f"install -d -m 0700 /root/.ssh && echo {pub} >> /root/.ssh/authorized_keys")


def ssh_inventory(
    lab: Lab, path: Path, hosts: dict[str, dict[str, Any]], *, user: str, key: Path
) -> Path:
    """The lab inventory with these nodes reached over SSH at their bridge addresses."""
    base = yaml.safe_load(lab.inventory.read_text())
    base["all"]["children"]["docker_hosts"]["hosts"] = {
        node: {"ansible_host": bridge_ip(node), **extra} for node, extra in hosts.items()
    }
    base["all"]["vars"].update(
        {
            "ansible_connection": "ssh",
            "ansible_user": user,
            "ansible_ssh_private_key_file": str(key),
            "ansible_ssh_common_args": NO_HOST_KEY_CHECK,
            "ansible_become": True,
        }
    )
    path.write_text(yaml.safe_dump(base))
    return path


def login(ip: str, user: str, *, key: Path | None = None, password: str | None = None) -> str:
    """'ok' when the server lets the user in (and runs a command), else why it did not."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # lab nodes only
    try:
        client.connect(
            ip,
            username=user,
            key_filename=str(key) if key else None,
            password=password,
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
            banner_timeout=10,
            auth_timeout=10,
        )
        _, out, _ = client.exec_command("id -un", timeout=10)
        said = out.read().decode().strip()
    except paramiko.AuthenticationException as exc:
        return f"refused: {type(exc).__name__}: {exc}"
    except (TimeoutError, paramiko.SSHException, OSError) as exc:
        return f"failed: {type(exc).__name__}: {exc}"
    else:
        return "ok" if said == user else f"logged in but `id -un` said {said!r}"
    finally:
        client.close()


@dataclass
class Session:
    """An SSH session kept open across a change (it must survive sshd's reload)."""

    client: paramiko.SSHClient

    @classmethod
    def open(cls, ip: str, user: str, key: Path) -> Session:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            ip, username=user, key_filename=str(key), look_for_keys=False, allow_agent=False,
            timeout=10,
        )  # fmt: skip
        return cls(client)

    def run(self, command: str) -> str:
        _, out, _ = self.client.exec_command(command, timeout=10)
        return out.read().decode()

    def close(self) -> None:
        self.client.close()
