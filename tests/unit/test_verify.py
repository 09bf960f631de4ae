"""Verification orchestration: one probe round trip per host, statuses by group and reachability."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.inventory import Inventory
from casemate.probe import collect as collect_module
from casemate.probe.collect import Transport
from casemate.verify import verify_hosts

KINDS = builtin_kinds()
RECORDED = Path(__file__).parent.parent / "fixtures" / "observations"


@dataclass
class Done:
    rc: int
    stdout: str
    stderr: str


class Canned:
    """Answers the probe with a recorded answer and counts round trips."""

    def __init__(self, answer: dict[str, object]) -> None:
        self.answer = answer
        self.calls = 0

    def run(self, command: str) -> Done:
        self.calls += 1
        return Done(0, json.dumps(self.answer), "")


class Down:
    def run(self, command: str) -> Done:
        raise ConnectionError("docker exec: No such container: n3")


def inventory() -> Inventory:
    raw = {
        "_meta": {"hostvars": {"n1": {}, "n2": {}, "n3": {}, "cp": {}}},
        "docker_hosts": {"hosts": ["n1", "n2", "n3"]},
        "k8s_control_plane": {"hosts": ["cp"]},
    }
    return Inventory(Path("inv.yml"), raw)


def answer() -> dict[str, object]:
    return {"probe": 1, "facts": {"container": "docker"}, "data": {}, "elapsed_ms": 3}


def test_one_round_trip_per_host_and_statuses() -> None:
    entries = select(load_catalog(None, KINDS), Selection(level=2))
    transports: dict[str, Canned] = {
        "n1": Canned(answer()),
        "n2": Canned(answer()),
        "cp": Canned(answer()),
    }

    def transport_for(inv: Inventory, host: str) -> Transport:
        return transports[host] if host in transports else Down()

    done = verify_hosts(
        inventory(), ["n1", "n2", "n3", "cp"], entries, forks=4, transport_for=transport_for
    )
    assert [t.calls for t in transports.values()] == [1, 1, 1]  # one round trip per host
    by_host = {h.host: h for h in done}
    n1 = {r.entry.id: r.verdict.status.value for r in by_host["n1"].results}
    assert n1["cis_docker_2_1"] == "manual"
    assert n1["cis_docker_2_2"] == "error"  # the canned answer holds no observation for it
    n3 = by_host["n3"]
    assert n3.outcome.observations is None
    assert n3.outcome.error == "cannot reach n3: docker exec: No such container: n3"
    concerning = [
        r
        for r in n3.results
        if r.entry.control.automated and "docker_hosts" in r.entry.control.applies_to
    ]
    assert {r.verdict.status.value for r in concerning} == {"error"}
    # a Kubernetes-only host gets the controls that concern it (gVisor, CIS Kubernetes), never the
    # CIS Docker ones
    cp = {r.entry.benchmark for r in by_host["cp"].results}
    assert {"casemate-runtime", "cis-kubernetes"} <= cp
    assert "cis-docker" not in cp


def test_a_host_no_control_concerns_is_not_contacted() -> None:
    entries = [
        e
        for e in select(load_catalog(None, KINDS), Selection(level=2))
        if e.benchmark == "cis-docker"
    ]
    cp = Canned(answer())
    done = verify_hosts(inventory(), ["cp"], entries, forks=1, transport_for=lambda inv, h: cp)
    assert cp.calls == 0
    assert done[0].results == ()


def test_checks_see_the_hosts_variables_and_groups() -> None:
    raw = {
        "_meta": {"hostvars": {"n1": {"sysctl_engine_host": "auto"}}},
        "docker_hosts": {"hosts": ["n1"]},
    }
    entries = list(select(load_catalog(None, KINDS), Selection(level=2)))
    done = verify_hosts(
        Inventory(Path("inv.yml"), raw),
        ["n1"],
        entries,
        forks=1,
        transport_for=lambda inv, h: Canned(answer()),
    )
    observations = done[0].outcome.observations
    assert observations is not None
    assert observations.vars["group_names"] == ["docker_hosts"]
    assert observations.vars["sysctl_engine_host"] == "auto"


def test_hosts_of_one_kind_share_one_probe_command(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    real = collect_module.remote_command

    def counted(probes: Any, interpreter: str = "python3", *, fresh_proofs: bool = False) -> str:
        built.append(len(list(probes)))
        return real(probes, interpreter, fresh_proofs=fresh_proofs)

    monkeypatch.setattr(collect_module, "remote_command", counted)
    monkeypatch.setattr("casemate.verify.remote_command", counted, raising=False)
    entries = select(load_catalog(None, KINDS), Selection(level=2))
    canned = Canned(answer())
    verify_hosts(
        inventory(), ["n1", "n2", "n3"], entries, forks=3, transport_for=lambda i, h: canned
    )
    assert canned.calls == 3
    assert len(built) == 1  # built and compressed once, not once per host
