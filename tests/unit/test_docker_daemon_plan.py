"""The docker_daemon role's decisions, without a host (roles/docker_daemon/library/
docker_daemon_facts.py): when the running dockerd still lacks daemon.json as found and whether a
reload is enough, what the running daemon reports against the file, and which log options stay when
the role sets a log driver."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from hashlib import sha256
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

ROLE = content_root() / "roles" / "docker_daemon"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docker_daemon_facts", ROLE / "library" / "docker_daemon_facts.py"
    )
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


FACTS = _module()
VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
RELOADABLE = VARS["docker_daemon_reloadable_keys"]
ACCEPTS = VARS["docker_daemon_log_driver_opts"]
COMMON = VARS["docker_daemon_log_common_opts"]

HARDENED = {"icc": False, "live-restore": True, "log-driver": "journald", "no-new-privileges": True}
BRIDGE_ICC = "com.docker.network.bridge.enable_icc"


def info(**over: Any) -> dict[str, Any]:
    """`docker info` of a daemon that runs with HARDENED."""
    base: dict[str, Any] = {
        "LiveRestoreEnabled": True,
        "LoggingDriver": "journald",
        "ExperimentalBuild": False,
        "DefaultRuntime": "runc",
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=no-new-privileges"],
        "Runtimes": {"runc": {"path": "runc"}},
    }
    return base | over


def loaded(answer: bool | None, pid: int = 42) -> dict[str, Any]:
    return {"loaded": answer, "why": "reason", "pid": pid}


# --- what the running daemon reports against daemon.json ------------------------------------


def test_a_daemon_running_the_file_differs_in_nothing() -> None:
    assert FACTS.differing_keys(HARDENED, [], info(), {BRIDGE_ICC: "false"}, 26) == {}


def test_a_daemon_that_never_loaded_the_file_differs_where_it_shows() -> None:
    old = info(LiveRestoreEnabled=False, LoggingDriver="json-file", SecurityOptions=[])
    found = FACTS.differing_keys(HARDENED, [], old, {BRIDGE_ICC: "true"}, 26)
    assert found == {
        "icc": {"file": False, "running": True},
        "live-restore": {"file": True, "running": False},
        "log-driver": {"file": "journald", "running": "json-file"},
        "no-new-privileges": {"file": True, "running": False},
    }


def test_no_new_privileges_is_judged_only_where_docker_info_reports_it() -> None:
    old = info(SecurityOptions=["name=seccomp,profile=default"])
    assert FACTS.differing_keys(HARDENED, [], old, {}, 20) == {}
    assert "no-new-privileges" in FACTS.differing_keys(HARDENED, [], old, {}, 24)


def test_keys_given_as_flags_or_not_in_the_file_are_not_judged() -> None:
    old = info(LiveRestoreEnabled=False)
    assert FACTS.differing_keys(HARDENED, ["live-restore"], old, {}, 26) == {}
    assert FACTS.differing_keys({}, [], old, {BRIDGE_ICC: "true"}, 26) == {}


def test_an_unanswering_daemon_or_bridge_judges_nothing() -> None:
    assert FACTS.differing_keys(HARDENED, [], None, None, 26) == {}
    assert FACTS.differing_keys({"icc": False}, [], info(), {}, 26) == {}


def test_a_runtime_is_judged_by_path_and_arguments_not_by_newer_daemons_status() -> None:
    config = {"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}}}
    live = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"], "status": {"x": "y"}}
    assert FACTS.differing_keys(config, [], info(Runtimes={"runsc": live}), {}, 26) == {}
    missing = FACTS.differing_keys(config, [], info(), {}, 26)
    assert missing["runtimes"]["running"] == {"runsc": None}
    other_args = {"runsc": {"path": "/usr/bin/runsc"}}
    assert "runtimes" in FACTS.differing_keys(config, [], info(Runtimes=other_args), {}, 26)


def test_userns_and_a_seccomp_profile_path_are_judged_from_security_options() -> None:
    config = {"userns-remap": "default", "seccomp-profile": "/etc/docker/seccomp.json"}
    running = info(SecurityOptions=["name=seccomp,profile=/etc/docker/seccomp.json", "name=userns"])
    assert FACTS.differing_keys(config, [], running, {}, 20) == {}
    plain = FACTS.differing_keys(config, [], info(SecurityOptions=[]), {}, 20)
    assert set(plain) == {"userns-remap"}  # no seccomp line at all: seccomp cannot be judged
    builtin = info(SecurityOptions=["name=seccomp,profile=builtin"])
    assert set(FACTS.differing_keys(config, [], builtin, {}, 20)) == {
        "userns-remap",
        "seccomp-profile",
    }


# --- whether daemon.json as found still needs a reload or restart ---------------------------


def test_a_file_the_process_loaded_and_shows_needs_nothing() -> None:
    pending, notice = FACTS.plan_apply(loaded(True), {}, False, RELOADABLE)
    assert pending["apply"] is False
    assert notice == ""


def test_a_file_written_after_the_process_started_is_applied_by_restart() -> None:
    pending, _ = FACTS.plan_apply(loaded(False), {}, False, RELOADABLE)
    assert pending == {
        "apply": True,
        "restart": True,
        "why": "daemon.json is not in effect: reason",
    }


def test_running_values_that_differ_are_applied_and_named() -> None:
    differing = {"icc": {"file": False, "running": True}}
    pending, _ = FACTS.plan_apply(loaded(False, pid=7), differing, False, RELOADABLE)
    assert pending["apply"] and pending["restart"]
    assert "pid 7" in pending["why"]
    assert "icc (daemon.json: false, running: true)" in pending["why"]


def test_a_reload_is_enough_only_for_reloadable_keys_of_a_loaded_file() -> None:
    live = {"live-restore": {"file": True, "running": False}}
    assert FACTS.plan_apply(loaded(True), live, False, RELOADABLE)[0]["restart"] is False
    # the process never loaded the file: keys it cannot show may differ too
    assert FACTS.plan_apply(loaded(False), live, False, RELOADABLE)[0]["restart"] is True
    icc = {"icc": {"file": False, "running": True}}
    assert FACTS.plan_apply(loaded(True), icc, False, RELOADABLE)[0]["restart"] is True


def test_what_a_restart_by_casemate_did_not_change_is_said_not_restarted_again() -> None:
    icc = {"icc": {"file": False, "running": True}}
    pending, notice = FACTS.plan_apply(loaded(True), icc, True, RELOADABLE)
    assert pending["apply"] is False
    assert "icc (daemon.json: false, running: true)" in notice
    assert "restarting again would not change that" in notice


def test_a_stopped_daemon_is_left_stopped() -> None:
    icc = {"icc": {"file": False, "running": True}}
    pending, _ = FACTS.plan_apply(loaded(None), icc, False, RELOADABLE)
    assert pending["apply"] is False


# --- log options belong to their driver ------------------------------------------------------


def opts(config: dict[str, Any], driver: str, explicit: dict[str, str] | None = None) -> Any:
    return FACTS.log_opts_for(config, driver, explicit or {}, ACCEPTS, COMMON)


def test_json_file_rotation_is_dropped_for_journald_and_named() -> None:
    answer = opts({"log-opts": {"max-size": "10m", "max-file": "3"}}, "journald")
    assert answer == {
        "opts": None,
        "remove": True,
        "dropped": ["max-file", "max-size"],
        "written_for": "json-file",
    }


def test_options_the_new_driver_accepts_stay() -> None:
    site = {
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "tag": "{{.Name}}", "mode": "non-blocking"},
    }
    answer = opts(site, "journald")
    assert answer["opts"] == {"tag": "{{.Name}}", "mode": "non-blocking"}
    assert answer["remove"] is False
    assert answer["dropped"] == ["max-size"]


def test_the_sites_own_log_options_win() -> None:
    answer = opts(
        {"log-opts": {"max-size": "10m"}}, "syslog", {"syslog-address": "udp://127.0.0.1"}
    )
    assert answer["opts"] == {"syslog-address": "udp://127.0.0.1"}
    assert answer["dropped"] == []


def test_options_consistent_with_the_driver_are_left_alone() -> None:
    assert opts({"log-driver": "journald", "log-opts": {"tag": "x"}}, "journald")["opts"] is None
    assert opts({}, "journald") == {
        "opts": None,
        "remove": False,
        "dropped": [],
        "written_for": "json-file",
    }


def test_an_unknown_driver_keeps_its_own_options_and_gets_none_of_anothers() -> None:
    own = {"log-driver": "fluentd", "log-opts": {"fluentd-address": "localhost:24224"}}
    assert opts(own, "fluentd")["opts"] is None
    answer = opts({"log-opts": {"max-size": "10m", "mode": "blocking"}}, "fluentd")
    assert answer["opts"] == {"mode": "blocking"}
    assert answer["dropped"] == ["max-size"]


# --- versions, backups ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ("Docker version 26.1.5+dfsg1, build 411e817", 26),
        ("Docker version 20.10.24+dfsg1, build 5d6db84", 20),
        ("20.10.24+dfsg1", 20),
        ("", 0),
    ],
)
def test_the_major_version_is_read_from_dockerd(text: str, major: int) -> None:
    assert FACTS.major_version(text) == major


def test_a_backup_is_a_rollback_target_when_it_holds_what_the_running_dockerd_started_with(
    tmp_path: Path,
) -> None:
    now = time.time()
    older = tmp_path / "daemon.json.20260101T000000Z"
    newest = tmp_path / "daemon.json.20260102T000000Z"
    for path in (older, newest):
        path.write_text("{}\n")
    (tmp_path / "daemon.json.20260103T000000Z.tmp").write_text("{}\n")
    offset = 0.0  # wall clock == monotonic clock here
    since = {"active": True, "pid": 9, "started": int((now - 100) * 1_000_000)}
    backups, config = str(tmp_path), "/etc/docker/daemon.json"

    # copied now (ctime) while dockerd ran, of a file written before dockerd started (mtime kept)
    os.utime(newest, (now - 200, now - 200))
    assert FACTS.latest_backup(backups, since, offset, config, None) == str(newest)
    # a file written after dockerd started: dockerd never loaded it...
    os.utime(newest, (now - 50, now - 50))
    assert FACTS.latest_backup(backups, since, offset, config, None) == ""
    # ...unless casemate recorded a reload of exactly that content by this very process
    reload = {"pid": 9, "started": since["started"], "files": {config: sha256(b"{}\n").hexdigest()}}
    assert FACTS.latest_backup(backups, since, offset, config, reload) == str(newest)
    assert FACTS.latest_backup(backups, since | {"pid": 10}, offset, config, reload) == ""
    # a copy taken before this dockerd started says nothing of what it runs with
    later = since | {"started": int((now + 100) * 1_000_000)}
    os.utime(newest, (now - 200, now - 200))
    assert FACTS.latest_backup(backups, later, offset, config, None) == ""
    assert FACTS.latest_backup(str(tmp_path / "none"), since, offset, config, None) == ""


def _run(argv: list[str]) -> tuple[int, str, str]:
    """module.run_command's contract, on this machine."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


