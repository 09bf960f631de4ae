"""Staged rollout (`harden --waves/--canary/--max-fail`): wave planning (cumulative targets,
rounding up, at least one host a wave, the last wave reaching every host, --limit), the max-fail
decision, the rollout's record, and bad input (one line, exit 2, no host touched)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from casemate import cli
from casemate.errors import BadInputError
from casemate.gate import Gate
from casemate.harden import plan
from casemate.inventory import Inventory
from casemate.rundir import new_run
from casemate.waves import (
    MaxFail,
    RolloutCanceled,
    WavePlayed,
    parse_max_fail,
    rollout_options,
    run_rollout,
    verify_failures,
)

from .test_cli import INV, call, call_out
from .test_fail_on import no_host_is_touched  # noqa: F401 - autouse: no host is touched here
from .test_waivers import CATALOG

HOSTS = [f"n{i:02d}" for i in range(1, 21)]  # 20 hosts, in casemate's order


def sizes(spec: str, hosts: list[str], canary: int | None = None) -> list[int]:
    rollout = rollout_options(None if canary else spec, canary, None)
    assert rollout is not None
    return [len(w) for w in rollout.split(hosts)]


@pytest.mark.parametrize(
    ("spec", "count", "expected"),
    [
        ("1,10%,50%,100%", 20, [1, 1, 8, 10]),  # cumulative targets 1, 2, 10, 20
        ("1,10%,50%,100%", 4, [1, 1, 1, 1]),  # 10% of 4 rounds up to 1: at least one new host
        ("1,10%,50%,100%", 2, [1, 1]),  # no empty wave: targets past every host are dropped
        ("30%", 4, [2, 2]),  # 30% of 4 = 1.2, rounded up; the last wave reaches every host
        ("5", 20, [5, 15]),
        ("2,5", 20, [2, 3, 15]),
        ("100%", 3, [3]),
        ("12.5%,100%", 8, [1, 7]),
        ("3,100%", 2, [2]),  # more than there are: one wave of every host
    ],
)
def test_waves_are_cumulative_targets_rounded_up(
    spec: str, count: int, expected: list[int]
) -> None:
    assert sizes(spec, HOSTS[:count]) == expected


def test_waves_keep_host_order_and_cover_every_host_once() -> None:
    rollout = rollout_options("1,10%,50%", None, None)
    assert rollout is not None
    waves = rollout.split(HOSTS)
    assert [h for w in waves for h in w] == HOSTS
    assert waves[0] == ["n01"]
    assert waves[1] == ["n02"]


def test_canary_is_n_then_everyone() -> None:
    assert sizes("", HOSTS, canary=2) == [2, 18]
    assert sizes("", HOSTS[:1], canary=1) == [1]


def test_waves_split_the_hosts_left_by_limit() -> None:
    raw = {
        "_meta": {"hostvars": {h: {} for h in HOSTS[:6]}},
        "all": {"children": ["docker_hosts", "k8s_workers"]},
        "docker_hosts": {"hosts": HOSTS[:6]},
        "k8s_workers": {"hosts": HOSTS[3:6]},
    }
    hosts = plan(list(CATALOG.entries), Inventory(Path("inv.yml"), raw), "!k8s_workers").hosts
    rollout = rollout_options("1,2,100%", None, None)
    assert rollout is not None
    assert rollout.split(hosts) == [["n01"], ["n02"], ["n03"]]


@pytest.mark.parametrize(
    ("waves", "canary", "max_fail", "message"),
    [
        ("0", None, None, "a wave needs at least 1 host"),
        ("50%,10%", None, None, "'10%' after '50%': each wave is a cumulative target"),
        ("5,2", None, None, "'2' after '5'"),
        ("2,2", None, None, "'2' after '2'"),
        ("0%", None, None, "must be above 0%"),
        ("150%", None, None, "at most 100%"),
        ("100%,5", None, None, "'5' comes after 100%"),
        ("1,,2", None, None, "give comma-separated host counts or P%"),
        ("one", None, None, "'one' is neither a host count nor a percentage"),
        ("1", 1, None, "give one of them, not both"),
        (None, 0, None, "--canary 0: the canary wave needs at least 1 host"),
        ("1", None, "some", "--max-fail 'some'"),
        ("1", None, "120%", "--max-fail '120%'"),
        (None, None, "1", "--max-fail needs --waves or --canary"),
    ],
)
def test_bad_rollout_options_are_refused(
    waves: str | None, canary: int | None, max_fail: str | None, message: str
) -> None:
    with pytest.raises(BadInputError, match=r"^--") as refused:
        rollout_options(waves, canary, max_fail)
    assert message in str(refused.value)


def test_a_count_below_the_percentage_before_it_is_refused() -> None:
    rollout = rollout_options("60%,1", None, None)  # only comparable once the hosts are known
    assert rollout is not None
    with pytest.raises(BadInputError, match=r"wave 2 \(1 = 1 of 2 hosts\) is below"):
        rollout.split(HOSTS[:2])


@pytest.mark.ansible
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--waves", "0"], "--waves: '0': a wave needs at least 1 host"),
        (["--waves", "50%,10%"], "each wave is a cumulative target"),
        (["--waves", "60%,1"], "is below the wave before it"),
        (["--waves", "1", "--canary", "1"], "give one of them, not both"),
        (["--canary", "1", "--max-fail", "x%"], "--max-fail 'x%'"),
        (["--max-fail", "1"], "--max-fail needs --waves or --canary"),
        (["--fail-on", "level1"], "--fail-on on harden gates a staged rollout"),
        (["--canary", "1", "--fail-on", "benchmark:nope"], "unknown benchmark 'nope'"),
        (["--canary", "1", "--metrics-file", "m.prom"], "--metrics-file is not supported"),
    ],
)
def test_bad_rollout_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, err = call(capsys, "harden", "-i", INV, *args)
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert err.startswith("casemate: error: ")
    assert message in err


@pytest.mark.parametrize(
    ("text", "size", "allowed"),
    [("0", 10, 0), ("2", 10, 2), ("10%", 10, 1), ("10%", 5, 0), ("50%", 1, 0), ("100%", 3, 3)],
)
def test_max_fail_allows_at_most_what_was_said(text: str, size: int, allowed: int) -> None:
    assert parse_max_fail(text).allowed(size) == allowed


class FakeWaves:
    """Plays waves without a host: `failing` hosts fail; records which waves were played."""

    def __init__(self, failing: Mapping[str, str], code: int = 0) -> None:
        self.failing = failing
        self.code = code
        self.played: list[list[str]] = []
        self.so_far: list[Mapping[str, Any]] = []

    def __call__(self, index: int, hosts: list[str], so_far: Mapping[str, Any]) -> WavePlayed:
        self.played.append(hosts)
        self.so_far.append(so_far)
        failed = {h: why for h, why in self.failing.items() if h in hosts}
        return WavePlayed(3 if failed else self.code, {"harden_run": f"run-{index}"}, failed)


def test_a_failed_wave_stops_the_rollout_and_later_waves_are_not_played() -> None:
    rollout = rollout_options("1,2,100%", None, None)
    assert rollout is not None
    waves = rollout.split(HOSTS[:4])
    play = FakeWaves({"n02": "harden: daemon.json is not JSON"})
    code, record = run_rollout(rollout, waves, play, "any")
    assert code == 3
    assert play.played == [["n01"], ["n02"]]
    assert record["outcome"] == "stopped"
    assert record["stopped_at"] == 2
    assert "wave 2 of 3 failed" in record["why"]
    assert "n02" in record["why"]
    first, second, third = record["waves"]
    assert (first["verdict"], first["hosts"], first["harden_run"]) == ("passed", ["n01"], "run-1")
    assert second["verdict"] == "failed"
    assert second["failed"] == {"n02": "harden: daemon.json is not JSON"}
    assert second["allowed_failures"] == 0
    assert third == {"wave": 3, "hosts": ["n03", "n04"], "verdict": "not_started"}
    # each wave's harden run is told the rollout so far
    assert play.so_far[1]["outcome"] == "running"
    assert play.so_far[1]["waves"][0]["verdict"] == "passed"


def test_failures_within_max_fail_let_the_rollout_go_on() -> None:
    rollout = rollout_options("2,100%", None, "1")
    assert rollout is not None
    play = FakeWaves({"n02": "verify: 1 control(s) failing"})
    code, record = run_rollout(rollout, rollout.split(HOSTS[:4]), play, "any")
    assert play.played == [["n01", "n02"], ["n03", "n04"]]
    assert record["outcome"] == "completed"
    assert record["waves"][0]["verdict"] == "passed"
    assert record["waves"][0]["failed"] == {"n02": "verify: 1 control(s) failing"}
    assert code == 3  # a host failed harden, as plain harden says


def test_a_clean_rollout_exits_0_and_a_busy_host_4() -> None:
    rollout = rollout_options(None, 1, None)
    assert rollout is not None
    code, record = run_rollout(rollout, rollout.split(HOSTS[:3]), FakeWaves({}), "any")
    assert (code, record["outcome"], record["stopped_at"]) == (0, "completed", None)
    code, _ = run_rollout(rollout, rollout.split(HOSTS[:3]), FakeWaves({}, code=4), "any")
    assert code == 4


def test_ctrl_c_during_a_wave_ends_the_rollout_canceled_with_later_waves_untouched() -> None:
    rollout = rollout_options("1,2,100%", None, None)
    assert rollout is not None
    played = FakeWaves({})

    def play(index: int, hosts: list[str], so_far: Mapping[str, Any]) -> WavePlayed:
        if index == 2:
            raise KeyboardInterrupt
        return played(index, hosts, so_far)

    with pytest.raises(RolloutCanceled) as stopped:
        run_rollout(rollout, rollout.split(HOSTS[:4]), play, "any")
    record = stopped.value.record
    assert isinstance(stopped.value, KeyboardInterrupt)  # the CLI still exits 130
    assert (record["outcome"], record["stopped_at"]) == ("canceled", 2)
    assert record["why"] == "interrupted during wave 2 of 3; 1 later wave(s) left untouched"
    assert [w["verdict"] for w in record["waves"]] == ["passed", "canceled", "not_started"]
    assert record["waves"][1]["hosts"] == ["n02"]


def test_max_fail_percent_counts_the_wave_not_the_fleet() -> None:
    assert MaxFail().allowed(100) == 0
    rollout = rollout_options("1,100%", None, "50%")
    assert rollout is not None
    play = FakeWaves({"n01": "harden: unreachable"})
    code, record = run_rollout(rollout, rollout.split(HOSTS[:4]), play, "any")
    assert (code, record["stopped_at"]) == (3, 1)  # 50% of a 1-host wave is 0 hosts
    assert play.played == [["n01"]]


def result(host: str, control: str, status: str, level: int = 1) -> dict[str, Any]:
    return {
        "host": host,
        "control_id": control,
        "status": status,
        "automated": True,
        "level": level,
        "benchmark": "cis-docker",
    }


def test_verify_fails_a_host_by_the_gate_and_when_it_cannot_probe_it() -> None:
    doc = {
        "hosts": [
            {"name": "a", "probed": True},
            {"name": "b", "probed": True},
            {"name": "c", "probed": False, "error": "connection refused"},
        ],
        "results": [
            result("a", "cis_docker_2_2", "fail", level=2),
            result("b", "cis_docker_2_3", "pass"),
            result("b", "cis_docker_2_4", "waived"),
        ],
    }
    failed = verify_failures(Gate(), [doc], ["a", "b", "c"])
    assert failed == {
        "a": "verify: 1 control(s) failing at --fail-on: cis_docker_2_2",
        "c": "verify could not probe it: connection refused",
    }
    assert "a" not in verify_failures(Gate(spec="level1", level1=True), [doc], ["a", "b"])


def test_a_later_verify_replaces_an_earlier_one_for_its_hosts() -> None:
    before = {
        "hosts": [{"name": "a", "probed": True}, {"name": "b", "probed": True}],
        "results": [result("a", "cis_docker_2_2", "fail"), result("b", "cis_docker_2_2", "fail")],
    }
    after = {"hosts": [{"name": "a", "probed": True}], "results": [result("a", "x", "pass")]}
    assert list(verify_failures(Gate(), [before, after], ["a", "b"])) == ["b"]


# --- the command's rollout: harden and verify of each wave, the record in every wave's run.json


class FakeStore:
    closed = False

    def close(self) -> None:
        self.closed = True


class FakeVerify:
    """Stands for _Again: a verify run per call, `findings` (host -> (control, level)) failing."""

    def __init__(self, state: Path, findings: Mapping[str, tuple[str, int]]) -> None:
        self.state = state
        self.findings = findings
        self.asked: list[tuple[list[str], Mapping[str, Any]]] = []

    def verify(
        self, c: Any, store: Any, hosts: list[str], record: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        self.asked.append((hosts, record))
        found = [(h, *self.findings[h]) for h in hosts if h in self.findings]
        doc = {
            "hosts": [{"name": h, "probed": True} for h in hosts],
            "results": [result(h, control, "fail", level) for h, control, level in found],
        }
        return new_run(self.state, "verify"), doc


def fake_harden(failing: Mapping[str, str], outcome: str = "", interrupt_on: str = "") -> Any:
    """Stands for cli._harden_hosts: a harden run dir whose run.json says `failing` hosts failed
    (with their message); `outcome` "failed" with no failing host: the playbook itself failed;
    the wave holding `interrupt_on` is interrupted (Ctrl-C) once its run.json is written."""

    def harden(
        c: Any, store: Any, job: Any, harden_plan: Any, *, rollout: Any = None, started: Any = None
    ) -> Any:
        run = new_run(job.again.state, "harden")
        if started is not None:
            started(run)
        hosts = harden_plan.hosts
        stats = {h: {"ok": 1, "failed": int(h in failing)} for h in hosts}
        meta = {
            "kind": "harden",
            "hosts": hosts,
            "stats": stats,
            "messages": {h: [failing[h]] for h in hosts if h in failing},
            "runner": {"status": "failed" if outcome else "successful", "rc": 2 if outcome else 0},
            "rollout": rollout,
        }
        run.write_json("run.json", meta)
        if interrupt_on in hosts:
            raise KeyboardInterrupt
        came_to = outcome or ("failed" if any(h in failing for h in hosts) else "succeeded")
        return cli._Hardened(3 if came_to == "failed" else 0, run, meta, came_to, {})

    return harden


def rollout_of(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spec: str,
    *,
    harden: Any,
    findings: Mapping[str, tuple[str, int]] | None = None,
    fail_on: str = "any",
    max_fail: str | None = None,
    check: bool = False,
) -> tuple[int, FakeVerify, list[dict[str, Any]]]:
    """Run cli._rollout on 4 hosts with the fakes; the exit status, the verify fake, and the
    run.json of every harden run, in order."""
    from io import StringIO

    from rich.console import Console

    from casemate.gate import parse_fail_on
    from casemate.harden import HardenPlan
    from casemate.runner import StrategyChoice

    monkeypatch.setattr(cli, "_harden_hosts", harden)
    again = FakeVerify(tmp_path / "state", findings or {})
    job = cli._HardenJob(
        again=again,  # type: ignore[arg-type]
        held_inventory=None,  # type: ignore[arg-type]
        level=1,
        profile="standard",
        check=check,
        diff=False,
        chosen=StrategyChoice("linear"),
        break_glass=None,
        glass=None,
        only_drifted=False,
        metrics_file=None,
    )
    c = cli.Ctx(None, tmp_path / "state", Console(file=StringIO()), Console(file=StringIO()))
    rollout = rollout_options(spec, None, max_fail)
    assert rollout is not None
    hosts = HOSTS[:4]
    store = FakeStore()
    gate = parse_fail_on(fail_on, ["cis-docker"])
    plan_ = HardenPlan(hosts=hosts, tags=[], entries=[])
    code = cli._rollout(c, store, job, plan_, rollout, rollout.split(hosts), gate)  # type: ignore[arg-type]
    assert store.closed
    runs = sorted((tmp_path / "state" / "runs").glob("*-harden-*"))
    metas = [json.loads((r / "run.json").read_text()) for r in runs]
    return code, again, sorted(metas, key=lambda m: int(m["rollout"]["wave"]))  # same second


def test_a_wave_stopped_by_its_verify_is_recorded_in_every_wave_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    findings = {"n02": ("cis_docker_2_2", 1)}
    code, verified, metas = rollout_of(
        tmp_path, monkeypatch, "1,2,100%", harden=fake_harden({}), findings=findings
    )
    assert code == 3
    assert [m["hosts"] for m in metas] == [["n01"], ["n02"]]  # wave 3 never hardened
    assert [hosts for hosts, _ in verified.asked] == [["n01"], ["n02"]]
    assert verified.asked[1][1]["follows"] == metas[1]["rollout"]["waves"][1]["harden_run"]
    first, second = (m["rollout"] for m in metas)
    assert (first["wave"], second["wave"]) == (1, 2)
    assert first | {"wave": 2} == second  # each run ends with the whole rollout
    assert second["outcome"] == "stopped"
    assert second["waves"][1]["failed"] == {
        "n02": "verify: 1 control(s) failing at --fail-on: cis_docker_2_2"
    }
    assert second["waves"][2] == {"wave": 3, "hosts": ["n03", "n04"], "verdict": "not_started"}


def test_ctrl_c_mid_rollout_leaves_no_wave_run_saying_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(KeyboardInterrupt):
        rollout_of(tmp_path, monkeypatch, "1,2,100%", harden=fake_harden({}, interrupt_on="n02"))
    runs = sorted((tmp_path / "state" / "runs").glob("*-harden-*"))
    metas = sorted(
        (json.loads((r / "run.json").read_text()) for r in runs),
        key=lambda m: int(m["rollout"]["wave"]),
    )
    assert [m["hosts"] for m in metas] == [["n01"], ["n02"]]
    for wave, meta in enumerate(metas, start=1):
        assert meta["rollout"]["wave"] == wave
        assert meta["rollout"]["outcome"] == "canceled"
        assert meta["rollout"]["stopped_at"] == 2


def test_report_of_a_wave_run_says_which_wave_and_where_the_rollout_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    findings = {"n02": ("cis_docker_2_2", 1)}
    rollout_of(tmp_path, monkeypatch, "1,2,100%", harden=fake_harden({}), findings=findings)
    capsys.readouterr()
    runs = sorted((tmp_path / "state" / "runs").glob("*-harden-*"))
    shown = []
    for run in runs:
        _, out, _ = call_out(capsys, "report", str(run))
        shown += [x for x in out.splitlines() if x.startswith("waves ")]
    assert sorted(shown) == [
        f"waves 1,2,100%: wave {w} of 3; rollout stopped: wave 2 of 3 failed (1 of 1 host(s) "
        "failed, 0 allowed by --max-fail 0): n02; 1 later wave(s) left untouched"
        for w in (1, 2)
    ]


def test_a_finding_the_gate_does_not_count_lets_the_rollout_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    findings = {"n02": ("cis_docker_2_2", 2)}
    code, _, metas = rollout_of(
        tmp_path,
        monkeypatch,
        "1,2,100%",
        harden=fake_harden({}),
        findings=findings,
        fail_on="level1",
    )
    assert code == 0
    assert len(metas) == 3
    assert metas[-1]["rollout"]["outcome"] == "completed"
    assert metas[-1]["rollout"]["fail_on"] == "level1"


def test_check_mode_verifies_nothing_and_a_harden_failure_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harden = fake_harden({"n01": "Preflight | refused: daemon.json is not valid JSON"})
    code, verified, metas = rollout_of(tmp_path, monkeypatch, "1,100%", harden=harden, check=True)
    assert code == 3
    assert verified.asked == []
    wave = metas[0]["rollout"]["waves"][0]
    assert wave["verify"] == "skipped: check mode changes nothing"
    assert wave["why"] == "1 of 1 host(s) failed, 0 allowed by --max-fail 0"
    assert wave["failed"] == {"n01": "harden: Preflight | refused: daemon.json is not valid JSON"}


def test_check_mode_never_says_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, verified, metas = rollout_of(
        tmp_path, monkeypatch, "1,100%", harden=fake_harden({}), check=True
    )
    assert (code, verified.asked) == (0, [])
    skipped = "verify skipped: check mode changes nothing"
    whys = [w["why"] for w in metas[-1]["rollout"]["waves"]]
    assert whys == [f"all 1 host(s) hardened; {skipped}", f"all 3 host(s) hardened; {skipped}"]


def test_a_failed_playbook_fails_every_host_of_its_wave(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, verified, metas = rollout_of(
        tmp_path, monkeypatch, "2,100%", harden=fake_harden({}, outcome="failed"), max_fail="1"
    )
    assert code == 3
    assert verified.asked == []
    wave = metas[0]["rollout"]["waves"][0]
    assert wave["failed"] == dict.fromkeys(["n01", "n02"], "ansible-playbook failed (rc=2)")
    assert (wave["verdict"], len(metas)) == ("failed", 1)  # 2 failed, 1 allowed
