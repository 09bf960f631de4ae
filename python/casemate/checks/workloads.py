"""What the Docker daemon runs and stores: running containers and local images, read from one
`docker inspect` each, with names for reports. Shared by the container and image kinds."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from casemate.checks.base import Observations, Probe
from casemate.checks.dockerd import cli_failure, not_running

CONTAINERS = Probe("cmd", "docker ps -q --no-trunc | xargs -r docker inspect")
IMAGES = Probe("cmd", "docker images -q --no-trunc | sort -u | xargs -r docker image inspect")
HISTORY = Probe(
    "cmd",
    "docker images -q --no-trunc | sort -u | while read -r i; do "
    'docker history --no-trunc --format "$i {{json .CreatedBy}}" "$i"; done',
)
DOCKER_INFO = Probe("cmd", "docker info --format '{{json .}}'")
CONTAINER_PROCS = Probe("container_procs", "docker")
IMAGE_FILES = Probe("image_files", "1024")  # images up to 1024 MiB are scanned
SHOWN = 15  # findings listed in `observed`; the evidence keeps all


def inspected(obs: Observations, probe: Probe) -> tuple[list[dict[str, Any]], str | None]:
    """The parsed JSON list a `docker ... inspect` command printed, or an error. Nothing listed is
    an empty list only when dockerd runs and the listing complained of nothing: with the daemon
    down, `docker ps | xargs docker inspect` prints nothing and exits 0."""
    noun = "containers" if probe == CONTAINERS else "images"
    err = not_running(obs, what=f"its {noun} cannot be listed") or cli_failure(
        obs.get(probe), quiet=True
    )
    if err:
        return [], err
    text = str(obs.get(probe).get("stdout", "")).strip()
    if not text:
        return [], None
    try:
        doc = json.loads(text)
    except ValueError:
        return [], "docker printed something that is not JSON"
    if not isinstance(doc, list):
        return [], "docker printed JSON that is not a list"
    return [d for d in doc if isinstance(d, dict)], None


def container_name(c: Mapping[str, Any]) -> str:
    return str(c.get("Name", "")).lstrip("/") or str(c.get("Id", ""))[:12]


def image_name(i: Mapping[str, Any]) -> str:
    tags = i.get("RepoTags") or []
    return str(tags[0]) if tags else str(i.get("Id", "")).removeprefix("sha256:")[:12]


def listing(findings: Sequence[str], total: int, noun: str) -> str:
    """`observed` text: how many of how many fail, then the first findings."""
    head = f"{len(findings)} of {total} {noun}: "
    shown = "; ".join(findings[:SHOWN])
    more = f"; ... {len(findings) - SHOWN} more in evidence" if len(findings) > SHOWN else ""
    return head + shown + more
