"""The remote probe, run for real on this machine through a local transport."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from casemate.checks.base import Probe
from casemate.probe.collect import collect, parse_answer, remote_command, remote_source

from .assembled import probe_module

remote = probe_module()


@dataclass
class Done:
    rc: int
    stdout: str
    stderr: str


class Local:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def run(self, command: str) -> Done:
        self.calls.append(command)
        p = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
        return Done(p.returncode, p.stdout, p.stderr)


class Broken:
    def run(self, command: str) -> Done:
        raise ConnectionError("docker exec: No such container: gone-1")


def test_one_round_trip_gathers_everything(tmp_path: Path) -> None:
    f = tmp_path / "daemon.json"
    f.write_text('{"icc": false}')
    f.chmod(0o640)
    (tmp_path / "certs.d" / "r:5000").mkdir(parents=True)
    (tmp_path / "certs.d" / "r:5000" / "ca.crt").write_text("x")
    sock_path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    probes = [
        Probe("stat", str(f)),
        Probe("stat", str(tmp_path / "missing")),
        Probe("stat", str(sock_path)),
        Probe("glob", str(tmp_path / "certs.d" / "**" / "*.crt")),
        Probe("read", str(f)),
        Probe("read", str(tmp_path)),
        Probe("proc", "python3-definitely-not-running"),
        Probe("cmd", "echo hello; echo oops >&2; exit 3"),
        Probe("sysctl", "kernel.ostype"),
        Probe("sysctl", "no.such.key"),
        Probe("nonsense", "x"),
    ]
    local = Local()
    out = collect("me", local, probes, sys.executable)
    server.close()
    assert len(local.calls) == 1
    assert out.error is None
    assert out.observations is not None
    data = out.observations.data
    assert data[f"stat:{f}"]["mode"] == "0640"
    assert data[f"stat:{f}"]["type"] == "file"
    assert data[f"stat:{tmp_path / 'missing'}"] == {
        "path": str(tmp_path / "missing"),
        "exists": False,
    }
    assert data[f"stat:{sock_path}"]["type"] == "socket"
    assert [m["path"] for m in data[f"glob:{tmp_path}/certs.d/**/*.crt"]["matches"]] == [
        str(tmp_path / "certs.d" / "r:5000" / "ca.crt")
    ]
    assert json.loads(data[f"read:{f}"]["content"]) == {"icc": False}
    assert "is a directory" in data[f"read:{tmp_path}"]["error"]
    assert data["proc:python3-definitely-not-running"] == {"running": False}
    cmd = data["cmd:echo hello; echo oops >&2; exit 3"]
    assert (cmd["rc"], cmd["stdout"], cmd["stderr"]) == (3, "hello\n", "oops\n")
    assert data["sysctl:kernel.ostype"] == {"exists": True, "value": "Linux"}
    assert data["sysctl:no.such.key"] == {"exists": False}
    assert "no collector" in data["nonsense:x"]["error"]
    assert out.raw["facts"]["euid"] == os.geteuid()


def test_proc_finds_our_own_process() -> None:
    out = collect("me", Local(), [Probe("proc", "sh")], sys.executable)
    assert out.observations is not None
    found = out.observations.data["proc:sh"]
    assert found["running"] is True
    assert found["argv"][0].endswith("sh")


def test_ref_stat_resolves_config_key(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("k")
    key.chmod(0o600)
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"tlskey": str(key)}))
    arg = json.dumps(
        {"config": str(cfg), "flag": "--tlskey", "key": "tlskey", "process": "no-such-daemon"},
        sort_keys=True,
    )
    out = collect("me", Local(), [Probe("ref_stat", arg)], sys.executable)
    assert out.observations is not None
    got = out.observations.data[f"ref_stat:{arg}"]
    assert got["source"] == "config"
    assert got["stat"]["mode"] == "0600"


def test_unreachable_host_is_an_error_not_an_exception() -> None:
    out = collect("gone-1", Broken(), [Probe("stat", "/")])
    assert out.observations is None
    assert out.error == "cannot reach gone-1: docker exec: No such container: gone-1"


def test_failed_probe_and_bad_answer() -> None:
    missing_python = collect("me", Local(), [Probe("stat", "/")], "/nonexistent/python3")
    assert missing_python.error is not None
    assert missing_python.error.startswith("probe failed on me")
    try:
        parse_answer("me", "no json here")
    except ValueError as exc:
        assert "no JSON" in str(exc)
    else:
        raise AssertionError("parse_answer accepted garbage")


def test_command_is_self_contained_and_shell_safe() -> None:
    command = remote_command([Probe("cmd", "docker info --format '{{json .}}'")])
    assert command.startswith("python3 -c ")
    assert "'{{json" not in command  # the request travels compressed, not as shell text


# --- collectors never turn a failure into an empty answer ---------------------------------------


def _ran(rc: int, stdout: str = "", stderr: str = "") -> dict[str, object]:
    return {"rc": rc, "stdout": stdout, "stderr": stderr}


def test_image_listing_that_fails_is_an_error_not_no_images(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n"
    monkeypatch.setattr(remote, "engine_socket", lambda: None)  # the CLI's answers
    monkeypatch.setattr(remote, "run_command", lambda cmd, shell=False: _ran(1, "", said))
    assert remote.c_image_files("1024") == {"error": "docker images: " + said.strip()}
    monkeypatch.setattr(remote, "run_command", lambda cmd, shell=False: _ran(0))
    assert remote.c_image_files("1024") == {"images": []}


def test_an_image_scan_that_fails_is_an_error_of_that_image(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter([_ran(0, "sha256:aa\nsha256:aa\n"), _ran(0, 'sha256:aa 10 ["x:1"]\n')])
    monkeypatch.setattr(remote, "run_command", lambda cmd, shell=False: next(answers))
    monkeypatch.setattr(remote, "engine_socket", lambda: None)  # the CLI's answers

    def broken(ident: str, sock: str | None) -> None:
        raise RuntimeError("docker save sha256:aa failed: no space left on device")

    monkeypatch.setattr(remote, "_scan_image", broken)
    (image,) = remote.c_image_files("1024")["images"]
    assert image["error"] == "scan failed: docker save sha256:aa failed: no space left on device"
    assert "skipped" not in image


def test_a_directory_glob_cannot_list_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a.rules").write_text("-w /etc/passwd -p wa\n")
    pattern = f"{tmp_path}/*.rules"
    assert [f["path"] for f in remote.c_read_glob(pattern)["files"]] == [str(tmp_path / "a.rules")]

    def denied(path: str) -> list[str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(remote.os, "listdir", denied)  # root reads every directory otherwise
    assert remote.c_read_glob(pattern) == {"error": f"list {tmp_path}: Permission denied"}
    assert remote.c_glob(pattern) == {"error": f"list {tmp_path}: Permission denied"}


def test_svc_config_says_when_systemd_could_not_be_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bus = _ran(1, "", "Failed to connect to bus: No such file or directory\n")
    monkeypatch.setattr(remote, "run_command", lambda cmd, shell=False: bus)
    monkeypatch.setattr(remote, "processes", lambda name, any_ns=False: [])
    spec = {"unit": "kubelet.service", "process": "kubelet", "config_flag": "--config",
            "config": "/nonexistent/config.yaml"}  # fmt: skip
    out = remote.c_svc_config(json.dumps(spec))
    assert out["argv_source"] == "none"
    assert out["unit_error"] == (
        "systemctl show kubelet.service: Failed to connect to bus: No such file or directory"
    )


# --- collectors run side by side ------------------------------------------------------------------


def test_collectors_run_side_by_side_and_a_broken_one_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = probe_module()
    # three collectors that can only all finish when they run at the same time (a sequential
    # probe breaks the barrier: its first waiter gives up and answers an error)
    meet = threading.Barrier(3, timeout=30)

    def together(arg: str) -> dict[str, Any]:
        meet.wait()
        return {"arg": arg}

    def broken(arg: str) -> dict[str, Any]:
        raise RuntimeError("a collector bug")

    monkeypatch.setitem(probe.COLLECTORS, "together", together)
    monkeypatch.setitem(probe.COLLECTORS, "broken", broken)
    request = [["together", "a"], ["broken", "x"], ["together", "b"], ["stat", "/"],
               ["together", "c"]]  # fmt: skip
    monkeypatch.setattr(probe, "REQUEST", request)
    probe.main()
    answer = json.loads(capsys.readouterr().out)
    data = answer["data"]
    assert [data[f"together:{a}"] for a in "abc"] == [{"arg": "a"}, {"arg": "b"}, {"arg": "c"}]
    assert data["broken:x"] == {"error": "RuntimeError: a collector bug"}
    assert data["stat:/"]["type"] == "dir"
    assert list(data) == sorted(data)  # the document's keys stay sorted
    assert set(answer["facts"]) == {"container", "hostname", "kernel", "euid", "os"}


def test_the_probe_script_loads_no_module_it_does_not_use() -> None:
    """Every module the script imports costs each probe run its start-up on every host: its
    threads are a pool of its own (concurrent.futures would bring logging along)."""
    watched = "('concurrent', 'logging', 'ssl', 'tarfile')"
    script = remote_source([Probe("stat", "/")]) + (
        f"\nimport sys\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {watched}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    answer, loaded = done.stdout.splitlines()
    assert json.loads(answer)["data"]["stat:/"]["type"] == "dir"
    assert loaded == "[]"


def test_the_pool_hands_back_what_a_call_raised_and_finishes_every_call() -> None:
    probe = probe_module()
    finished: list[int] = []

    def slow(n: int) -> int:
        threading.Event().wait(0.01 * (3 - n))
        finished.append(n)
        return n * n

    def broken() -> None:
        raise ValueError("a collector bug")

    with probe.Pool(2) as pool:
        squares = [pool.submit(slow, n) for n in range(3)]
        failed = pool.submit(broken)
        last = pool.submit(slow, 3)
    assert sorted(finished) == [0, 1, 2, 3] and last.done.is_set()
    assert [s.result() for s in squares] == [0, 1, 4]
    with pytest.raises(ValueError, match="a collector bug"):
        failed.result()