def _dockerd(tmp_path: Path, version: str, *, validates: bool) -> str:
    """A stand-in dockerd for the builds this machine has none of: one whose --version carries no
    release number (moby built without release metadata says 'library-import') but that has
    --validate, and one that says 24 but refuses the flag (a wrapper in front of an older engine)."""
    tmp_path.mkdir()
    path = tmp_path / "dockerd"
    check = 'exec python3 -c "import json, sys; json.load(open(sys.argv[1]))" "$3"'
    refuse = 'echo "unknown flag: --validate" >&2; exit 125'
    path.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = --version ]; then echo "Docker version {version}"; exit 0; fi\n'
        f'if [ "$1" = --validate ]; then {check if validates else refuse}; fi\n'
        "exit 2\n"
    )
    path.chmod(0o755)
    return str(path)


def test_validate_support_is_asked_of_dockerd_not_read_from_its_version(tmp_path: Path) -> None:
    unnumbered = _dockerd(tmp_path / "a", "library-import, build library-import", validates=True)
    numbered = _dockerd(tmp_path / "b", "24.0.7, build afdd53b", validates=False)
    assert FACTS.validates(unnumbered, _run) is True
    assert FACTS.validates(numbered, _run) is False
    assert FACTS.validates("", _run) is False


@pytest.mark.skipif(shutil.which("dockerd") is None, reason="no dockerd on this machine")
def test_this_machines_dockerd_is_asked_whether_it_validates() -> None:
    dockerd = shutil.which("dockerd")
    assert dockerd is not None
    rc, out, _ = _run([dockerd, "--version"])
    assert rc == 0
    assert FACTS.validates(dockerd, _run) is (FACTS.major_version(out) >= 23)


