"""On a lab node with a running container, a committed image (a setuid file, a private key, a
history line with a tab, `&` and `<>`) and its own dockerd, the probe's observations are the same
whether the docker commands are answered from the Engine API or by the docker CLI itself: every
answer the daemon gives stands in for the CLI's exactly (probe/remote.py: ENGINE_ANSWERS)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Status
from casemate.probe.collect import remote_command
from casemate.verify import concerns, judge, wanted_probes

from .conftest import Lab, lab_name, open_lab

# A root of the node's own dash and the two libraries it needs: an image without a registry.
IMAGE_SCRIPT = r"""
set -e
root=$(mktemp -d /var/tmp/img.XXXXXX)
for f in /bin/dash /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2; do
  mkdir -p "$root$(dirname "$f")"; cp -L "$f" "$root$f"
done
cp "$root/bin/dash" "$root/bin/sudo-like"; chmod 4755 "$root/bin/sudo-like"
mkdir -p "$root/root/.ssh"; printf 'id\n' > "$root/root/.ssh/id_rsa"
tar -C "$root" -c . | docker import --change 'CMD ["/bin/dash"]' \
  --change 'LABEL note=a&b<c>' - casemate-eng:base >/dev/null
docker run -d -i --name eng-run --network none casemate-eng:base \
  /bin/dash -c "$(printf 'read x\t&& echo "<done>"')" </dev/null >/dev/null
docker commit eng-run casemate-eng:committed >/dev/null
docker create --name eng-stopped --network none casemate-eng:committed >/dev/null
"""

# What the CLI adds of its own and the daemon does not know, and what changes between two asks.
VOLATILE_INFO = ("ClientInfo", "SystemTime", "NGoroutines", "NFd", "NEventsListener")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, str]]:
    with open_lab(tmp_path_factory, lab_name("eng"), 1) as bed:
        bed.sh(bed.nodes[0], IMAGE_SCRIPT)
        yield bed, bed.nodes[0]


def _probe(name: str, command: str, *env: str) -> dict[str, Any]:
    done = subprocess.run(
        ["docker", "exec", *env, name, "sh", "-c", command],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(done.stdout)["data"]
    return data


def _comparable(key: str, value: Any) -> Any:
    if not isinstance(value, dict) or "stdout" not in value:
        return value
    value = {k: v for k, v in value.items() if k != "api"}
    if key == "cmd:docker info --format '{{json .}}'":
        info = json.loads(value["stdout"])
        value["stdout"] = {k: v for k, v in info.items() if k not in VOLATILE_INFO}
    elif key == "cmd:docker version --format '{{json .}}'":
        value["stdout"] = json.loads(value["stdout"])["Server"]
    return value


def test_daemon_answers_give_the_same_observations_as_the_docker_cli(
    node: tuple[Lab, str],
) -> None:
    _bed, name = node
    entries = select(load_catalog(None, builtin_kinds()), Selection(level=2))
    probes = wanted_probes([e for e in entries if concerns(e, ["docker_hosts"])])
    docker = [
        p for p in probes if p.kind == "image_files" or (p.kind == "cmd" and "docker" in p.arg)
    ]
    command = remote_command(docker)
    answered = _probe(name, command)
    # DOCKER_HOST naming the same socket another way: the probe cannot tell it is the default
    # one, so every command runs as written and asks the same daemon through the CLI
    ran = _probe(name, command, "-e", "DOCKER_HOST=unix:///run/./docker.sock")
    api = [k for k, v in answered.items() if isinstance(v, dict) and v.get("api")]
    assert len(api) >= 10, api  # the daemon answered (else this compares the CLI with itself)
    assert not any(isinstance(v, dict) and v.get("api") for v in ran.values())
    assert set(answered) == set(ran)
    for key in answered:
        assert _comparable(key, answered[key]) == _comparable(key, ran[key]), key
    images = {i["tags"][0]: i for i in answered["image_files:1024"]["images"] if i["tags"]}
    assert images["casemate-eng:committed"]["setuid"] == ["/bin/sudo-like"]
    assert images["casemate-eng:committed"]["secrets"] == ["/root/.ssh/id_rsa"]
    counts = 'cmd:printf \'%s containers, %s running\' "$(docker ps -aq | wc -l)" "$(docker ps -q | wc -l)"'
    assert answered[counts]["stdout"] == "2 containers, 1 running"


def test_in_a_swarm_the_daemon_answers_are_still_the_clis(node: tuple[Lab, str]) -> None:
    """The node's own dockerd made a swarm manager (its ingress overlay network appears): every
    answer is still the CLI's, and the swarm questions are put to the CLI itself."""
    bed, name = node
    bed.sh(name, "docker swarm init >/dev/null")
    bed.sh(name, "docker network create -d overlay --opt encrypted cm-sealed >/dev/null")
    bed.sh(name, "docker network create -d overlay cm-open >/dev/null")
    try:
        entries = select(load_catalog(None, builtin_kinds()), Selection(level=2))
        probes = wanted_probes([e for e in entries if concerns(e, ["docker_hosts"])])
        command = remote_command([p for p in probes if p.kind == "cmd" and "docker" in p.arg])
        answered = _probe(name, command)
        ran = _probe(name, command, "-e", "DOCKER_HOST=unix:///run/./docker.sock")
    finally:
        bed.sh(name, "docker swarm leave --force >/dev/null")
    overlay = next(k for k in answered if "driver=overlay" in k)
    listed = answered[overlay]["stdout"].splitlines()
    assert answered[overlay]["api"]
    assert sorted(listed) == ["cm-open encrypted=", "cm-sealed encrypted=yes", "ingress encrypted="]
    sealed = next(e for e in entries if e.id == "cis_docker_7_3")
    data = {**answered, "proc:dockerd": {"running": True, "argv": ["/usr/sbin/dockerd"]}}
    assert judge(sealed, Observations(name, {}, data)).status is Status.FAIL
    for key in answered:
        assert _comparable(key, answered[key]) == _comparable(key, ran[key]), key
    swarm = [k for k in answered if "docker node ls" in k or "unlock-key" in k]
    assert len(swarm) == 2 and not any(answered[k].get("api") for k in swarm), swarm
