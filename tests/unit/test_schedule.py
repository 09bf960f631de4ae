"""`casemate schedule`: the time span, the one scheduled command line, the unit text, and bad input
(one line, exit 2, nothing installed). The units run for real on a systemd lab node:
tests/lab/test_schedule_lab.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from casemate import cli, schedule
from casemate.errors import BadInputError

FIX = Path(__file__).parent.parent / "fixtures"
INV = str(FIX / "inventories" / "two_nodes.yml")


@pytest.mark.parametrize(
    ("span", "seconds"),
    [("30s", 30), ("15min", 900), ("1h", 3600), ("1d", 86400), ("1h 30min", 5400), ("90", 90),
     ("2 hours", 7200), ("1w", 604800)],
)  # fmt: skip
def test_every_takes_systemd_time_spans(span: str, seconds: int) -> None:
    assert schedule.parse_every(span) == seconds


@pytest.mark.parametrize("span", ["0", "0s", "", " ", "-1h", "1 fortnight", "abc", "1h;reboot",
                                  "500ms", "h"])  # fmt: skip
def test_every_refuses_what_is_not_a_span_above_zero(span: str) -> None:
    with pytest.raises(BadInputError, match="--every must be a systemd time span above zero"):
        schedule.parse_every(span)


def spec(**kw: Any) -> schedule.Spec:
    base: dict[str, Any] = {
        "name": "casemate-site",
        "casemate": Path("/opt/casemate venv/bin/casemate"),
        "state": Path("/var/lib/casemate"),
        "inventory": Path("/etc/casemate/site%1.yml"),
        "every": "1h",
        "workdir": Path("/etc/casemate"),
    }
    return schedule.Spec(**(base | kw))


def test_the_scheduled_command_is_one_absolute_command_line() -> None:
    assert schedule.command_line(spec()) == [
        "/opt/casemate venv/bin/casemate", "--state-dir", "/var/lib/casemate",
        *schedule.CHECK, "-i", "/etc/casemate/site%1.yml", "--level", "1", "--profile", "standard",
    ]  # fmt: skip
    fixing = spec(remediate=True, level=2, metrics_file=Path("/var/lib/node/casemate.prom"))
    assert schedule.command_line(fixing) == [
        "/opt/casemate venv/bin/casemate", "--state-dir", "/var/lib/casemate",
        *schedule.REMEDIATE, "-i", "/etc/casemate/site%1.yml", "--level", "2", "--profile",
        "standard", "--metrics-file", "/var/lib/node/casemate.prom",
    ]  # fmt: skip


def test_the_units_run_that_command_every_span_into_the_journal() -> None:
    units = schedule.render(spec(env_file=Path("/var/lib/casemate/schedule/casemate-site.env")))
    assert sorted(units) == ["casemate-site.service", "casemate-site.timer"]
    service = units["casemate-site.service"].splitlines()
    first = json.loads(service[0].removeprefix(schedule.MARK))
    assert first["command"] == schedule.command_line(spec())
    assert first["inventory"] == "/etc/casemate/site%1.yml"
    assert (
        'ExecStart="/opt/casemate venv/bin/casemate" --state-dir /var/lib/casemate '
        f"{' '.join(schedule.CHECK)} -i /etc/casemate/site%%1.yml --level 1 --profile standard"
    ) in service
    for line in (
        "Type=oneshot",
        "WorkingDirectory=/etc/casemate",
        "EnvironmentFile=/var/lib/casemate/schedule/casemate-site.env",
        "SuccessExitStatus=1 4",
        "SyslogIdentifier=casemate-site",
        "StandardOutput=journal",
    ):
        assert line in service
    timer = units["casemate-site.timer"].splitlines()
    for line in (
        "OnActiveSec=1h",
        "OnUnitActiveSec=1h",
        "Unit=casemate-site.service",
        "WantedBy=timers.target",
    ):
        assert line in timer
    plain = schedule.render(spec())["casemate-site.service"]  # no --db: no environment file
    assert "EnvironmentFile" not in plain


@pytest.fixture
def nothing_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    units = tmp_path / "units"
    monkeypatch.setattr("casemate.schedule.SYSTEM_DIR", units)

    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("systemctl would have run")

    monkeypatch.setattr("casemate.schedule.systemctl", boom)
    monkeypatch.setattr("casemate.probe.reach.run_everywhere", boom)
    return units


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(list(argv))
    return int(done.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-i", INV, "--every", "0"], "--every must be a systemd time span above zero"),
        (["-i", INV, "--every", "every hour"], "--every must be a systemd time span above zero"),
        (["-i", "/nowhere/inv.yml", "--every", "1h"], "inventory /nowhere/inv.yml: no such file"),
        (["-i", INV, "--every", "1h", "--name", "a b"], "--name must be letters"),
        (["-i", INV, "--every", "1h", "--level", "3"], "level"),
        (["-i", INV, "--every", "1h", "--db", "nosuch://x"], "--db"),
        (["-i", INV, "--every", "1h", "--db", "postgresql://casemate@127.0.0.1:1/casemate"],
         "port 1 failed: Connection refused"),
    ],
)  # fmt: skip
@pytest.mark.ansible
def test_bad_schedule_input_is_one_line_exit_2_and_installs_nothing(
    nothing_installed: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    said: str,
) -> None:
    code, err = call(capsys, "--state-dir", str(tmp_path / "s"), "schedule", "install", *args)
    assert code == 2, err
    assert err.startswith("casemate: error: ") and err.count("\n") == 1
    assert said in err
    assert not nothing_installed.exists()
    assert not (tmp_path / "s" / "schedule").exists()


def test_status_and_remove_of_a_schedule_that_is_not_installed_say_so(
    nothing_installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("status", "remove"):
        code, err = call(capsys, "schedule", command, "--name", "casemate-nothing")
        assert code == 2
        assert err == (
            "casemate: error: no casemate schedule 'casemate-nothing' installed (system units: "
            f"{nothing_installed}/casemate-nothing.service)\n"
        )
    assert call(capsys, "schedule", "remove")[1] == (
        "casemate: error: name the schedule: --name NAME or -i INVENTORY\n"
    )


def test_the_scheduled_executable_is_this_casemate() -> None:
    assert cli._casemate_executable() == Path(sys.executable).parent / "casemate"


def test_status_names_the_run_that_started_last_within_one_second(tmp_path: Path) -> None:
    """Two runs of one inventory started in the same second (a scheduled run's and one by hand):
    their ids' random tails order them by chance, so the start time in run.json decides."""
    inventory = str(tmp_path / "inventory.yml")
    for run_id, kind, started in (
        ("20261206T044948Z-verify-9e70de", "verify", "2026-12-06T04:49:48.100000+00:00"),
        ("20261206T044948Z-verify-431fcb", "verify", "2026-12-06T04:49:48.900000+00:00"),
        ("20261206T044936Z-harden-2dd190", "harden", "2026-12-06T04:49:36.500000+00:00"),
        ("20261206T044950Z-verify-ffffff", "verify", "2026-12-06T04:49:50.000000+00:00"),
    ):
        run = tmp_path / "runs" / run_id
        run.mkdir(parents=True)
        elsewhere = run_id.endswith("ffffff")  # a newer run of another inventory
        meta = {"kind": kind, "started": started, "state": "finished"}
        meta["inventory"] = str(tmp_path / "other.yml") if elsewhere else inventory
        (run / "run.json").write_text(json.dumps(meta))
    last = schedule.last_run(tmp_path, inventory)
    assert last is not None and last["id"] == "20261206T044948Z-verify-431fcb"
    assert schedule.last_run(tmp_path, str(tmp_path / "none.yml")) is None
