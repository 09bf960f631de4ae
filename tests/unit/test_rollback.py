"""`casemate rollback`: the host-side snapshot, change manifest, refusal and restore
(roles/casemate_rollback/library/casemate_files.py) on real files; the run-record parsing that
decides what each host gets (casemate.rollback.plan); the record a module returns reaching
run.json; bad input, refused before any host is touched; and the managed-paths table held to the
paths the roles write. The full flow runs on a real node (tests/lab/test_rollback_lab.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from casemate import cli
from casemate.errors import BadInputError
from casemate.harden import files_changed
from casemate.inventory import Inventory
from casemate.locations import content_root
from casemate.rollback import HostChanges, plan
from casemate.rundir import RunDir
from casemate.runner import HostStats, PlaybookOutcome, casemate_record

ROOT = content_root()
ROLE = ROOT / "roles" / "casemate_rollback"
FIX = Path(__file__).parent.parent / "fixtures"
ROOTED = pytest.mark.skipif(os.geteuid() != 0, reason="changes owners: needs root")


def load(name: str) -> ModuleType:
    path = ROLE / "library" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"casemate_test_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


F = load("casemate_files")
MAX = 1 << 24


# --- the host side: snapshot, manifest, refusal, restore ---------------------------------------


def tree(tmp_path: Path) -> Path:
    etc = tmp_path / "etc"
    (etc / "d").mkdir(parents=True)
    (etc / "a.conf").write_text("one\ntwo\n")
    (etc / "a.conf").chmod(0o644)
    (etc / "d" / "b.conf").write_text("bee\n")
    (etc / "d" / "b.conf").chmod(0o600)
    (etc / "d").chmod(0o755)
    (etc / "l").symlink_to("a.conf")
    (etc / "same.conf").write_text("the run leaves this alone\n")
    return etc


def seen(etc: Path) -> dict[str, Any]:
    """Every path under `etc` as the module records it, with each file's bytes."""
    found: dict[str, Any] = F.walk([str(etc)], MAX)
    for path, one in found.items():
        if one.get("type") == "file":
            one["bytes"] = Path(path).read_bytes()
    return found


def harden_it(etc: Path) -> None:
    """What a harden run does to the tree: edit, chmod, chown, create, remove."""
    (etc / "a.conf").write_text("one\ntwo\nhardened\n")
    (etc / "d").chmod(0o700)
    (etc / "d" / "new.conf").write_text("made by the run\n")
    (etc / "d" / "b.conf").unlink()
    (etc / "made").mkdir()
    (etc / "made" / "x").write_text("x\n")
    if os.geteuid() == 0:
        os.chown(etc / "a.conf", 65534, 65534)


def snapshot_and_harden(tmp_path: Path) -> tuple[Path, str, list[dict[str, Any]]]:
    etc = tree(tmp_path)
    base = F.run_dir(str(tmp_path / "backups"), "run1")
    F.snapshot(base, [str(etc)], MAX)
    harden_it(etc)
    changes: list[dict[str, Any]] = F.changes_since(base, MAX, copy_after=True)
    F.keep_only_backups(base, changes)  # as the manifest step does: the restores below use no more
    return etc, base, changes


class DoneError(Exception):  # what exit_json and fail_json raise: the module ends there
    def __init__(self, failed: bool, result: dict[str, Any]) -> None:
        super().__init__(result.get("msg", ""))
        self.failed = failed
        self.result = result


class Module:
    """What restore() uses of AnsibleModule: check_mode, run_command, exit_json, fail_json."""

    def __init__(self, check_mode: bool = False) -> None:
        self.check_mode = check_mode

    def run_command(self, argv: list[str]) -> tuple[int, str, str]:
        return 3, "", ""  # no unit runs here

    def exit_json(self, **result: Any) -> None:
        raise DoneError(False, result)

    def fail_json(self, **result: Any) -> None:
        raise DoneError(True, result)


def restore(tmp_path: Path, changes: Any, *, force: bool = False, check: bool = False) -> DoneError:
    params = {
        "backup_dir": str(tmp_path / "backups"),
        "run_id": "run1",
        "rollback_id": "rb1",
        "changes": changes,
        "force": force,
        "handed_over": [],
        "no_diff": [],
        "units": [],
        "max_size": MAX,
    }
    with pytest.raises(DoneError) as done:
        F.restore(Module(check), params)
    return done.value


