"""`--metrics-file`: the run's metrics in the Prometheus text format, written by prometheus_client
and read back here with its own parser: per host the counts by status, drifted controls, whether it
was probed; per run its outcome, time, duration and whether the history recorded it. A metrics
file in a directory that does not exist is bad input, found before any host is touched."""

from __future__ import annotations

import json
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from casemate import verify
from casemate.checks.base import Status
from casemate.harden import OUTCOMES
from casemate.inventory import Inventory

from .history_runs import Answering, call
from .test_verify import Done

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(path: Path) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


def test_verify_writes_its_metrics_for_the_textfile_collector(
    offline: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, prom = tmp_path / "state", tmp_path / "textfile" / "casemate_verify.prom"
    prom.parent.mkdir()
    argv = ["--state-dir", str(state), "verify", "-i", "site.yml", "--metrics-file", str(prom)]
    call(capsys, *argv, "--level", "2")
    (run_dir,) = (state / "runs").glob("*-verify-*")
    report: dict[str, Any] = json.loads((run_dir / "report.json").read_text())
    meta: dict[str, Any] = json.loads((run_dir / "run.json").read_text())
    found = samples(prom)
    for host in report["hosts"]:
        for status in Status:
            assert value(found, "casemate_controls", command="verify", host=host["name"],
                         status=status.value) == host["counts"][status.value]  # fmt: skip
        assert value(found, "casemate_host_probed", command="verify", host=host["name"]) == 1
        assert value(found, "casemate_drifted_controls", command="verify", host=host["name"]) == 0
    for outcome in OUTCOMES:
        expected = 1 if outcome == "succeeded" else 0
        assert value(found, "casemate_run_outcome", command="verify", outcome=outcome) == expected
    assert value(found, "casemate_history_recorded", command="verify") == 1
    finished = datetime.fromisoformat(meta["finished"])
    started = datetime.fromisoformat(meta["started"])
    assert value(found, "casemate_run_timestamp_seconds", command="verify") == finished.timestamp()
    took = (finished - started).total_seconds()
    assert value(found, "casemate_run_duration_seconds", command="verify") == took
    assert [p.name for p in prom.parent.iterdir()] == [prom.name]  # no temporary file left


class Spoiled:
    """n1 after someone edited its daemon.json: inter-container traffic and live restore are
    no longer what the controls want."""

    def run(self, command: str) -> Done:
        answer = json.loads(Answering().run(command).stdout)
        config = answer["data"]["read:/etc/docker/daemon.json"]
        config["content"] = (
            config["content"]
            .replace('"icc": false', '"icc": true')
            .replace('"live-restore": true', '"live-restore": false')
        )
        return Done(0, json.dumps(answer), "")


def test_drifted_counts_the_controls_that_passed_before_and_fail_now(
    offline: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every control passes on both hosts; then n1's daemon.json is spoiled: the next run's
    metrics say 2 drifted on n1 and none on n2 (nor on n1 the run after: drift is a change)."""
    state, prom = tmp_path / "state", tmp_path / "m.prom"
    argv = ["--state-dir", str(state), "verify", "-i", "site.yml", "--level", "2",
            "--controls", "cis_docker_2_2,cis_docker_2_15,cis_docker_2_16",
            "--metrics-file", str(prom)]  # fmt: skip
    assert call(capsys, *argv)[0] == 0  # all pass
    assert value(samples(prom), "casemate_drifted_controls", command="verify", host="n1") == 0

    def spoiled(inventory: Inventory, host: str) -> Any:
        return Spoiled() if host == "n1" else Answering()

    monkeypatch.setattr(
        "casemate.verify.run_verify", partial(verify.run_verify, transport_for=spoiled)
    )
    for drifted in (2, 0):
        assert call(capsys, *argv)[0] == 1
        found = samples(prom)
        assert value(found, "casemate_drifted_controls", command="verify", host="n1") == drifted
        assert value(found, "casemate_drifted_controls", command="verify", host="n2") == 0
        assert value(found, "casemate_controls", command="verify", host="n1", status="fail") == 2


def test_harden_writes_its_metrics(
    offline: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prom = tmp_path / "h.prom"
    call(capsys, "--state-dir", str(tmp_path / "s"), "harden", "-i", "site.yml", "--controls",
         "cis_docker_2_2", "--metrics-file", str(prom))  # fmt: skip
    found = samples(prom)
    assert value(found, "casemate_harden_tasks", command="harden", host="n1", result="changed") == 2
    assert value(found, "casemate_harden_tasks", command="harden", host="n2", result="ok") == 5
    assert value(found, "casemate_run_outcome", command="harden", outcome="succeeded") == 1
    assert value(found, "casemate_history_recorded", command="harden") == 1


@pytest.mark.parametrize("command", ["verify", "harden"])
def test_a_metrics_file_where_none_can_be_written_is_bad_input(
    offline: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    for target, message in [
        (tmp_path / "no" / "such" / "m.prom", "no such directory"),
        (tmp_path, "is a directory"),
    ]:
        code, _, err = call(capsys, "--state-dir", str(tmp_path / "s"), command, "-i", "site.yml",
                            "--metrics-file", str(target))  # fmt: skip
        assert code == 2
        assert err.count("\n") == 1 and message in err, err
        assert offline == []
