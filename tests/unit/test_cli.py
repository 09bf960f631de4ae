"""Bad input: one line on stderr, exit 2, and neither Ansible nor the probe is ever started."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from casemate import cli

from .locks import every_host_free

FIX = Path(__file__).parent.parent / "fixtures"
INV = str(FIX / "inventories" / "two_nodes.yml")


@pytest.fixture(autouse=True)
def no_host_is_touched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a host would have been touched")

    monkeypatch.setattr("ansible_runner.run", boom)
    monkeypatch.setattr("casemate.runner.run_playbook", boom)
    monkeypatch.setattr("casemate.harden.run_playbook", boom)
    monkeypatch.setattr("casemate.drift.run_playbook", boom)
    monkeypatch.setattr("casemate.verify.collect", boom)
    monkeypatch.setattr("casemate.probe.reach.run_everywhere", boom)
    monkeypatch.setenv("CASEMATE_STATE_DIR", str(tmp_path / "state"))


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code, _, err = call_out(capsys, *argv)
    return code, err


def call_out(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(list(argv))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def bad_catalog(tmp_path: Path) -> str:
    d = tmp_path / "catalog"
    d.mkdir()
    (d / "docker.yml").write_text("benchmark: cis-docker\ncontrols: [\n")
    return str(d)


CASES = [
    (["--inventory", "/no/such/inventory.yml"], "inventory /no/such/inventory.yml: no such file"),
    (["-i", str(FIX / "inventories" / "malformed.yml")], "malformed.yml"),
    (["-i", str(FIX / "inventories" / "malformed.ini")], "malformed.ini"),
    (["-i", str(FIX / "inventories" / "empty.yml")], "defines no hosts"),
    (
        ["-i", INV, "--controls", "cis_docker_2_2,cis_docker_2_99"],
        "--controls: unknown control 'cis_docker_2_99'",
    ),
    (["-i", INV, "--limit", "ghost-1,ghost-9"], "--limit: 'ghost-9' matches no host or group"),
    (["-i", INV, "--level", "3"], "--level must be 1 or 2, not 3"),
    (["-i", INV, "--level", "high"], "Invalid value for '--level'"),
    (["-i", INV, "--forks", "0"], "--forks must be at least 1"),
    (["-i", INV, "--unknown-flag"], "No such option: --unknown-flag"),
    (["-i", INV, "--profile", "frozen"], "--profile must be one of standard, immutable"),
    ([], "Missing option '--inventory'"),
]


COMMANDS = [["harden"], ["verify"], ["drift"], ["harden", "--only-drifted"]]


@pytest.mark.ansible
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("args", "message"), CASES)
def test_bad_input(
    capsys: pytest.CaptureFixture[str], command: list[str], args: list[str], message: str
) -> None:
    code, err = call(capsys, *command, *args)
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert err.startswith("casemate: error: ")
    assert message in err


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_corrupt_catalog(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    code, err = call(capsys, "--catalog", bad_catalog(tmp_path), *command, "-i", INV)
    assert code == 2
    assert err.startswith("casemate: error: docker.yml:")
    assert err.count("\n") == 1


def test_bad_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = call(capsys, "harden", "-i", INV, "--strategy", "turbo")
    assert code == 2
    assert "--strategy must be one of" in err


def test_unknown_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = call(capsys, "report", "nope")
    assert code == 2
    assert "no run matching 'nope'" in err


def test_catalog_show_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = call(capsys, "catalog", "show", "cis_docker_9_9")
    assert (code, err) == (2, "casemate: error: unknown control 'cis_docker_9_9'\n")


def test_catalog_show_prints_a_check_and_its_precondition_as_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # no line is folded
    code, out, _ = call_out(capsys, "catalog", "show", "cis_docker_7_2")
    assert code == 0
    assert r'"value": "(0\\.0\\.0\\.0|\\*|\\[::\\]):2377\\b"' in out  # no markup read in it
    assert "only if      command_output {" in out
    assert '"pointer": "/Swarm/LocalNodeState"' in out


def test_catalog_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call_out(
        capsys, "catalog", "list", "--benchmark", "cis-docker", "--format", "json"
    )
    assert code == 0
    entries = json.loads(out)
    ids = [e["id"] for e in entries]
    assert "cis_docker_2_2" in ids
    assert all(e["benchmark"] == "cis-docker" for e in entries)


def test_catalog_list_shows_each_controls_profiles(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one line per row in the table
    code, out, _ = call_out(
        capsys, "catalog", "list", "--benchmark", "casemate-host", "--format", "json"
    )
    assert code == 0
    profiles = {e["id"]: e["profiles"] for e in json.loads(out)}
    assert profiles["cm_host_1_1"] == ["standard"]
    assert profiles["cm_host_1_19"] == ["immutable"]
    assert profiles["cm_host_3_1"] == ["standard", "immutable"]
    code, table_out, _ = call_out(capsys, "catalog", "list", "--benchmark", "casemate-host")
    rows = {line.split("│")[1].strip(): line for line in table_out.splitlines() if "│" in line}
    assert "immutable" in rows["cm_host_1_19"] and "standard" not in rows["cm_host_1_19"]
    assert " all " in rows["cm_host_3_1"]


def test_catalog_tags_follow_level(capsys: pytest.CaptureFixture[str]) -> None:
    _, level1, _ = call_out(capsys, "catalog", "tags", "--level", "1")
    _, level2, _ = call_out(capsys, "catalog", "tags", "--level", "2")
    assert "cis_docker_3_17" not in level1.split(",")
    assert "cis_docker_3_17" in level2.strip().split(",")
    assert "cis_docker_2_1" not in level2.strip().split(",")  # manual: nothing to run


@pytest.mark.ansible
def test_playbook_failure_without_host_failures_is_not_success(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from casemate.harden import vars_of
    from casemate.runner import HostStats, PlaybookOutcome

    def broken_playbook(**kwargs: Any) -> PlaybookOutcome:
        stats = {"ghost-1": vars_of(HostStats())}
        record = {"kind": "harden", "state": "finished", "stats": stats, "messages": {}}
        kwargs["run"].write_json("run.json", record | {"runner": {"status": "failed", "rc": 4}})
        return PlaybookOutcome(status="failed", rc=4, hosts={"ghost-1": HostStats()})

    monkeypatch.setattr("casemate.harden.run_harden", broken_playbook)
    monkeypatch.setattr("casemate.hostlock.acquire", every_host_free)
    monkeypatch.setattr("casemate.hostlock.release", lambda *a, **k: {})
    monkeypatch.setattr("casemate.cli.content_root", lambda: tmp_path)
    code, err = call(capsys, "harden", "-i", INV, "--limit", "ghost-1")
    assert code == 3
    assert "ansible-playbook failed (failed, rc=4)" in err