def test_manifest_holds_every_change_against_the_snapshot_and_nothing_else(
    tmp_path: Path,
) -> None:
    etc, _, changes = snapshot_and_harden(tmp_path)
    by_path = {c["path"]: c for c in changes}
    assert set(by_path) == {
        str(etc / "a.conf"),
        str(etc / "d"),
        str(etc / "d" / "new.conf"),
        str(etc / "d" / "b.conf"),
        str(etc / "made"),
        str(etc / "made" / "x"),
    }
    a = by_path[str(etc / "a.conf")]
    assert a["before"]["sha256"] != a["after"]["sha256"]
    assert Path(a["backup"]).read_text() == "one\ntwo\n"
    assert by_path[str(etc / "d")]["before"]["mode"] == "0755"
    assert by_path[str(etc / "d")]["after"]["mode"] == "0700"
    assert not by_path[str(etc / "d" / "new.conf")]["before"]["exists"]
    assert not by_path[str(etc / "d" / "b.conf")]["after"]["exists"]


def store_of(backups: Path) -> dict[str, bytes]:
    """The host's content store: sha256 -> content."""
    return {p.name: p.read_bytes() for p in (backups / "store").rglob("*") if p.is_file()}


def test_the_manifest_names_stored_copies_of_what_each_changed_file_held_before_and_after(
    tmp_path: Path,
) -> None:
    etc, base, changes = snapshot_and_harden(tmp_path)
    a = next(c for c in changes if c["path"] == str(etc / "a.conf"))
    assert Path(a["backup"]).read_text() == "one\ntwo\n"
    assert Path(F.after_copy(base, a)).read_text() == "one\ntwo\nhardened\n"
    assert Path(a["backup"]).stat().st_mode & 0o777 == 0o600
    assert not (Path(base) / "files").exists()
    assert not (Path(base) / "after").exists()


def test_each_content_is_stored_once_however_many_runs_snapshot_it(tmp_path: Path) -> None:
    etc = tree(tmp_path)
    backups = tmp_path / "backups"
    for run in ("r1", "r2", "r3"):
        base = F.run_dir(str(backups), run)
        F.snapshot(base, [str(etc)], MAX)
        F.changes_since(base, MAX, copy_after=True)
    contents = {p.read_bytes() for p in etc.rglob("*") if p.is_file() and not p.is_symlink()}
    assert sorted(store_of(backups).values()) == sorted(contents)
    assert not list((backups / "runs").rglob("files"))


