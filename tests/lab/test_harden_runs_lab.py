"""A harden run on real nodes is recorded as what it came to: hosts that cannot be reached are found
before the play and never played, and an interrupted run is reported canceled, never clean."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .conftest import CASEMATE, Lab, lab_name, last_run, open_lab

GHOSTS = 20


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("runs"), 1) as lab:
        yield lab


def test_unreachable_hosts_are_found_before_the_play_and_never_played(
    bed: Lab, tmp_path: Path
) -> None:
    (node,) = bed.nodes
    ghosts = {f"casemate-nowhere-{n}": {} for n in range(GHOSTS)}
    inv = bed.inventory_with(tmp_path / "inv.yml", {node: {}, **ghosts})
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["etcd"] = {  # a host over SSH on a loopback port nobody listens on
        "hosts": {"ssh-nowhere": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1"}},
        "vars": {"ansible_port": 1},
    }
    inv.write_text(yaml.safe_dump(doc))
    done = bed.casemate("harden", "-i", str(inv), "--controls", "cis_docker_2_2", check=3)

    run = last_run(bed.state, "harden")
    meta = json.loads((run / "run.json").read_text())
    gone = meta["unreachable_before_play"]
    assert sorted(gone) == sorted([*ghosts, "ssh-nowhere"])
    assert all(f"No such container: {g}" in gone[g] for g in ghosts)
    assert "127.0.0.1 port 1: Connection refused" in gone["ssh-nowhere"]
    assert {meta["stats"][g]["unreachable"] for g in gone} == {1}
    assert meta["stats"][node]["failed"] == meta["stats"][node]["unreachable"] == 0
    assert meta["stats"][node]["ok"] > 0
    played = set()
    for path in run.glob("ansible/artifacts/*/job_events/*.json"):
        played.add(json.loads(path.read_text()).get("event_data", {}).get("host"))
    assert played - {None} == {node}  # not one task ran against an unreachable host
    lines = [x for x in done.stdout.splitlines() if x.startswith("casemate-nowhere-3:")]
    assert lines == [
        "casemate-nowhere-3: Preflight | connection: Error response from daemon: "
        "No such container: casemate-nowhere-3"
    ]


def test_an_interrupted_harden_is_reported_canceled(bed: Lab) -> None:
    proc = subprocess.Popen(
        [CASEMATE, "--state-dir", str(bed.state), "harden", "-i", str(bed.inventory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches it
    )
    began = len(list((bed.state / "runs").glob("*-harden-*")))
    for _ in range(600):  # wait for the play to have done something on the node
        runs = sorted((bed.state / "runs").glob("*-harden-*"))
        if len(runs) > began and len(list(runs[-1].glob("ansible/artifacts/*/job_events/*"))) > 20:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err

    meta = json.loads((last_run(bed.state, "harden") / "run.json").read_text())
    assert (meta["outcome"], meta["runner"]["status"]) == ("canceled", "canceled")
    assert meta["stats_from"] == "events"
    assert meta["stats"][bed.nodes[0]]["ok"] > 0  # what is known of the host is kept
    shown = bed.casemate("report", "latest-harden", check=3)
    assert "CANCELED before it finished" in shown.stdout
