"""casemate's own Docker connection (probe/engine.py: the Engine API on the daemon's socket, no
docker client per command) gives what `docker exec` gives, through testinfra as before: exit
status, stdout and stderr (large, binary-safe, interleaved), the user, and the daemon's refusal for
a container that does not exist or is not running."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from casemate.inventory import Inventory
from casemate.probe import transport
from casemate.probe.engine import EngineTransport

from .conftest import CASEMATE, lab_name, lab_release

pytestmark = pytest.mark.lab

COMMANDS = (
    "true",
    "exit 7",
    "echo out; echo err >&2; echo more; exit 3",
    "seq 1 80000; seq 1 20000 >&2",  # large: many stream frames
    "printf 'caf\\303\\251 \\001\\n'",
    'id -un; pwd; echo "$HOME"',
    "for i in 1 2 3; do echo o$i; echo e$i >&2; done",
)


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def containers() -> Iterator[tuple[str, str]]:
    built = subprocess.run(
        [CASEMATE, "lab", "build", "--release", lab_release()],
        capture_output=True,
        text=True,
        check=True,
    )
    image = built.stdout.strip().splitlines()[-1]
    running, stopped = lab_name("casemate-engx"), lab_name("casemate-engx-stopped")
    for name in (running, stopped):
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    start = ("--network", "none", "--entrypoint", "sleep", image, "infinity")
    docker("run", "-d", "--name", running, *start)
    docker("create", "--name", stopped, *start)
    try:
        yield running, stopped
    finally:
        subprocess.run(["docker", "rm", "-f", running, stopped], capture_output=True, check=False)


def inventory(container: str, **more: Any) -> Inventory:
    hostvars = {"ansible_connection": "docker", "ansible_host": container, **more}
    raw = {"_meta": {"hostvars": {"n1": hostvars}}, "all": {"children": ["docker_hosts"]}}
    raw["docker_hosts"] = {"hosts": ["n1"]}
    return Inventory(Path("inv.yml"), raw)


def answer(transport: Any, command: str) -> tuple[int, str, str]:
    done = transport.run(command)
    return done.rc, done.stdout, done.stderr


@pytest.mark.parametrize("user", [None, "nobody"])
def test_the_engine_gives_what_docker_exec_gives(
    containers: tuple[str, str], user: str | None
) -> None:
    more = {"ansible_user": user} if user else {}
    ours = transport.host_transport(inventory(containers[0], **more), "n1")
    assert isinstance(ours, EngineTransport)
    cli = transport.testinfra_transport(inventory(containers[0], **more), "n1")
    for command in COMMANDS:
        assert answer(ours, command) == answer(cli, command), command
    assert answer(ours, "id -un")[1] == f"{user or 'root'}\n"


def test_a_missing_or_stopped_container_is_refused_as_docker_exec_refuses_it(
    containers: tuple[str, str],
) -> None:
    for name in ("casemate-engx-nowhere", containers[1]):
        rc, out, err = answer(transport.host_transport(inventory(name), "n1"), "true")
        cli_rc, cli_out, cli_err = answer(
            transport.testinfra_transport(inventory(name), "n1"), "true"
        )
        assert (rc, out) == (cli_rc, cli_out) == (1, "")
        # the CLI words it "Error: ..." or "Error response from daemon: ..." by version
        assert err.removeprefix("Error response from daemon: ") == cli_err.split(": ", 1)[1], (
            err,
            cli_err,
        )