def test_a_file_whose_stat_did_not_change_is_not_read_again_and_one_that_changed_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tree(tmp_path)
    backups = tmp_path / "backups"
    F.snapshot(F.run_dir(str(backups), "r1"), [str(etc)], MAX)
    first = json.loads((backups / "index.json").read_text())
    # a file changed in the second before it was hashed is read again (its change and the hash
    # may share a tick of the file system's clock)
    F.snapshot(F.run_dir(str(backups), "r2"), [str(etc)], MAX)
    again = json.loads((backups / "index.json").read_text())
    assert again[str(etc / "a.conf")][6] > first[str(etc / "a.conf")][6]
    monkeypatch.setattr(F, "RACY_NS", -(10**12))  # these files count as long settled now
    F.snapshot(F.run_dir(str(backups), "r3"), [str(etc)], MAX)
    settled = json.loads((backups / "index.json").read_text())
    # same content, same size, same mtime, but written again: its ctime tells
    stamp = (etc / "same.conf").stat()
    (etc / "same.conf").write_text("the run leaves this ALONE\n")
    os.utime(etc / "same.conf", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    F.snapshot(F.run_dir(str(backups), "r4"), [str(etc)], MAX)
    now = json.loads((backups / "index.json").read_text())
    assert now[str(etc / "a.conf")] == settled[str(etc / "a.conf")]  # not read: same hash time
    assert now[str(etc / "same.conf")][5] != settled[str(etc / "same.conf")][5]
    taken = json.loads((backups / "runs" / "r4" / "before.json").read_text())["states"]
    assert taken[str(etc / "same.conf")]["sha256"] == now[str(etc / "same.conf")][5]
    # a stored content that went missing is read and stored again, whatever the index says
    for path in (backups / "store").rglob("*"):
        if path.is_file():
            path.unlink()
    F.snapshot(F.run_dir(str(backups), "r5"), [str(etc)], MAX)
    assert b"one\ntwo\n" in store_of(backups).values()


def test_a_run_that_changed_nothing_needs_no_stored_content_once_newer_runs_replace_it(
    tmp_path: Path,
) -> None:
    etc = tree(tmp_path)
    backups = tmp_path / "backups"
    base = F.run_dir(str(backups), "run1")
    F.snapshot(base, [str(etc)], MAX)
    assert F.changes_since(base, MAX, copy_after=True) == []
    F.write_json(str(Path(base) / "manifest.json"), {"run_id": "run1", "changes": []})
    assert F.needed(str(backups)) == set()
    (etc / "a.conf").write_text("changed between runs\n")
    F.snapshot(F.run_dir(str(backups), "run2"), [str(etc)], MAX)
    assert F.drop_unneeded(str(backups)) == 1  # a.conf's old content: no run needs it
    assert b"one\ntwo\n" not in store_of(backups).values()
    assert b"changed between runs\n" in store_of(backups).values()


def test_dropping_never_takes_a_content_the_snapshot_being_taken_holds(tmp_path: Path) -> None:
    etc = tree(tmp_path)
    backups = tmp_path / "backups"
    base = F.run_dir(str(backups), "run1")
    F.snapshot(base, [str(etc)], MAX)
    F.write_json(str(Path(base) / "manifest.json"), {"run_id": "run1", "changes": []})
    F.snapshot(base, [str(etc)], MAX)  # the same run id again: a new run, not the finished one
    assert not (Path(base) / "manifest.json").exists()
    later = F.run_dir(str(backups), "run2")
    F.snapshot(later, [str(etc)], MAX)
    F.write_json(str(Path(later) / "manifest.json"), {"run_id": "run2", "changes": []})
    F.snapshot(base, [str(etc)], MAX)
    assert F.drop_unneeded(str(backups), base) == 0
    assert b"one\ntwo\n" in store_of(backups).values()


def test_pruning_keeps_the_contents_a_kept_run_restores(tmp_path: Path) -> None:
    etc, base, changes = snapshot_and_harden(tmp_path)
    F.write_json(str(Path(base) / "manifest.json"), {"run_id": "run1", "changes": changes})
    backups = str(tmp_path / "backups")
    later = F.run_dir(backups, "run2")
    F.snapshot(later, [str(etc)], MAX)
    F.drop_unneeded(backups)
    assert F.unrestorable(changes) == []  # run1's "before" contents are all still there
    os.utime(Path(base) / "before.json", (1000, 1000))  # run1 is the oldest
    assert F.prune_runs(backups, 1, later) == ["run1"]
    F.drop_unneeded(backups)
    assert b"one\ntwo\n" not in store_of(Path(backups)).values()
    assert b"one\ntwo\nhardened\n" in store_of(Path(backups)).values()  # run2's snapshot needs it


@ROOTED
def test_a_run_recorded_before_the_store_is_still_restored_from_its_own_copies(
    tmp_path: Path,
) -> None:
    """Runs on a host snapshotted by the module before the store (a files/ copy of every file in
    the run's directory, an after/ copy of each changed one) stay restorable."""
    etc = tree(tmp_path)
    before = seen(etc)
    base = Path(F.run_dir(str(tmp_path / "backups"), "run1"))
    states = F.walk([str(etc)], MAX)
    for path, one in states.items():
        if one["type"] == "file":
            F.copy_in(path, F.kept(str(base), "files", path))
    F.write_json(str(base / "before.json"), {"paths": [str(etc)], "states": states})
    harden_it(etc)
    changes = F.changes_since(str(base), MAX, copy_after=True)
    a = next(c for c in changes if c["path"] == str(etc / "a.conf"))
    assert a["backup"] == F.kept(str(base), "files", str(etc / "a.conf"))
    assert Path(F.kept(str(base), "after", str(etc / "a.conf"))).is_file()
    (etc / "a.conf").write_text("one\ntwo\nhardened\nedited later\n")
    refused = {r["path"]: r["diff"] for r in F.refusals(str(base), changes, MAX)}
    assert "+edited later" in refused[str(etc / "a.conf")]
    done = restore(tmp_path, changes, force=True)
    assert not done.failed, done.result
    assert seen(etc) == before


def test_a_snapshot_drops_the_oldest_runs_beyond_keep_runs(tmp_path: Path) -> None:
    backups = str(tmp_path / "backups")
    etc = tree(tmp_path)
    for age, run in enumerate(["r5", "r4", "r3", "r2", "r1"]):  # r1 is the oldest
        base = F.run_dir(backups, run)
        F.snapshot(base, [str(etc)], MAX)
        os.utime(Path(base) / "before.json", (1000 - age, 1000 - age))
    current = F.run_dir(backups, "now")
    F.snapshot(current, [str(etc)], MAX)
    assert F.prune_runs(backups, 0, current) == []
    assert F.prune_runs(backups, 3, current) == ["r1", "r2", "r3"]
    assert sorted(p.name for p in (Path(backups) / "runs").iterdir()) == ["now", "r4", "r5"]
    assert F.prune_runs(backups, 1, current) == ["r4", "r5"]
    assert [p.name for p in (Path(backups) / "runs").iterdir()] == ["now"]


def test_a_run_whose_snapshot_was_dropped_is_refused_in_one_line(tmp_path: Path) -> None:
    etc, _, changes = snapshot_and_harden(tmp_path)
    hardened = seen(etc)
    F.prune_runs(str(tmp_path / "backups"), 1, F.run_dir(str(tmp_path / "backups"), "later"))
    done = restore(tmp_path, changes)
    assert done.failed
    assert "keeps no snapshot of run run1 any more" in done.result["msg"]
    assert "\n" not in done.result["msg"]
    assert seen(etc) == hardened


@ROOTED
def test_restore_puts_back_content_mode_owner_and_removes_what_the_run_made(
    tmp_path: Path,
) -> None:
    etc = tree(tmp_path)
    before = seen(etc)
    base = F.run_dir(str(tmp_path / "backups"), "run1")
    F.snapshot(base, [str(etc)], MAX)
    harden_it(etc)
    changes = F.changes_since(base, MAX, copy_after=True)
    assert seen(etc) != before
    done = restore(tmp_path, changes)
    assert not done.failed, done.result
    assert seen(etc) == before


def test_a_file_changed_since_the_run_is_refused_with_its_diff_and_nothing_changes(
    tmp_path: Path,
) -> None:
    etc, base, changes = snapshot_and_harden(tmp_path)
    assert F.refusals(base, changes, MAX) == []
    (etc / "a.conf").write_text("one\ntwo\nhardened\nedited later\n")
    (etc / "d").chmod(0o750)
    edited = seen(etc)
    refused = {r["path"]: r for r in F.refusals(base, changes, MAX)}
    assert set(refused) == {str(etc / "a.conf"), str(etc / "d")}
    assert "+edited later" in refused[str(etc / "a.conf")]["diff"]
    assert "mode since the run: 0700 -> 0750" in refused[str(etc / "d")]["diff"]
    done = restore(tmp_path, changes)
    assert done.failed
    assert "changed again since run run1" in done.result["msg"]
    assert {r["path"] for r in done.result["casemate_record"]["refused"]} == set(refused)
    assert seen(etc) == edited
    assert not (tmp_path / "backups" / "runs" / "rb1").exists()


def test_a_refusal_never_shows_the_content_of_a_file_that_may_hold_credentials(
    tmp_path: Path,
) -> None:
    etc, base, changes = snapshot_and_harden(tmp_path)
    (etc / "a.conf").write_text("TOKEN=s3cret-value\n")
    shown = F.refusals(base, changes, MAX, [str(etc / "a.conf")])[0]["diff"]
    assert "s3cret" not in shown
    assert "content changed since the run (not shown" in shown
    (etc / "a.conf").chmod(0o600)  # only root may read it: not shown either
    shown = F.refusals(base, changes, MAX)[0]["diff"]
    assert "s3cret" not in shown


@ROOTED
def test_force_restores_a_file_changed_since_the_run(tmp_path: Path) -> None:
    etc = tree(tmp_path)
    before = seen(etc)
    base = F.run_dir(str(tmp_path / "backups"), "run1")
    F.snapshot(base, [str(etc)], MAX)
    harden_it(etc)
    changes = F.changes_since(base, MAX, copy_after=True)
    (etc / "a.conf").write_text("edited later\n")
    done = restore(tmp_path, changes, force=True)
    assert not done.failed, done.result
    assert seen(etc) == before


def test_a_missing_or_altered_backup_is_never_restored_over(tmp_path: Path) -> None:
    etc, _, changes = snapshot_and_harden(tmp_path)
    backup = Path(next(c["backup"] for c in changes if c["path"] == str(etc / "a.conf")))
    backup.write_text("not what was saved\n")
    hardened = seen(etc)
    done = restore(tmp_path, changes)
    assert done.failed
    assert "is not what the run saved" in done.result["msg"]
    backup.unlink()
    done = restore(tmp_path, changes)
    assert "is missing" in done.result["msg"]
    assert seen(etc) == hardened


@ROOTED
def test_revert_puts_the_files_back_as_they_were_before_the_rollback(tmp_path: Path) -> None:
    etc, _, changes = snapshot_and_harden(tmp_path)
    hardened = seen(etc)
    assert not restore(tmp_path, changes).failed
    assert seen(etc) != hardened
    mine = F.run_dir(str(tmp_path / "backups"), "rb1")
    assert F.revert_to(mine, MAX) == []
    assert seen(etc) == hardened


def test_check_mode_restores_nothing(tmp_path: Path) -> None:
    etc, _, changes = snapshot_and_harden(tmp_path)
    hardened = seen(etc)
    done = restore(tmp_path, changes, check=True)
    assert not done.failed
    assert done.result["changed"]
    assert len(done.result["casemate_record"]["restored"]) == len(changes)
    assert seen(etc) == hardened


def test_no_manifest_is_refused_unless_forced(tmp_path: Path) -> None:
    etc, _, _ = snapshot_and_harden(tmp_path)
    done = restore(tmp_path, None)
    assert done.failed
    assert "recorded no change manifest" in done.result["msg"]
    done = restore(tmp_path, None, force=True, check=True)
    assert str(etc / "a.conf") in done.result["casemate_record"]["restored"]


def test_a_bad_run_id_is_refused() -> None:
    for bad in ("", "../x", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="bad run id"):
            F.run_dir("/var/backups/casemate", bad)


# --- the run record: what rollback does on each host -------------------------------------------

INVENTORY = Inventory(
    source=Path("inv.yml"),
    raw={
        "_meta": {"hostvars": {"n1": {}, "n2": {}}},
        "all": {"children": ["docker_hosts"]},
        "docker_hosts": {"hosts": ["n1", "n2"]},
    },
)
CHANGE = {"path": "/etc/x", "before": {"exists": False}, "after": {"exists": True}, "backup": None}
OK = {"ok": 5, "changed": 2, "failed": 0, "unreachable": 0, "skipped": 1, "rescued": 0}


def harden_run(tmp_path: Path, **fields: Any) -> tuple[RunDir, dict[str, Any]]:
    run = RunDir(tmp_path / "20261205T000000Z-harden-abcdef")
    meta: dict[str, Any] = {
        "kind": "harden",
        "state": "finished",
        "check": False,
        "hosts": ["n1", "n2"],
        "level": 2,
        "profile": "standard",
        "controls": ["cis_docker_2_2"],
        "runner": {"status": "successful", "rc": 0},
        "stats": {"n1": OK, "n2": OK},
        "files_changed": {"n1": [CHANGE], "n2": [CHANGE]},
    } | fields
    return run, meta


def test_rollback_plan_takes_each_hosts_changes_from_the_run_record(tmp_path: Path) -> None:
    run, meta = harden_run(tmp_path)
    back = plan(run, meta, INVENTORY, None, force=False)
    assert back.hosts == (HostChanges("n1", (CHANGE,)), HostChanges("n2", (CHANGE,)))
    assert (back.level, back.profile, back.controls) == (2, "standard", ("cis_docker_2_2",))
    limited = plan(run, meta, INVENTORY, "n2", force=False)
    assert limited.played() == ["n2"]


def test_rollback_plan_leaves_hosts_the_run_did_not_change_alone(tmp_path: Path) -> None:
    unreached = {"ok": 0, "changed": 0, "failed": 0, "unreachable": 1, "skipped": 0, "rescued": 0}
    run, meta = harden_run(tmp_path, files_changed={"n1": []}, stats={"n1": OK, "n2": unreached})
    back = plan(run, meta, INVENTORY, None, force=False)
    assert back.hosts == ()
    assert back.untouched == {
        "n1": "the run changed no file there",
        "n2": "the run did not play it",
    }


def test_a_host_that_stopped_before_the_manifest_needs_force(tmp_path: Path) -> None:
    failed = OK | {"failed": 1}
    run, meta = harden_run(tmp_path, files_changed={"n1": [CHANGE]}, stats={"n1": OK, "n2": failed})
    with pytest.raises(BadInputError, match=r"host n2: run .* recorded no change manifest there"):
        plan(run, meta, INVENTORY, None, force=False)
    back = plan(run, meta, INVENTORY, None, force=True)
    assert back.hosts[1] == HostChanges("n2", None)


@pytest.mark.parametrize(
    ("fields", "limit", "message"),
    [
        ({"kind": "verify"}, None, "is a verify run, not a harden: nothing to roll back"),
        ({"check": True}, None, "ran in check mode: it changed nothing"),
        ({"files_changed": None}, None, "recorded no file changes"),
        ({"hosts": ["n1", "gone-1"]}, None, "host gone-1 of run .* is not in inventory inv.yml"),
        ({"hosts": ["n1"]}, "n2", "--limit n2: names no host of run"),
    ],
)
def test_a_run_rollback_cannot_take_is_bad_input(
    tmp_path: Path, fields: dict[str, Any], limit: str | None, message: str
) -> None:
    run, meta = harden_run(tmp_path, **fields)
    with pytest.raises(BadInputError, match=message):
        plan(run, meta, INVENTORY, limit, force=True)


# --- what a module returns reaches run.json ----------------------------------------------------


def test_a_modules_casemate_record_is_taken_from_its_event() -> None:
    event = {
        "event": "runner_on_ok",
        "event_data": {"host": "n1", "res": {"casemate_record": {"files_changed": [CHANGE]}}},
    }
    assert casemate_record(event) == ("n1", {"files_changed": [CHANGE]})
    failed = event | {"event": "runner_on_failed"}
    assert casemate_record(failed) == ("n1", {"files_changed": [CHANGE]})
    assert casemate_record(event | {"event": "runner_on_skipped"}) is None
    assert (
        casemate_record({"event": "runner_on_ok", "event_data": {"host": "n1", "res": {}}}) is None
    )


def test_harden_keeps_each_hosts_manifest_and_none_for_a_host_without_one() -> None:
    outcome = PlaybookOutcome(
        "successful",
        0,
        {"n1": HostStats(), "n2": HostStats()},
        records={"n1": {"files_changed": [CHANGE]}, "n2": {"other": 1}},
    )
    assert files_changed(outcome) == {"n1": [CHANGE]}


# --- bad input at the command line: one line, exit 2, no host touched ---------------------------


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a host would have been touched")

    monkeypatch.setattr("ansible_runner.run", boom)
    monkeypatch.setattr("casemate.runner.run_playbook", boom)
    monkeypatch.setattr("casemate.rollback.run_playbook", boom)
    monkeypatch.setattr("casemate.verify.collect", boom)
    monkeypatch.setattr("casemate.probe.reach.run_everywhere", boom)
    monkeypatch.setenv("CASEMATE_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def stored(state: Path, name: str, **fields: Any) -> str:
    path = state / "runs" / name
    path.mkdir(parents=True)
    meta = {
        "kind": "harden",
        "state": "finished",
        "started": "2026-12-05T00:00:00+00:00",
        "inventory": str(FIX / "inventories" / "two_nodes.yml"),
        "hosts": ["ghost-1"],
        "stats": {"ghost-1": OK},
        "files_changed": {"ghost-1": [CHANGE]},
    } | fields
    (path / "run.json").write_text(json.dumps(meta))
    return name


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        cli.main(list(argv))
    return int(done.value.code or 0), capsys.readouterr().err


@pytest.mark.ansible
@pytest.mark.parametrize(
    ("fields", "args", "message"),
    [
        (None, ["rollback", "20991231"], "no run matching '20991231'"),
        ({"kind": "verify"}, [], "is a verify run, not a harden"),
        ({"hosts": ["ghost-1", "ghost-7"]}, [], "host ghost-7 of run"),
        ({"check": True}, [], "ran in check mode"),
        ({}, ["--limit", "ghost-9"], "--limit: 'ghost-9' matches no host or group"),
        ({}, ["--forks", "0"], "--forks must be at least 1"),
    ],
)
def test_rollback_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    state: Path,
    fields: dict[str, Any] | None,
    args: list[str],
    message: str,
) -> None:
    argv = args
    if fields is not None:
        argv = ["rollback", stored(state, "20261205T000000Z-harden-abcdef", **fields), *args]
    code, err = call(capsys, *argv)
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert err.startswith("casemate: error: ")
    assert message in err


# --- the managed-paths table holds what the roles write ----------------------------------------

DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
MANAGED: dict[str, list[str]] = DEFAULTS["casemate_rollback_managed_paths"]
# roles with no task of their own that writes a host file: shared code, or a caller's steps
NO_FILES = {"casemate_rollback", "host_common", "kube_node"}
WRITTEN = ("/etc/", "/var/lib/kubelet/", "/lib/systemd/", "/usr/lib/systemd/")
PATH_VAR = re.compile(r"_(path|file|dir|dirs|config|dropin|paths)$")
# paths the roles only read: where to look for the kubelet's unit (its files are in the table),
# the OS release
READ_ONLY = {"kube_kubelet_unit_dirs", "/etc/os-release"}


def covered(path: str, role: str) -> bool:
    """`path` is in the role's snapshot; a path cut short at a template (`/etc/x/{{ unit }}.d`) is
    when a managed path starts with it."""
    if path.endswith("/") and any(p.startswith(path) for p in MANAGED[role]):
        return True
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in MANAGED[role])