# --- how the running daemon is read -----------------------------------------------------------

INFO_READ = ("ServerVersion", "LoggingDriver", "LiveRestoreEnabled", "ExperimentalBuild",
             "DefaultRuntime", "SecurityOptions", "Runtimes")  # fmt: skip


def _cli_json(argv: list[str]) -> Any:
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_running_daemon_is_read_over_the_engine_api_as_the_probe_reads_it() -> None:
    """This machine's dockerd, read by the module with casemate_engine (the probe's reader): the
    docker CLI is not run, and the answers are what the CLI prints for the keys judged here."""
    asked: list[list[str]] = []

    def cli(argv: list[str]) -> Any:
        asked.append(argv)
        return _cli_json(argv)

    info, bridge = FACTS.running_daemon(cli)
    assert asked == [], "the docker CLI was run"
    by_cli = _cli_json(["docker", "info", "--format", "{{json .}}"])
    assert {k: info[k] for k in INFO_READ} == {k: by_cli[k] for k in INFO_READ}
    options = ["docker", "network", "inspect", "bridge", "--format", "{{json .Options}}"]
    assert bridge == _cli_json(options)


def test_the_docker_cli_is_asked_where_the_engine_reader_cannot_tell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The reader's one rule: another daemon would be asked (DOCKER_HOST), so the CLI answers."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/other.sock")
    asked: list[list[str]] = []

    def cli(argv: list[str]) -> Any:
        asked.append(argv)
        return {"asked": argv[1]}

    assert FACTS.running_daemon(cli) == ({"asked": "info"}, {"asked": "network"})
    assert [a[:2] for a in asked] == [["docker", "info"], ["docker", "network"]]
