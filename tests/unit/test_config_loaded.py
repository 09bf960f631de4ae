"""Whether a running service has loaded its config (roles/host_common's shared reader): the rule
every role that restarts a service decides by, so an interrupted run converges on the next one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ansible.module_utils import casemate_host as host  # type: ignore[attr-defined]

OFFSET = 1_000_000.0  # wall clock minus monotonic clock, in seconds


def running(started_s: float, pid: int = 42) -> dict[str, Any]:
    return {"active": True, "pid": pid, "started": int(started_s * 1_000_000)}


def written(mono_s: float, sha: str = "a" * 64) -> dict[str, Any]:
    return {"exists": True, "sha256": sha, "mtime": OFFSET + mono_s}


def test_a_process_started_after_the_last_write_has_loaded_the_file() -> None:
    loaded, why = host.judge_loaded(running(100), {"/etc/x": written(50)}, None, OFFSET)
    assert loaded is True
    assert "started after" in why


def test_a_file_written_after_the_process_started_is_pending() -> None:
    loaded, why = host.judge_loaded(running(100), {"/etc/x": written(150)}, None, OFFSET)
    assert loaded is False
    assert "pid 42" in why
    assert "/etc/x" in why


def test_the_newest_of_several_files_decides() -> None:
    files = {"/etc/a": written(50), "/etc/b": written(150)}
    loaded, why = host.judge_loaded(running(100), files, None, OFFSET)
    assert loaded is False
    assert "/etc/b" in why


def test_a_recorded_reload_by_the_same_process_of_the_same_content_counts_as_loaded() -> None:
    files = {"/etc/x": written(150, "b" * 64)}
    record = {"pid": 42, "started": 100_000_000, "files": {"/etc/x": "b" * 64}}
    assert host.judge_loaded(running(100), files, record, OFFSET)[0] is True


def test_a_record_of_other_content_or_another_process_does_not_count() -> None:
    files = {"/etc/x": written(150, "b" * 64)}
    stale = {"pid": 42, "started": 100_000_000, "files": {"/etc/x": "c" * 64}}
    assert host.judge_loaded(running(100), files, stale, OFFSET)[0] is False
    restarted = {"pid": 41, "started": 90_000_000, "files": {"/etc/x": "b" * 64}}
    assert host.judge_loaded(running(100), files, restarted, OFFSET)[0] is False


def test_a_stopped_service_loads_nothing_and_says_so() -> None:
    stopped = {"active": False, "pid": 0, "started": 0}
    assert host.judge_loaded(stopped, {"/etc/x": written(1)}, None, OFFSET) == (
        None,
        "the service is not running",
    )
    assert host.judge_loaded(None, {}, None, OFFSET)[0] is None


def test_missing_files_are_not_newer_than_the_process() -> None:
    gone = {"exists": False, "sha256": "", "mtime": 0.0}
    assert host.judge_loaded(running(100), {"/etc/x": gone}, None, OFFSET)[0] is True


def test_systemctl_show_output_is_parsed() -> None:
    text = "MainPID=109\nExecMainStartTimestampMonotonic=303228390\nActiveState=active\n"
    assert host.parse_unit_process(text) == {"active": True, "pid": 109, "started": 303228390}
    inactive = "MainPID=0\nExecMainStartTimestampMonotonic=0\nActiveState=inactive\n"
    assert host.parse_unit_process(inactive)["active"] is False


class _Host:
    """What record_applied needs of an AnsibleModule: systemctl's answer and check mode."""

    def __init__(self, check_mode: bool = False) -> None:
        self.check_mode = check_mode

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        return 0, "ActiveState=active\nMainPID=7\nExecMainStartTimestampMonotonic=5\n", ""


def test_the_record_is_written_0600_and_read_back(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text("{}\n")
    records = tmp_path / "applied"
    changed, record = host.record_applied(_Host(), "docker.service", [str(config)], str(records))
    assert changed
    path = records / "docker.service.json"
    assert json.loads(path.read_text()) == record
    assert path.stat().st_mode & 0o777 == 0o600
    assert records.stat().st_mode & 0o777 == 0o700
    assert host.record_applied(_Host(), "docker.service", [str(config)], str(records))[0] is False


def test_check_mode_writes_no_record(tmp_path: Path) -> None:
    records = tmp_path / "applied"
    changed, _ = host.record_applied(_Host(check_mode=True), "ssh.service", [], str(records))
    assert changed
    assert not records.exists()