def test_every_role_that_changes_files_has_managed_paths() -> None:
    roles = {p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir()}
    assert set(MANAGED) == roles - NO_FILES


@pytest.mark.parametrize("role", sorted(MANAGED))
def test_the_paths_a_role_writes_are_in_its_snapshot(role: str) -> None:
    """Every path default of the role (a file it writes or a directory it changes) and every
    literal path its tasks name, where casemate writes (/etc, the kubelet's, unit files)."""
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    named: set[str] = set()
    for name, value in defaults.items():
        values = value if isinstance(value, list) else [value]
        if PATH_VAR.search(name) and not name.endswith("backup_dir") and name not in READ_ONLY:
            named |= {v for v in values if isinstance(v, str) and v.startswith(WRITTEN)}
    for path in (ROOT / "roles" / role / "tasks").glob("*.yml"):
        named |= {
            m for m in re.findall(r"(?:path|dest|src): (/[^\s\"'{},\]]+)", path.read_text())
            if m.startswith(WRITTEN) and m not in READ_ONLY
        }  # fmt: skip
    missing = sorted(p for p in named if not covered(p, role))
    assert not missing, f"{role} writes {missing}, which its snapshot does not cover"


def test_the_snapshot_is_the_first_play_and_the_manifest_follows_every_role() -> None:
    plays = yaml.safe_load((ROOT / "playbooks" / "harden.yml").read_text())
    with_roles = [i for i, p in enumerate(plays) if p.get("roles")]

    def imported(play: dict[str, Any]) -> str:
        task = (play.get("tasks") or [{}])[0].get("ansible.builtin.import_role") or {}
        return f"{task.get('name')}/{task.get('tasks_from')}"

    assert imported(plays[0]) == "casemate_rollback/snapshot"
    manifest = next(i for i, p in enumerate(plays) if imported(p) == "casemate_rollback/manifest")
    assert manifest > max(with_roles)
    for i in (0, manifest):
        assert plays[i]["tasks"][0]["tags"] == ["always"]  # whatever controls are selected
