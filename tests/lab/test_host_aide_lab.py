"""File integrity with AIDE (cm_host_4_22) on one real node.

A fresh node (aide installed, no database) fails, saying nothing is building the database; a dry
run changes nothing; harden writes the lab's narrowed rules and starts the database build in the
background without waiting (a second run changes nothing, whether the build is still running or
done); once the build has ended the control passes, and Debian's daily check really compares:
a changed file under /etc shows up in its log. While casemate's build unit runs the control fails
saying the database is being built, and harden starts no second build; with the timer off, the
database gone or the aide package missing it fails. No AIDE scan is left running afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Lab, harden_stats, lab_name, open_lab, report_of, results, wait_for_aide

CONTROL = "cm_host_4_22"
DB = "/var/lib/aide/aide.db"
INIT = "casemate-aide-init.service"
STATE = (
    "ls -A /var/lib/aide; cat /etc/aide/aide.conf.d/99_zz_casemate 2>&1;"
    " systemctl show -p UnitFileState,ActiveState dailyaidecheck.timer;"
    f" systemctl show -p ActiveState {INIT}; ls /var/backups/casemate/host_baseline 2>&1; true"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("aide"), 1) as bed:
        yield bed


def verdict(lab: Lab, out: Path) -> dict[str, object]:
    lab.casemate(
        "verify", "-i", str(lab.inventory), "--controls", CONTROL, "--report-dir", str(out)
    )
    found: dict[str, object] = results(report_of(out), lab.nodes[0])[CONTROL]
    return found


def harden(lab: Lab, *extra: str) -> int:
    lab.casemate("harden", "-i", str(lab.inventory), "--controls", CONTROL, *extra, check=0)
    return harden_stats(lab.state)[lab.nodes[0]]["changed"]


def no_scan_left(lab: Lab) -> bool:
    return lab.sh(lab.nodes[0], "pgrep -x aide || true").strip() == ""


def test_aide_database_built_in_the_background_and_the_daily_check_compares(
    lab: Lab, tmp_path: Path
) -> None:
    node = lab.nodes[0]
    fresh = verdict(lab, tmp_path / "fresh")
    assert fresh["status"] == "fail"
    assert f"{DB} absent: not yet built, and nothing is building it" in str(fresh["observed"])

    before = lab.sh(node, STATE)
    assert harden(lab, "--check", "--diff") > 0  # the rules file it would write
    assert lab.sh(node, STATE) == before  # a dry run writes nothing and starts no build

    assert harden(lab) > 0
    assert harden(lab) == 0  # the build is running or done: nothing started twice
    wait_for_aide(lab, node)
    done = verdict(lab, tmp_path / "done")
    assert done["status"] == "pass", done["observed"]
    assert lab.sh(node, "cat /etc/aide/aide.conf.d/99_zz_casemate").splitlines()[-3:] == [
        "!/usr/",
        "!/var/",
        "!/opt/",
    ]  # the lab inventory's narrowing

    # the daily check compares the files with the database: a changed file shows up in its log
    lab.sh(node, "echo 'changed by the test' >> /etc/motd")
    lab.sh(node, "systemctl start dailyaidecheck.service")  # a oneshot: returns when it is done
    assert "/etc/motd" in lab.sh(node, "cat /var/log/aide/aide.log")
    assert no_scan_left(lab)


def test_aide_fails_while_its_database_is_being_built_or_missing(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    harden(lab)
    wait_for_aide(lab, node)
    # a build under way (here a stand-in under casemate's unit name, so it lasts): fail, saying so;
    # harden starts no second build, and the control passes once the database is there again
    lab.sh(node, f"mv {DB} {DB}.kept && systemd-run --quiet --unit={INIT} /bin/sleep infinity")
    try:
        building = verdict(lab, tmp_path / "building")
        assert building["status"] == "fail"
        assert f"not yet built, {INIT} is building it (active)" in str(building["observed"])
        assert harden(lab) == 0
        assert lab.sh(node, f"ls {DB} 2>&1 || true").strip().endswith("No such file or directory")
    finally:
        lab.sh(node, f"systemctl stop {INIT}; mv {DB}.kept {DB}")
    assert verdict(lab, tmp_path / "back")["status"] == "pass"

    lab.sh(node, "systemctl disable --now --quiet dailyaidecheck.timer")
    timer_off = verdict(lab, tmp_path / "timer")
    assert timer_off["status"] == "fail"
    assert "UnitFileState=disabled" in str(timer_off["observed"])
    assert harden(lab) > 0
    assert verdict(lab, tmp_path / "timer-on")["status"] == "pass"

    lab.sh(node, f"rm {DB}")
    gone = verdict(lab, tmp_path / "gone")
    assert gone["status"] == "fail"
    assert "not yet built, and nothing is building it" in str(gone["observed"])

    lab.sh(node, "dpkg --purge --force-depends aide >/dev/null 2>&1")  # the last step: no reinstall
    missing = verdict(lab, tmp_path / "missing")
    assert missing["status"] == "fail"
    assert "aide not installed" in str(missing["observed"])
    assert no_scan_left(lab)
