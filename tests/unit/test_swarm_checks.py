"""The swarm controls judged on crafted observations: what `docker network inspect` prints for
encrypted and plain overlay networks (an encrypted one carries the option with an empty value)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Status
from casemate.verify import judge, wanted_probes

CATALOG = load_catalog(None, builtin_kinds())
INFO = "cmd:docker info --format '{{json .}}'"


def _overlay_verdict(stdout: str, swarm: str = "active") -> tuple[Status, str]:
    entry = CATALOG.get("cis_docker_7_3")
    assert entry is not None
    keys = {p.key for p in wanted_probes([entry])}
    (networks,) = keys - {INFO, "proc:dockerd"}
    data: dict[str, Any] = {
        INFO: {"rc": 0, "stdout": json.dumps({"Swarm": {"LocalNodeState": swarm}}), "stderr": ""},
        networks: {"rc": 0, "stdout": stdout, "stderr": ""},
        "proc:dockerd": {"running": True, "argv": ["/usr/sbin/dockerd"]},
    }
    v = judge(entry, Observations("h", {}, data))
    return v.status, v.observed


@pytest.mark.parametrize(
    ("stdout", "status"),
    [
        ("ingress encrypted=yes\nsealed encrypted=yes\n", Status.PASS),
        # a plain network fails wherever it is listed, not only on the last line
        ("ingress encrypted=\nsealed encrypted=yes\n", Status.FAIL),
        ("ingress encrypted=yes\nopen encrypted=\n", Status.FAIL),
        ("ingress encrypted=\n", Status.FAIL),
    ],
)
def test_every_overlay_network_must_carry_the_encrypted_option(stdout: str, status: Status) -> None:
    assert _overlay_verdict(stdout)[0] is status


def test_overlay_encryption_does_not_concern_a_host_outside_a_swarm() -> None:
    assert _overlay_verdict("", swarm="inactive")[0] is Status.NOT_APPLICABLE
