"""The lab test bed: fresh Debian node containers, each running its own dockerd.

Every test here drives the real `casemate` command line against real nodes. Nothing is mocked;
what a container cannot show (kernel audit, AppArmor, machine-wide sysctls) is asserted to be
reported as not_verifiable, never as pass.

Each lab's Debian release (docs/testing.md): a fixture that proves something of one release's own
versions pins it (`open_lab(..., release="trixie")`); otherwise CASEMATE_TEST_RELEASE, when set,
chooses it for the whole run; otherwise the module's own (`open_lab(..., ci_release="trixie")`: CI's
split of the modules between the releases); otherwise bookworm.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml


def lab_name(base: str) -> str:
    """A lab name of this test process's own: each pytest-xdist worker gets a lab of its own
    (workers run test modules side by side), and CASEMATE_TEST_LAB_SUFFIX keeps two test runs on
    one machine (two checkouts) apart."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
    return base + os.environ.get("CASEMATE_TEST_LAB_SUFFIX", "") + worker


RELEASES = ("bookworm", "trixie")
DEFAULT_RELEASE = "bookworm"
LAB = lab_name("t")
NODES = 4
CASEMATE = str(Path(sys.executable).parent / "casemate")
FIXTURES = Path(__file__).parent / "fixtures"


def unspoilable_docker() -> set[str]:
    """Controls spoil_docker.sh cannot make fail in a container node: the ids its header lists,
    each with the reason (tests/unit/test_spoil_script.py holds that list to the catalog)."""
    lines = (FIXTURES / "spoil_docker.sh").read_text().splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("# Controls this script cannot")
    )
    out: set[str] = set()
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            break
        first = line.removeprefix("#").split()[0]
        if first.startswith(("cis_", "cm_")):
            out.add(first)
    return out


def pytest_configure(config: pytest.Config) -> None:
    lab_release()  # a CASEMATE_TEST_RELEASE no lab can run stops the run before any node starts
    gone = [name for name in LONGEST_FIRST if not (Path(__file__).parent / name).is_file()]
    if gone:  # a renamed module would silently lose its place in the order
        raise pytest.UsageError(f"LONGEST_FIRST names no lab module: {', '.join(gone)}")


# The lab modules that take longest, longest first (`--durations=0` of a whole lab run, three
# workers on two cores, summed per module: docs/benchmarks.md). `make lab-test` hands modules to its
# workers in this order (`--dist loadfile --no-loadscope-reorder`), so no worker starts a long module
# while the others are finishing: left to itself, pytest-xdist hands out the modules with the most
# tests first, and a one-test module of three minutes (the Kubernetes verify) started last. The
# order changes only when a module runs, never what it proves; a module not listed runs after
# these, in file order.
LONGEST_FIRST = (
    "test_docker_lab.py",
    "test_ssh_lab.py",
    "test_k8s_roles_lab.py",
    "test_docker_converge_lab.py",
    "test_host_accounts_lab.py",
    "test_drift_lab.py",
    "test_converge_lab.py",
    "test_runtime_lab.py",
    "test_host_lock_lab.py",
    "test_sshd_extras_lab.py",
    "test_rollback_lab.py",
    "test_host_aide_lab.py",
    "test_schedule_lab.py",
    "test_k8s_broken_file_lab.py",
    "test_daemon_down_lab.py",
    "test_audit_paths_lab.py",
    "test_waves_lab.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.lab)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept


def lab_release(ci_release: str | None = None) -> str:
    """The release a lab without a pinned one runs: CASEMATE_TEST_RELEASE, else the module's own
    (CI's split), else bookworm. An unknown name stops the run at once, before any node starts."""
    chosen = os.environ.get("CASEMATE_TEST_RELEASE") or ci_release or DEFAULT_RELEASE
    if chosen not in RELEASES:
        raise pytest.UsageError(
            f"CASEMATE_TEST_RELEASE must be one of {', '.join(RELEASES)}, not {chosen!r}"
        )
    return chosen


@dataclass(frozen=True)
class Lab:
    state: Path
    inventory: Path
    nodes: tuple[str, ...]
    release: str = DEFAULT_RELEASE

    def casemate(self, *args: str, check: int | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [CASEMATE, "--state-dir", str(self.state), *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if check is not None:
            assert done.returncode == check, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def sh(self, node: str, script: str, *, stdin: str | None = None) -> str:
        done = subprocess.run(
            ["docker", "exec", "-i", node, "sh", "-c", script],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{node}: {script}: {done.stderr}"
        return done.stdout

    def daemon_json(self, node: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.sh(node, "cat /etc/docker/daemon.json"))
        return loaded

    def spoil(self, node: str) -> None:
        self.sh(node, "sh -s", stdin=(FIXTURES / "spoil_docker.sh").read_text())

    def inventory_with(self, path: Path, hosts: dict[str, dict[str, Any]]) -> Path:
        """An inventory of some lab nodes (plus made-up ones) with extra host variables."""
        base = yaml.safe_load(self.inventory.read_text())
        group = base["all"]["children"]["docker_hosts"]
        group["hosts"] = {h: {"ansible_host": h, **v} for h, v in hosts.items()}
        path.write_text(yaml.safe_dump(base))
        return path


def last_run(state: Path, kind: str) -> Path:
    runs = sorted((state / "runs").glob(f"*-{kind}-*"))
    assert runs, f"no {kind} run stored"
    return runs[-1]


def harden_stats(state: Path) -> dict[str, dict[str, int]]:
    meta = json.loads((last_run(state, "harden") / "run.json").read_text())
    stats: dict[str, dict[str, int]] = meta["stats"]
    return stats


def wait_for_aide(lab: Lab, node: str) -> None:
    """Wait until the background build of AIDE's database that harden started (cm_host_4_22,
    casemate-aide-init.service) has ended, so verify judges what it left; on a lab node (the
    inventory narrows what AIDE watches) it takes about a second."""
    lab.sh(node, "while systemctl is-active --quiet casemate-aide-init.service; do sleep 1; done")


def report_of(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / "report.json").read_text())
    return loaded


def results(report: dict[str, Any], host: str) -> dict[str, dict[str, Any]]:
    return {r["control_id"]: r for r in report["results"] if r["host"] == host}


@contextmanager
def open_lab(
    factory: pytest.TempPathFactory,
    name: str,
    nodes: int,
    *extra: str,
    release: str | None = None,
    ci_release: str | None = None,
) -> Iterator[Lab]:
    """A lab of its own for a test module: `nodes` fresh nodes named casemate-NAME-1..N, taken down
    afterwards. `extra` goes to `lab up` (e.g. "--profile", "k8s"). `release` pins the Debian
    release (a test of that release's own versions); else lab_release(ci_release) picks it."""
    chosen = release or lab_release(ci_release)
    state = factory.mktemp(f"casemate-{name}")
    bed = Lab(
        state,
        state / "lab" / name / "inventory.yml",
        tuple(f"casemate-{name}-{i}" for i in range(1, nodes + 1)),
        chosen,
    )
    bed.casemate("lab", "down", "--name", name, check=0)  # never reuse nodes an earlier run changed
    try:
        # inside the try: a lab up that fails half way (a node not ready in time) is taken down too
        bed.casemate("lab", "up", "--name", name, "--nodes", str(nodes), "--release", chosen, *extra,
                     check=0)  # fmt: skip
        yield bed
    finally:
        bed.casemate("lab", "down", "--name", name)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, LAB, NODES) as bed:
        yield bed
