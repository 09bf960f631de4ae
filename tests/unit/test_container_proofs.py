"""Container proofs kept on the host (roles/host_common/module_utils/casemate_proof.py): reused only
while nothing they depend on changed, never from a file that is not root's own, never a failure
kept. Each runs the reader on a stand-in root (a directory tree with the host's files, /proc and
/sys entries recorded from a lab node) and a real shell command that counts its runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import casemate_proof as proof  # type: ignore[attr-defined]

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Status
from casemate.probe.collect import remote_source
from casemate.verify import judge, wanted_probes

CACHE = "/var/cache/casemate/proofs"
EXTRA = "/usr/local/lib/casemate/syscall_probe.py"
# /proc/PID/stat of a lab node's dockerd, recorded (field 22, the start time in ticks, is 4711)
STAT = "{pid} (dockerd) S 1 {pid} {pid} 0 -1 4194560 31 0 0 0 2 1 0 0 20 0 12 0 {start} 0 0"


@dataclass
class Host:
    """A stand-in root with what a proof depends on, and a proof command that counts its runs."""

    root: Path

    def put(self, path: str, text: str, mode: int = 0o644) -> Path:
        real = self.root / path.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text(text)
        real.chmod(mode)
        return real

    def daemon(self, name: str, pid: int, start: int, argv: list[str]) -> None:
        self.put(f"/proc/{pid}/cmdline", "\0".join(argv) + "\0")
        self.put(f"/proc/{pid}/comm", name + "\n")
        self.put(f"/proc/{pid}/stat", STAT.format(pid=pid, start=start).replace("dockerd", name))

    def restart(self, name: str, old: int, pid: int, start: int, argv: list[str]) -> None:
        shutil.rmtree(self.root / "proc" / str(old))
        self.daemon(name, pid, start, argv)

    @property
    def runs(self) -> int:
        ran = self.root / "ran"
        return len(ran.read_text().splitlines()) if ran.exists() else 0

    def answer(self, text: str) -> None:
        (self.root / "answer").write_text(text)

    @property
    def command(self) -> str:
        return f"echo run >> {self.root}/ran; cat {self.root}/answer"

    def prove(self, **kw: Any) -> dict[str, Any]:
        answer: dict[str, Any] = proof.prove(
            self.command, [EXTRA], r"Seccomp:\s+2", root=str(self.root), environ={}, **kw
        )
        return answer

    def record(self) -> Path:
        (kept,) = (self.root / CACHE.lstrip("/")).glob("*.json")
        return kept


@pytest.fixture
def host(tmp_path: Path) -> Host:
    root = tmp_path / "root"
    root.mkdir(mode=0o755)
    h = Host(root)
    h.put("/proc/sys/kernel/random/boot_id", "6f1c8e0e-52d2-4c1d-9a63-0d1f1b1d2c3e\n")
    h.daemon("dockerd", 301, 4711, ["/usr/bin/dockerd", "-H", "fd://"])
    h.daemon("containerd", 120, 2020, ["/usr/bin/containerd"])
    daemon_json = {
        "seccomp-profile": "/etc/docker/seccomp/casemate.json",
        "runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}},
    }
    h.put("/etc/docker/daemon.json", json.dumps(daemon_json))
    h.put("/etc/docker/seccomp/casemate.json", '{"defaultAction": "SCMP_ACT_ERRNO"}')
    h.put("/etc/containerd/config.toml", "version = 2\n")
    for name in ("docker", "dockerd", "containerd", "runc", "runsc", "python3"):
        h.put(f"/usr/bin/{name}", f"#!{name} v1\n", 0o755)
    h.put("/var/lib/docker/image/overlay2/repositories.json", '{"Repositories": {}}')
    h.put("/var/lib/dpkg/status", "Package: docker.io\nVersion: 20.10.24\n")
    h.put("/sys/kernel/security/apparmor/profiles", "casemate-container (enforce)\n")
    h.put(EXTRA, "# syscall probe v1\n")
    h.answer("Seccomp:\t2\n")
    return h


def rewrite(path: str, text: str) -> Callable[[Host], None]:
    return lambda h: h.put(path, text)


def touch(path: str) -> Callable[[Host], None]:
    """The same content written again: a write is a change (a reload may have read it between)."""
    return lambda h: h.put(path, (h.root / path.lstrip("/")).read_text())


CHANGES: dict[str, tuple[Callable[[Host], None], str]] = {
    "dockerd restarted": (
        lambda h: h.daemon("dockerd", 301, 9000, ["/usr/bin/dockerd", "-H", "fd://"]),
        "dockerd",
    ),
    "dockerd started with another flag": (
        lambda h: h.daemon("dockerd", 301, 4711, ["/usr/bin/dockerd", "--seccomp-profile=x"]),
        "dockerd",
    ),
    "containerd restarted": (
        lambda h: h.restart("containerd", 120, 121, 2090, ["/usr/bin/containerd"]),
        "containerd",
    ),
    "daemon.json's seccomp setting": (
        rewrite("/etc/docker/daemon.json", '{"seccomp-profile": "unconfined"}'),
        "files",
    ),
    "daemon.json written again": (touch("/etc/docker/daemon.json"), "files"),
    "the seccomp profile": (
        rewrite("/etc/docker/seccomp/casemate.json", '{"defaultAction": "SCMP_ACT_ALLOW"}'),
        "files",
    ),
    "containerd's config": (rewrite("/etc/containerd/config.toml", "version = 3\n"), "files"),
    "runsc replaced": (rewrite("/usr/bin/runsc", "#!runsc v2\n"), "binaries"),
    "runc replaced": (rewrite("/usr/bin/runc", "#!runc v2\n"), "binaries"),
    "a second runc earlier on PATH": (rewrite("/usr/local/bin/runc", "#!evil\n"), "binaries"),
    "the image tags": (
        rewrite(
            "/var/lib/docker/image/overlay2/repositories.json",
            '{"Repositories": {"casemate-probe": {"casemate-probe:busybox": "sha256:00"}}}',
        ),
        "files",
    ),
    "a package installed": (
        rewrite("/var/lib/dpkg/status", "Package: docker.io\nVersion: 26.1.5\n"),
        "files",
    ),
    "rebooted": (rewrite("/proc/sys/kernel/random/boot_id", "another-boot\n"), "boot"),
    "AppArmor policy": (
        rewrite("/sys/kernel/security/apparmor/profiles", "casemate-container (complain)\n"),
        "apparmor",
    ),
    "a file the catalog names": (rewrite(EXTRA, "# syscall probe v2\n"), "files"),
}


def test_a_kept_proof_is_reused_while_nothing_changed(host: Host) -> None:
    first = host.prove()
    assert (first["cached"], first["rc"], first["stdout"]) == (False, 0, "Seccomp:\t2\n")
    assert first["why"] == "no kept proof"
    second = host.prove()
    assert second == {
        "rc": 0,
        "stdout": "Seccomp:\t2\n",
        "stderr": "",
        "cached": True,
        "proved_at": first["proved_at"],
    }
    assert host.runs == 1
    kept = host.record()
    assert (kept.stat().st_mode & 0o777, kept.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert kept.parent.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_any_change_it_depends_on_runs_the_proof_again(host: Host, change: str) -> None:
    mutate, part = CHANGES[change]
    host.prove()
    mutate(host)
    again = host.prove()
    assert again["cached"] is False
    assert again["why"].startswith("changed since the kept proof: ")
    assert part in again["why"]
    assert host.runs == 2
    assert host.prove()["cached"] is True  # and the new observation is kept in its place
    assert host.runs == 2


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_after_a_change_the_verdict_follows_the_host_not_the_kept_proof(
    host: Host, change: str
) -> None:
    host.prove()
    CHANGES[change][0](host)
    host.answer("Seccomp:\t0\n")
    assert host.prove()["stdout"] == "Seccomp:\t0\n"


def test_a_failing_proof_is_never_kept(host: Host) -> None:
    host.answer("Seccomp:\t0\n")
    assert host.prove()["cached"] is False
    assert host.prove()["cached"] is False
    assert host.runs == 2
    assert not (host.root / CACHE.lstrip("/")).exists()


def test_a_proof_that_no_longer_holds_drops_the_kept_one(host: Host) -> None:
    host.prove()
    host.put("/etc/docker/daemon.json", '{"seccomp-profile": "/etc/docker/seccomp/allow.json"}')
    host.answer("Seccomp:\t0\n")
    assert host.prove()["why"] == "changed since the kept proof: files"
    assert host.prove()["why"] == "no kept proof"
    assert not list((host.root / CACHE.lstrip("/")).glob("*.json"))


def test_an_answer_with_a_complaint_is_not_kept(host: Host) -> None:
    cmd = f"echo run >> {host.root}/ran; cat {host.root}/answer; echo WARNING: odd >&2"
    for _ in range(2):
        got = proof.prove(cmd, [], r"Seccomp:\s+2", root=str(host.root), environ={})
        assert got["cached"] is False
    assert host.runs == 2


def forge_owner(kept: Path) -> None:
    os.chown(kept, 65534, 65534)


def forge_mode(kept: Path) -> None:
    kept.chmod(0o644)


def forge_link(kept: Path) -> None:
    elsewhere = kept.parent.parent / "elsewhere.json"
    kept.rename(elsewhere)
    kept.symlink_to(elsewhere)


def forge_dir(kept: Path) -> None:
    kept.parent.chmod(0o777)


def forge_parent(kept: Path) -> None:
    os.chown(kept.parent.parent, 65534, 65534)


def forge_corrupt(kept: Path) -> None:
    kept.write_text("{not json")


def forge_other_key(kept: Path) -> None:
    # a pass recorded under another state of the host, relabelled with today's boot: the key is
    # compared part by part, so the dockerd it was proved with still gives it away
    record = json.loads(kept.read_text())
    record["key"]["dockerd"]["start"] = 1
    kept.write_text(json.dumps(record))


def forge_command(kept: Path) -> None:
    record = json.loads(kept.read_text())
    record["command"] = "echo Seccomp: 2"
    kept.write_text(json.dumps(record))


FORGERIES = [
    forge_owner,
    forge_mode,
    forge_link,
    forge_dir,
    forge_parent,
    forge_corrupt,
    forge_other_key,
    forge_command,
]


@pytest.mark.parametrize("forge", FORGERIES, ids=lambda f: f.__name__)
def test_a_kept_proof_that_is_not_roots_own_and_current_is_not_used(
    host: Host, forge: Callable[[Path], None]
) -> None:
    host.prove()
    forge(host.record())
    host.answer("Seccomp:\t0\n")  # the host now fails: only a trusted, current proof may say pass
    again = host.prove()
    assert (again["cached"], again["stdout"]) == (False, "Seccomp:\t0\n")
    assert host.runs == 2


def test_without_root_every_proof_runs_and_none_is_kept(host: Host) -> None:
    for _ in range(2):
        got = host.prove(euid=1000)
        assert (got["cached"], got["why"]) == (False, "not root: proofs are kept only by root")
    assert host.runs == 2
    assert not (host.root / CACHE.lstrip("/")).exists()


def test_fresh_proofs_run_anew_and_replace_the_kept_one(host: Host) -> None:
    first = host.prove()
    fresh = host.prove(fresh=True, now=0.0)
    assert (fresh["cached"], fresh["why"]) == (False, "fresh proofs were asked for")
    assert host.runs == 2
    reused = host.prove()
    assert (reused["cached"], reused["proved_at"]) == (True, "1970-01-01T00:00:00Z")
    assert reused["proved_at"] != first["proved_at"]


def test_a_change_while_the_proof_ran_keeps_nothing(host: Host) -> None:
    daemon_json = host.root / "etc/docker/daemon.json"
    cmd = f"echo run >> {host.root}/ran; echo '{{}}' > {daemon_json}; cat {host.root}/answer"
    for _ in range(2):
        got = proof.prove(cmd, [], r"Seccomp:\s+2", root=str(host.root), environ={})
        assert got["cached"] is False
    assert host.runs == 2


def test_the_docker_client_environment_is_part_of_the_key(host: Host) -> None:
    run = {"root": str(host.root)}
    proof.prove(host.command, [], "Seccomp", environ={}, **run)
    got = proof.prove(host.command, [], "Seccomp", environ={"DOCKER_HOST": "tcp://x:2375"}, **run)
    assert (got["cached"], got["why"]) == (False, "changed since the kept proof: environment")


# --- the catalog's proofs and the probe ----------------------------------------------------------

CATALOG = load_catalog(None, builtin_kinds())
PROOFS = ("cm_rt_1_4", "cm_rt_2_3", "cm_rt_2_4")


@pytest.mark.parametrize("control_id", PROOFS)
def test_the_container_proofs_are_kept_proofs_and_judged_as_before(control_id: str) -> None:
    entry = CATALOG.get(control_id)
    assert entry is not None
    (key,) = [p.key for p in wanted_probes([entry]) if p.kind == "proof"]
    spec = json.loads(key.removeprefix("proof:"))
    assert spec["cmd"].count("docker run --rm") == 1
    assert not [p for p in wanted_probes([entry]) if p.kind == "cmd"]
    up = {"proc:dockerd": {"running": True, "argv": ["/usr/bin/dockerd"]}}
    good = {
        "cm_rt_1_4": "[   0.000000] Starting gVisor...\n",
        "cm_rt_2_3": "Seccomp:\t2\n",
        "cm_rt_2_4": "syncfs=denied io_uring_setup=denied ptrace=denied\n",
    }[control_id]
    kept = {"rc": 0, "stdout": good, "stderr": "", "cached": True, "proved_at": "2026-12-05T14:00:00Z"}  # fmt: skip
    v = judge(entry, Observations("h", {}, {key: kept} | up))
    assert v.status is Status.PASS
    assert key in v.evidence
    assert v.observed.startswith("kept proof of 2026-12-05T14:00:00Z: ")
    ran = kept | {"cached": False, "why": "no kept proof"}
    assert (
        judge(entry, Observations("h", {}, {key: ran} | up)).observed
        == v.observed.split(": ", 1)[1]
    )
    # what the host keeps is exactly what passes: a kept proof can never be a failing one
    assert proof.held(kept, spec["keep"])
    assert not proof.held(kept | {"stdout": "Seccomp:\t0\n"}, spec["keep"])


def test_the_probe_asks_for_fresh_proofs_only_when_told() -> None:
    probes = wanted_probes([e for e in CATALOG.entries if e.id in PROOFS])
    assert "\nOPTIONS = {}  #" in remote_source(probes)
    fresh = remote_source(probes, fresh_proofs=True)
    assert "\nOPTIONS = {'fresh_proofs': True}  #" in fresh
    # and the script runs with it (here, asking for nothing: it only reads this machine's facts)
    done = subprocess.run(
        [sys.executable, "-c", remote_source([], fresh_proofs=True)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["data"] == {}
