"""`casemate schedule` on a real systemd host: a lab node is the controller of itself (casemate
copied in at the same absolute paths, an inventory with a local connection). The timer fires, the
scheduled run is recorded and logged to the journal, `schedule status` shows it, a run started by
hand meanwhile exits naming it (or waits for it with --wait), and `schedule remove` removes the
units."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

import casemate

from .conftest import CASEMATE, Lab, lab_name, open_lab

NAME = "cmsched"
STATE = "/root/casemate-state"
INV = "/root/inv.yml"
REPO = Path(casemate.__file__).resolve().parents[2]
INVENTORY = """\
all:
  children:
    docker_hosts:
      hosts:
        self:
          ansible_connection: local
          ansible_python_interpreter: /usr/bin/python3
"""

WAIVERS = """\
waivers:
  - control: cm_host_4_4
    hosts: [self]
    reason: this test runs casemate itself from the node's /tmp when the checkout is under /tmp
    owner: casemate-tests
    ticket: none
    expires: 2099-12-31
"""


def copy_casemate(node: str) -> None:
    """This checkout, its virtualenv and the Python it was made with, at the same absolute paths
    (a virtualenv works only where it was made)."""
    paths = [str(REPO.relative_to("/"))]
    excludes = ["--exclude=__pycache__", "--exclude=.git", "--exclude=.casemate"]
    base = Path(sys.base_prefix)
    if base != Path("/usr"):
        paths.append(str(base.relative_to("/")))
        lib = base / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        excludes += [f"--exclude={(lib / 'site-packages').relative_to('/')}"]
        excludes += [f"--exclude={(lib / 'test').relative_to('/')}"]
    with subprocess.Popen(
        ["tar", "-C", "/", *excludes, "-cf", "-", *paths], stdout=subprocess.PIPE
    ) as pack:
        unpack = subprocess.run(
            ["docker", "exec", "-i", node, "tar", "-C", "/", "-xf", "-"],
            stdin=pack.stdout,
            capture_output=True,
            check=False,
        )
    assert pack.wait() == 0 and unpack.returncode == 0, unpack.stderr


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("sched"), 1) as lab:
        (node,) = lab.nodes
        # a node's /tmp is Docker's tmpfs, mounted noexec: a checkout under /tmp (as CI's clone
        # may be) could not run there at its own path
        lab.sh(node, "mount -o remount,exec /tmp")
        copy_casemate(node)
        lab.sh(node, f"cat > {INV}", stdin=INVENTORY)
        # the harden the timer runs would mount /tmp noexec again (cm_host_4_4): waived here, in
        # the directory the schedule is installed from (its runs start there)
        lab.sh(node, "cat > /root/casemate-waivers.yml", stdin=WAIVERS)
        yield lab


def inside(bed: Lab, *argv: str) -> subprocess.CompletedProcess[str]:
    """casemate run by hand inside the node."""
    return subprocess.run(
        ["docker", "exec", "-w", "/root", bed.nodes[0], CASEMATE, "--state-dir", STATE, *argv],
        capture_output=True,
        text=True,
        check=False,
    )


def holder(bed: Lab) -> dict[str, object] | None:
    text = bed.sh(bed.nodes[0], f"cat {STATE}/locks/*.lock 2>/dev/null || true").strip()
    return json.loads(text) if text else None


def run_record(bed: Lab, run_id: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(
        bed.sh(bed.nodes[0], f"cat {STATE}/runs/{run_id}/run.json")
    )
    return loaded


def test_the_timer_runs_casemate_and_a_run_by_hand_never_runs_beside_it(bed: Lab) -> None:
    (node,) = bed.nodes
    done = inside(bed, "schedule", "install", "-i", INV, "--every", "20s", "--remediate",
                  "--name", NAME)  # fmt: skip
    assert done.returncode == 0, done.stderr
    unit = bed.sh(node, f"cat /etc/systemd/system/{NAME}.service")
    assert f"ExecStart={CASEMATE} --state-dir {STATE} harden --only-drifted -i {INV}" in unit
    assert bed.sh(node, f"systemctl is-enabled {NAME}.timer").strip() == "enabled"

    # the timer fires: the scheduled harden --only-drifted holds the inventory's controller lock
    for _ in range(3000):
        held = holder(bed)
        if held and held.get("command") == "harden" and held.get("run_id"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the timer never started the scheduled run")
    scheduled = str(held["run_id"])

    # a run started by hand meanwhile exits at once, naming it
    by_hand = inside(bed, "verify", "-i", INV)
    if by_hand.returncode != 4:  # the scheduled run must still have been going
        assert run_record(bed, scheduled)["state"] == "finished", by_hand.stderr
        pytest.fail("the scheduled run ended before the run by hand started: too fast to prove")
    said = [line for line in by_hand.stderr.splitlines() if not line.startswith("waivers: ")]
    assert len(said) == 1, by_hand.stderr  # one line (besides the waiver file it read)
    assert said[0].startswith(
        f"casemate: error: another casemate run holds inventory {INV} on this controller: "
        f"harden run {scheduled} (pid {held['pid']}), started "
    )
    # ...or waits for it with --wait, and runs after it
    waited = inside(bed, "verify", "-i", INV, "--wait", "900")
    assert waited.returncode in (0, 1), waited.stderr
    first = run_record(bed, scheduled)
    stored = [
        line.split("/")[-1] for line in waited.stdout.splitlines() if line.startswith("run: ")
    ]
    assert stored, waited.stdout + waited.stderr
    verify_id = stored[0]
    after = run_record(bed, verify_id)
    assert datetime.fromisoformat(str(after["started"])) >= datetime.fromisoformat(
        str(first["finished"])
    )

    # the journal has the scheduled run; status shows the timer and the last run
    journal = bed.sh(node, f"journalctl -u {NAME}.service --no-pager -o cat")
    assert f"run stored in {STATE}/runs/{scheduled}" in journal
    status = inside(bed, "schedule", "status", "--name", NAME, "--format", "json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["timer"]["ActiveState"] == "active"
    assert doc["timer"]["LastTriggerUSec"] not in ("", "n/a")
    assert doc["schedule"]["command"][3:6] == ["harden", "--only-drifted", "-i"]
    assert doc["last_run"]["id"] in {scheduled, verify_id} or doc["last_run"]["kind"] == "harden"
    shown = inside(bed, "schedule", "status", "--name", NAME)
    assert f"schedule {NAME}: every 20s, remediate, inventory {INV}" in shown.stdout

    removed = inside(bed, "schedule", "remove", "--name", NAME)
    assert removed.returncode == 0, removed.stderr
    assert f"removed /etc/systemd/system/{NAME}.timer" in removed.stdout
    left = bed.sh(node, f"ls /etc/systemd/system/{NAME}.* 2>/dev/null || true")
    assert left == ""
    assert NAME not in bed.sh(node, "systemctl list-timers --all --no-pager")
    again = inside(bed, "schedule", "status", "--name", NAME)
    assert again.returncode == 2
    assert "no casemate schedule 'cmsched' installed" in again.stderr
