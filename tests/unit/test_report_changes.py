"""What changed since the previous verify run of the same inventory: the comparison (new failures,
fixed, new waivers, the rest) on recorded reports, and which earlier run is the previous one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from casemate.report import changes

from .reports import WAIVED, recorded, with_waiver


def keys(items: tuple[changes.Change, ...]) -> set[tuple[str, str]]:
    return {(c.host, c.control_id) for c in items}


def test_hardening_shows_as_fixed_and_the_regression_as_a_new_failure() -> None:
    fresh, hardened = recorded("fresh"), recorded("hardened")
    got = changes.compare(fresh, hardened)
    assert got.previous_run == fresh["run_id"]
    assert keys(got.new_failures) == {
        ("casemate-formatsa-1", "cis_docker_1_1_11"),  # daemon.json now exists: now checked
        ("casemate-formatsa-2", "cis_docker_1_1_11"),
        ("casemate-formatsa-2", "cis_docker_3_1"),  # the regression made by hand
    }
    assert {(c.before, c.after) for c in got.fixed} == {("fail", "pass")}
    assert len(got.fixed) == 66
    assert got.new_waivers == ()
    # every status change is in exactly one group
    before = {(r["host"], r["control_id"]): r["status"] for r in fresh["results"]}
    changed = {
        (r["host"], r["control_id"])
        for r in hardened["results"]
        if before.get((r["host"], r["control_id"])) != r["status"]
    }
    groups = [got.new_failures, got.fixed, got.new_waivers, got.other]
    assert sum(len(g) for g in groups) == got.total == len(changed)
    assert set().union(*(keys(g) for g in groups)) == changed
    assert ("fail", "not_verifiable") in {(c.before, c.after) for c in got.other}


def test_nothing_changed_between_a_run_and_itself() -> None:
    assert changes.compare(recorded("hardened"), recorded("hardened")).total == 0


def test_a_waived_failure_is_a_new_waiver_not_a_new_failure() -> None:
    hardened = recorded("hardened")
    got = changes.compare(hardened, with_waiver(hardened))
    assert keys(got.new_waivers) == {WAIVED}
    assert got.new_failures == got.fixed == got.other == ()
    # and the waiver running out makes it a failure again, which is new
    back = changes.compare(with_waiver(hardened), hardened)
    assert keys(back.new_failures) == {WAIVED}


def test_a_host_not_checked_before_brings_its_failures_as_new() -> None:
    fresh, hardened = recorded("fresh"), recorded("hardened")
    fresh["results"] = [r for r in fresh["results"] if r["host"] != "casemate-formatsa-2"]
    got = changes.compare(fresh, hardened)
    mine = [c for c in got.new_failures if c.host == "casemate-formatsa-2"]
    failing = [
        r
        for r in hardened["results"]
        if r["host"] == "casemate-formatsa-2" and r["status"] in ("fail", "error")
    ]
    assert len(mine) == len(failing)
    assert {c.before for c in mine} == {None}
    # and controls no longer checked are other changes, to "not checked"
    gone = changes.compare(hardened, fresh)
    assert {c.after for c in gone.other if c.host == "casemate-formatsa-2"} == {None}


def stored(root: Path, name: str, doc: dict[str, Any], **meta: Any) -> Path:
    path = root / name
    path.mkdir(parents=True)
    run = {"kind": "verify", "state": "finished", "inventory": doc["inventory"]} | meta
    run.setdefault("started", doc["started"])
    (path / "run.json").write_text(json.dumps(run))
    (path / "report.json").write_text(json.dumps(doc))
    return path


def test_the_previous_run_is_the_latest_earlier_finished_verify_of_the_inventory(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    fresh, hardened = recorded("fresh"), recorded("hardened")
    stored(runs, "20261205T115343Z-verify-daad03", fresh)
    current = stored(runs, "20261205T115951Z-verify-082e20", hardened)
    # none of these is the previous run
    stored(runs, "20261205T115500Z-verify-other1", fresh, inventory="elsewhere/inventory.yml")
    stored(runs, "20261205T115600Z-verify-runnin", fresh, state="running",
           started="2026-12-05T11:56:00+00:00")  # fmt: skip
    stored(runs, "20261205T115700Z-harden-aaaaaa", fresh, kind="harden",
           started="2026-12-05T11:57:00+00:00")  # fmt: skip
    stored(runs, "20261205T120500Z-verify-later1", fresh, started="2026-12-05T12:05:00+00:00")
    (runs / "junk").mkdir()
    (runs / "junk" / "run.json").write_text("{not json")
    (runs / "junk" / "report.json").write_text("{}")
    got = changes.since_previous(current, hardened)
    assert got is not None and got.previous_run == fresh["run_id"]
    assert [d["run_id"] for d in changes.earlier_reports(current, hardened)] == [fresh["run_id"]]


def test_no_previous_run_gives_none(tmp_path: Path) -> None:
    current = stored(tmp_path / "runs", "20261205T115951Z-verify-082e20", recorded("hardened"))
    assert changes.since_previous(current, recorded("hardened")) is None
