"""`verify` records its run the way `harden` does: run.json says it is running before any host is
probed, then how it finished; beside it the redacted inventory, each host's observations,
report.json and junit.xml. `casemate report` re-renders it, and says so in one line when the run
never finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from casemate import cli
from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.harden import run_outcome
from casemate.inventory import Inventory
from casemate.probe.collect import Transport
from casemate.report import document
from casemate.rundir import new_run
from casemate.verify import run_verify

from .test_verify import Done, Down

RECORDED = Path(__file__).parent.parent / "fixtures" / "observations"
# what a harden run.json holds too (harden.run_harden)
SHARED = {"kind", "casemate_version", "command", "started", "finished", "state", "outcome",
          "inventory", "catalog", "level", "profile", "hosts", "controls"}  # fmt: skip


class Watching:
    """Answers with a recorded probe answer, noting what run.json said when the host was probed."""

    def __init__(self, run_json: Path) -> None:
        self.run_json = run_json
        self.states: list[str] = []

    def run(self, command: str) -> Done:
        self.states.append(json.loads(self.run_json.read_text())["state"])
        return Done(0, (RECORDED / "hardened-level2.json").read_text(), "")


def verify(tmp_path: Path, hosts: list[str]) -> tuple[Path, Watching]:
    catalog = load_catalog(None, builtin_kinds())
    selection = Selection(level=2)
    raw = {"_meta": {"hostvars": {h: {} for h in hosts}}, "docker_hosts": {"hosts": hosts}}
    inv = Inventory(Path("site/inventory.yml"), raw)
    run = new_run(tmp_path / "state", "verify", inv.redactor())
    watching = Watching(run.path / "run.json")

    def transport_for(inventory: Inventory, host: str) -> Transport:
        return watching if host == "n1" else Down()

    run_verify(
        run=run,
        catalog=catalog,
        inventory=inv,
        hosts=hosts,
        entries=select(catalog, selection),
        selection=selection,
        forks=2,
        command=["casemate", "verify", "-i", "site/inventory.yml", "--level", "2"],
        transport_for=transport_for,
    )
    return run.path, watching


def test_verify_records_its_run_as_harden_does(tmp_path: Path) -> None:
    run, watching = verify(tmp_path, ["n1"])
    assert watching.states == ["running"]  # recorded before any host was probed
    meta = json.loads((run / "run.json").read_text())
    assert set(meta) >= SHARED
    assert meta["kind"] == "verify"
    assert meta["state"] == "finished"
    assert run_outcome(meta) == "succeeded"
    assert meta["inventory"] == "site/inventory.yml"
    assert meta["hosts"] == ["n1"]
    assert meta["selection"] == {
        "level": 2, "controls": [], "benchmark": None, "profile": "standard"
    }  # fmt: skip
    assert meta["catalog"]["digest"] == load_catalog(None, builtin_kinds()).digest
    report = json.loads((run / "report.json").read_text())
    document.validate(report)  # the whole catalog at level 2, judged on a recorded answer
    assert meta["summary"] == report["summary"]
    assert report["selection"] == meta["selection"]
    for name in ("inventory.json", "junit.xml", "observations/n1.json"):
        assert (run / name).is_file(), name


def test_a_host_that_could_not_be_probed_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # the host column is not folded, whatever runs pytest
    run, _ = verify(tmp_path, ["n1", "n3"])
    meta = json.loads((run / "run.json").read_text())
    assert run_outcome(meta) == "failed"
    document.validate(json.loads((run / "report.json").read_text()))
    assert meta["unprobed"] == {"n3": "cannot reach n3: docker exec: No such container: n3"}
    with pytest.raises(SystemExit) as done:
        cli.main(["--state-dir", str(tmp_path / "state"), "report", "latest-verify"])
    assert done.value.code == 3
    assert "n3 (NOT PROBED)" in capsys.readouterr().out


def test_a_verify_run_that_never_finished_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = new_run(tmp_path / "state", "verify")
    run.write_json("run.json", {"kind": "verify", "state": "running", "hosts": ["n1"]})
    with pytest.raises(SystemExit) as done:
        cli.main(["--state-dir", str(tmp_path / "state"), "report", "latest-verify"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err == f"casemate: error: verify run {run.id} has no report: it is unfinished\n"
