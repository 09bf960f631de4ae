"""Waivers: the file is validated like the catalog (one line naming file:line, entry and field); on
recorded observations a waiver in force makes a control `waived` (never pass) and keeps what the
check said, an expired one leaves the verdict and is shown beside it, and one that matches nothing
is a warning; harden leaves a waived control's tasks out on exactly the hosts the waiver covers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from casemate import cli, waivers
from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.errors import WaiverError
from casemate.generated import tag_lists
from casemate.harden import held_back, shared_fixes
from casemate.locations import content_root
from casemate.probe.collect import ProbeOutcome, parse_answer
from casemate.report import document, junit, table
from casemate.runner import HostStats, PlaybookOutcome
from casemate.verify import HostVerification, host_results

from .locks import every_host_free
from .test_report import build

FIX = Path(__file__).parent.parent / "fixtures"
CATALOG = load_catalog(None, builtin_kinds())
KNOWN = set(CATALOG.ids())
TODAY = date(2026, 12, 5)

GOOD = """\
# accepted risk, reviewed quarterly
waivers:
  - control: cis_docker_2_2
    hosts: [node-1]
    reason: the legacy app talks container to container on the default bridge
    owner: platform-team
    ticket: SEC-1234
    expires: 2026-12-31
  - controls: [cis_docker_2_3, cis_docker_2_13]
    hosts: docker_hosts
    reason: logging moves to the new pipeline next quarter
    owner: obs-team
    url: https://tickets.example/OBS-9
    expires: "2026-12-01"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "waivers.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_valid_file_loads_with_each_entrys_line(tmp_path: Path) -> None:
    found = waivers.load_waivers(write(tmp_path, GOOD), KNOWN)
    first, second = found.waivers
    assert first.controls == ("cis_docker_2_2",)
    assert first.hosts == ("node-1",)
    assert first.source == "waivers.yml:3"
    assert first.expires == date(2026, 12, 31)
    assert (first.ticket, first.url) == ("SEC-1234", None)
    assert second.controls == ("cis_docker_2_3", "cis_docker_2_13")
    assert second.hosts == ("docker_hosts",)  # one name is a list of one
    assert second.source == "waivers.yml:9"
    assert second.expires == date(2026, 12, 1)  # a quoted date is a date too


ENTRY = """\
waivers:
  - control: cis_docker_2_2
    hosts: [node-1]
    reason: accepted
    owner: platform-team
    ticket: SEC-1
    expires: 2026-12-31
"""

BAD = [
    ("waivers: [\n", "waivers.yml:2: not YAML:"),
    (
        "- control: cis_docker_2_2\n",
        "waivers.yml: a waiver file is a mapping with a `waivers:` list",
    ),
    (ENTRY + "extra: 1\n", "waivers.yml: extra: unknown key"),
    (
        "waivers:\n  - cis_docker_2_2\n",
        "waivers.yml:2: entry 1: an entry is a mapping: control(s), hosts, reason, owner, ticket",
    ),
    ("waivers:\n", "waivers.yml: waivers: Input should be a valid list"),
    (
        ENTRY.replace("control: cis_docker_2_2", "control: cis_docker_2_22"),
        "waivers.yml:2: entry 1: control: unknown control 'cis_docker_2_22'",
    ),
    (
        ENTRY.replace("control: cis_docker_2_2", "controls: [cis_docker_2_2, cis_x_1]"),
        "waivers.yml:2: entry 1: controls: unknown control 'cis_x_1'",
    ),
    (
        ENTRY.replace("2026-12-31", "next month"),
        "waivers.yml:7: entry 1: expires: not a date (YYYY-MM-DD): 'next month'",
    ),
    (
        ENTRY.replace("2026-12-31", "2026-13-01"),
        "waivers.yml:7: entry 1: expires: not a date (YYYY-MM-DD): '2026-13-01'",
    ),
    (
        ENTRY.replace("2026-12-31", "2026-12-31T10:00:00"),
        "waivers.yml:7: entry 1: expires: not a date (YYYY-MM-DD)",
    ),
    (ENTRY.replace("2026-12-31", "90"), "waivers.yml:7: entry 1: expires: not a date"),
    (
        ENTRY.replace("    expires: 2026-12-31\n", ""),
        "waivers.yml:2: entry 1: expires: missing (required)",
    ),
    (
        ENTRY.replace("    reason: accepted\n", ""),
        "waivers.yml:2: entry 1: reason: missing (required)",
    ),
    (
        ENTRY.replace("reason: accepted", "reason: '  '"),
        "waivers.yml:4: entry 1: reason: must say something",
    ),
    (
        ENTRY.replace("    owner: platform-team\n", ""),
        "waivers.yml:2: entry 1: owner: missing (required)",
    ),
    (
        ENTRY.replace("hosts: [node-1]", "hosts: []"),
        "waivers.yml:3: entry 1: hosts: List should have at least 1 item",
    ),
    (
        ENTRY.replace("    hosts: [node-1]\n", ""),
        "waivers.yml:2: entry 1: hosts: missing (required)",
    ),
    (
        ENTRY.replace("    ticket: SEC-1\n", ""),
        "waivers.yml:2: entry 1: give a `ticket:` or a `url:` (where the risk was accepted)",
    ),
    (
        ENTRY.replace("- control: cis_docker_2_2\n    hosts", "- hosts"),
        "waivers.yml:2: entry 1: give exactly one of `control: ID` or `controls: [IDS]`",
    ),
    (
        ENTRY.replace("    hosts:", "    controls: [cis_docker_2_3]\n    hosts:"),
        "waivers.yml:2: entry 1: give exactly one of `control: ID` or `controls: [IDS]`",
    ),
    (ENTRY + "    approver: someone\n", "waivers.yml:8: entry 1: approver: unknown key"),
    (
        ENTRY + ENTRY.split("\n", 1)[1].replace("SEC-1", "''"),
        "waivers.yml:12: entry 2: ticket: String should have at least 1 character",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_each_kind_of_bad_entry_is_one_line_naming_file_line_entry_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "waivers.yml"
    path.write_text(text)
    with pytest.raises(WaiverError) as err:
        waivers.load_waivers(path, KNOWN)
    said = str(err.value)
    assert "\n" not in said
    assert said.startswith(str(tmp_path))
    assert message in said, said


def test_the_default_file_is_picked_up_from_the_working_directory(tmp_path: Path) -> None:
    assert waivers.waiver_file(None, tmp_path) is None
    (tmp_path / "casemate-waivers.yml").write_text(ENTRY)
    assert waivers.waiver_file(None, tmp_path) == tmp_path / "casemate-waivers.yml"
    given = write(tmp_path, ENTRY)
    assert waivers.waiver_file(given, tmp_path) == given  # a given file wins
    with pytest.raises(WaiverError, match=r"--waivers /no/such\.yml: no such file"):
        waivers.waiver_file(Path("/no/such.yml"), tmp_path)


def test_a_waiver_holds_through_its_expiry_date_and_not_the_day_after(tmp_path: Path) -> None:
    (w, _) = waivers.load_waivers(write(tmp_path, GOOD), KNOWN).waivers
    assert not w.expired(date(2026, 12, 31))
    assert w.expired(date(2027, 1, 1))


# --- on recorded observations -------------------------------------------------------------------

IDS = ["cis_docker_2_2", "cis_docker_2_3", "cis_docker_2_13", "cis_docker_2_12"]


def recorded(name: str, groups: tuple[str, ...] = ("docker_hosts",)) -> HostVerification:
    """The host judged on a probe answer recorded from a real lab node (drifted on purpose)."""
    obs, raw = parse_answer(name, (FIX / "observations" / "noncompliant.json").read_text())
    entries = [e for e in CATALOG.entries if e.id in IDS]
    outcome = ProbeOutcome(obs, raw)
    return HostVerification(
        name, groups, outcome, tuple(host_results(name, groups, entries, outcome))
    )


def judged_doc(tmp_path: Path, waiver_text: str, today: date = TODAY) -> dict[str, Any]:
    found = waivers.load_waivers(write(tmp_path, waiver_text), KNOWN)
    doc = build([recorded("node-1"), recorded("node-2")])
    return document.with_waivers(doc, found, today, when="verify")


def result(doc: dict[str, Any], host: str, control: str) -> dict[str, Any]:
    return next(r for r in doc["results"] if r["host"] == host and r["control_id"] == control)


def test_the_recorded_node_fails_the_controls_the_waivers_name() -> None:
    doc = build([recorded("node-1")])
    statuses = {r["control_id"]: r["status"] for r in doc["results"]}
    assert statuses == {
        "cis_docker_2_2": "fail",
        "cis_docker_2_3": "fail",
        "cis_docker_2_13": "fail",
        "cis_docker_2_12": "fail",
    }


def test_a_waiver_in_force_makes_the_control_waived_and_keeps_what_the_check_said(
    tmp_path: Path,
) -> None:
    plain = build([recorded("node-1")])
    doc = judged_doc(tmp_path, GOOD)
    document.validate(doc)
    waived = result(doc, "node-1", "cis_docker_2_2")
    before = result(plain, "node-1", "cis_docker_2_2")
    assert waived["status"] == "waived"
    assert waived["judged"] == "fail"
    assert {k: waived[k] for k in ("expected", "observed", "evidence")} == {
        k: before[k] for k in ("expected", "observed", "evidence")
    }
    assert waived["waiver"] == {
        "state": "active",
        "source": "waivers.yml:3",
        "controls": ["cis_docker_2_2"],
        "hosts": ["node-1"],
        "reason": "the legacy app talks container to container on the default bridge",
        "owner": "platform-team",
        "ticket": "SEC-1234",
        "url": None,
        "expires": "2026-12-31",
    }
    # the waiver names node-1 only: node-2's icc is judged as the check said
    other = result(doc, "node-2", "cis_docker_2_2")
    assert (other["status"], "waiver" in other) == ("fail", False)


def test_an_expired_waiver_leaves_the_verdict_and_is_shown_beside_it(tmp_path: Path) -> None:
    doc = judged_doc(tmp_path, GOOD)  # entry 2 (2.3 and 2.13 on docker_hosts) expired on 2026-12-01
    for host in ("node-1", "node-2"):
        r = result(doc, host, "cis_docker_2_3")
        assert r["status"] == "fail"
        assert "judged" not in r
        assert r["waiver"]["state"] == "expired"
        assert r["waiver"]["expires"] == "2026-12-01"
    # the day it expires it still holds, and it covers every host of the group
    held = judged_doc(tmp_path, GOOD, date(2026, 12, 1))
    assert {result(held, h, "cis_docker_2_13")["status"] for h in ("node-1", "node-2")} == {
        "waived"
    }


def test_counts_include_waived_and_a_waived_control_never_fails_the_run(tmp_path: Path) -> None:
    only = """\
    waivers:
      - controls: [cis_docker_2_2, cis_docker_2_3, cis_docker_2_13, cis_docker_2_12]
        hosts: ["node-*"]
        reason: a lab node
        owner: me
        ticket: T-1
        expires: 2027-01-01
    """
    plain = build([recorded("node-1")])
    assert document.exit_code(plain) == 1
    doc = document.with_waivers(
        plain, waivers.load_waivers(write(tmp_path, only), KNOWN), TODAY, when="verify"
    )
    document.validate(doc)
    assert doc["summary"]["waived"] == 4
    assert doc["summary"]["fail"] == 0
    assert doc["hosts"][0]["counts"]["waived"] == 4
    assert "pass" not in {r["status"] for r in doc["results"]}  # waived is never pass
    assert document.exit_code(doc) == 0


def test_a_waiver_that_matches_nothing_is_a_warning_saying_why(tmp_path: Path) -> None:
    text = (
        GOOD
        + """\
  - control: cis_docker_5_1
    hosts: [node-1]
    reason: not in this run
    owner: me
    ticket: T-2
    expires: 2027-01-01
  - control: cis_docker_2_12
    hosts: [web-*]
    reason: no such host
    owner: me
    ticket: T-3
    expires: 2027-01-01
"""
    )
    doc = judged_doc(tmp_path, text)
    warnings = doc["waivers"]["warnings"]
    assert warnings == [
        "waivers.yml:15: waiver 3 (cis_docker_5_1) unused: none of its controls is in this run",
        "waivers.yml:21: waiver 4 (cis_docker_2_12) unused: its hosts match no host of this run",
    ]
    assert doc["waivers"]["entries"] == 4


def test_a_not_applicable_control_is_never_waived(tmp_path: Path) -> None:
    text = """\
    waivers:
      - control: cis_docker_2_2
        hosts: ["*"]
        reason: any host
        owner: me
        ticket: T-1
        expires: 2027-01-01
    """
    found = waivers.load_waivers(write(tmp_path, text), KNOWN)
    etcd = recorded("etcd-1", ("etcd",))
    doc = document.with_waivers(build([etcd]), found, TODAY, when="verify")
    r = result(doc, "etcd-1", "cis_docker_2_2")
    assert r["status"] == "not_applicable"
    assert "waiver" not in r
    assert doc["waivers"]["warnings"] == []  # it matched: the control does not concern the host


def test_judging_again_starts_from_what_the_check_said(tmp_path: Path) -> None:
    doc = judged_doc(tmp_path, GOOD)
    empty = waivers.WaiverSet(Path("none.yml"), ())
    again = document.with_waivers(doc, empty, TODAY, when="report")
    assert again["results"] == build([recorded("node-1"), recorded("node-2")])["results"]
    assert again["summary"]["waived"] == 0
    assert again["waivers"]["when"] == "report"


def test_junit_shows_a_waived_control_as_skipped_with_the_waivers_reason(tmp_path: Path) -> None:
    xml = ET.fromstring(junit.render(judged_doc(tmp_path, GOOD)))
    suite = xml.find("testsuite[@name='node-1']")
    assert suite is not None
    case = next(c for c in suite.iter("testcase") if "cis_docker_2_2" in c.get("name", ""))
    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == (
        "waived: the legacy app talks container to container on the default bridge "
        "(owner platform-team, until 2026-12-31, SEC-1234); the check said fail"
    )
    assert suite.get("skipped") == "1"
    expired = next(c for c in suite.iter("testcase") if "cis_docker_2_3" in c.get("name", ""))
    assert expired.find("failure") is not None
    assert "waiver expired 2026-12-01" in (expired.findtext("system-out") or "")


def test_the_table_lists_waived_controls_and_expired_waivers(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    Console(width=200).print(table.render(judged_doc(tmp_path, GOOD)))
    out = capsys.readouterr().out
    assert "waived (not counted as findings)" in out
    assert "platform-team, until 2026-12-31, SEC-1234" in out
    assert "fail (waiver expired 2026-12-01)" in out
    assert "waivers.yml on 2026-12-05 (applied at the run)" in out


# --- harden -------------------------------------------------------------------------------------


def inventory_file(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yml"
    hosts = {"node-1": {}, "node-2": {}}
    path.write_text(yaml.safe_dump({"all": {"children": {"docker_hosts": {"hosts": hosts}}}}))
    return path


def fake_harden(
    monkeypatch: pytest.MonkeyPatch, outcomes: dict[str, HostStats] | None = None
) -> list[dict[str, Any]]:
    played: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> PlaybookOutcome:
        played.append({k: kwargs[k] for k in ("hosts", "tags")})
        stats = {h: (outcomes or {}).get(h, HostStats(ok=1)) for h in kwargs["hosts"]}
        failed = any(s.failed for s in stats.values())
        return PlaybookOutcome("failed" if failed else "successful", 2 if failed else 0, stats)

    monkeypatch.setattr("casemate.harden.run_playbook", fake)
    monkeypatch.setattr("casemate.hostlock.acquire", every_host_free)
    monkeypatch.setattr("casemate.hostlock.release", lambda *a, **k: {})
    return played


def harden(
    tmp_path: Path, *args: str, controls: str = "cis_docker_2_2,cis_docker_2_3"
) -> tuple[int, dict[str, Any]]:
    argv = ["--state-dir", str(tmp_path / "s"), "harden", "-i", str(inventory_file(tmp_path))]
    with pytest.raises(SystemExit) as done:
        cli.main([*argv, "--controls", controls, *args])
    (run,) = (tmp_path / "s" / "runs").glob("*-harden-*")
    return int(done.value.code or 0), json.loads((run / "run.json").read_text())


@pytest.mark.ansible
def test_harden_skips_a_waived_control_on_the_hosts_the_waiver_covers_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    played = fake_harden(monkeypatch)
    code, meta = harden(tmp_path, "--waivers", str(write(tmp_path, GOOD.replace("2026", "2099"))))
    assert code == 0
    # node-1: 2.2 (its own waiver) and 2.3 (the group's) skipped; node-2: 2.3 skipped
    # node-1 is not played at all: every selected control is waived there
    assert played == [{"hosts": ["node-2"], "tags": ["cis_docker_2_2"]}]
    assert meta["waivers"]["waived"] == {
        "node-1": ["cis_docker_2_2", "cis_docker_2_3"],
        "node-2": ["cis_docker_2_3"],
    }
    assert meta["outcome"] == "succeeded"
    out = capsys.readouterr().out
    assert "node-1: waived, not remediated: cis_docker_2_2, cis_docker_2_3" in out


@pytest.mark.ansible
def test_harden_runs_each_group_of_hosts_with_its_own_skipped_tags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    played = fake_harden(monkeypatch)
    text = ENTRY.replace("2026-12-31", "2099-12-31")
    code, meta = harden(tmp_path, "--waivers", str(write(tmp_path, text)))
    assert code == 0
    assert played == [
        {"hosts": ["node-1"], "tags": ["cis_docker_2_3"]},
        {"hosts": ["node-2"], "tags": ["cis_docker_2_2", "cis_docker_2_3"]},
    ]
    assert meta["batches"] == [
        {"hosts": ["node-1"], "left_out": ["cis_docker_2_2"]},
        {"hosts": ["node-2"], "left_out": []},
    ]


@pytest.mark.ansible
def test_a_failed_group_stops_the_groups_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    played = fake_harden(monkeypatch, {"node-1": HostStats(failed=1)})
    text = ENTRY.replace("2026-12-31", "2099-12-31")
    code, meta = harden(tmp_path, "--waivers", str(write(tmp_path, text)))
    assert code == 3
    assert [p["hosts"] for p in played] == [["node-1"]]
    assert meta["not_played"] == {"node-2": "not played: an earlier group failed"}
    assert meta["outcome"] == "failed"
    assert "node-2: not played: an earlier group failed" in capsys.readouterr().out


@pytest.mark.ansible
def test_an_expired_waiver_does_not_keep_harden_from_remediating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    played = fake_harden(monkeypatch)
    code, meta = harden(tmp_path, "--waivers", str(write(tmp_path, ENTRY.replace("2026", "2020"))))
    assert code == 0
    assert played == [{"hosts": ["node-1", "node-2"], "tags": ["cis_docker_2_2", "cis_docker_2_3"]}]
    assert meta["waivers"]["expired"] == {"node-1": ["cis_docker_2_2"]}
    assert "batches" not in meta


@pytest.mark.ansible
def test_a_control_that_shares_a_task_with_a_waived_one_is_held_back_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    played = fake_harden(monkeypatch)
    text = ENTRY.replace("cis_docker_2_2", "cis_docker_3_15").replace("2026", "2099")
    controls = "cis_docker_2_2,cis_docker_3_15,cis_docker_3_16"
    code, meta = harden(tmp_path, "--waivers", str(write(tmp_path, text)), controls=controls)
    assert code == 0
    # one task sets docker.sock's owner and mode (3.15 and 3.16): on node-1 it must not run
    assert played == [
        {"hosts": ["node-1"], "tags": ["cis_docker_2_2"]},
        {"hosts": ["node-2"], "tags": ["cis_docker_2_2", "cis_docker_3_15", "cis_docker_3_16"]},
    ]
    assert meta["waivers"]["waived"] == {"node-1": ["cis_docker_3_15"]}
    assert meta["waivers"]["held_with_waived"] == {"node-1": ["cis_docker_3_16"]}
    out = " ".join(capsys.readouterr().out.split())
    assert "held back with them (they share a task): cis_docker_3_16" in out


def listed_tasks(tmp_path: Path, tags: list[str]) -> list[tuple[str, set[str]]]:
    """(task name, tags) of every task Ansible selects from playbooks/harden.yml for `tags`."""
    inventory = tmp_path / "inventory.yml"
    groups = {g: {"hosts": {f"{g}-1": {}}} for g in ("docker_hosts",)}
    inventory.write_text(yaml.safe_dump({"all": {"children": groups}}))
    env = os.environ | {
        "ANSIBLE_ROLES_PATH": str(content_root() / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
         str(content_root() / "playbooks" / "harden.yml"), "--list-tasks", "--tags", ",".join(tags)],
        capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = []
    for line in done.stdout.splitlines():
        task, sep, found = line.strip().partition("\tTAGS: ")
        if sep and " : " in task:
            out.append((task.split(" : ", 1)[1], set(found.strip("[]").split(", ")) - {""}))
    return out


@pytest.mark.ansible
@pytest.mark.parametrize("waived", ["cis_docker_2_2", "cis_docker_3_15", "cm_rt_3_2"])
def test_no_task_that_fixes_a_waived_control_is_selected_by_ansible(
    tmp_path: Path, waived: str
) -> None:
    """The safety rule against Ansible's own task selection: with the tags harden gives a host
    where `waived` is waived, every task that fixes it or a control held back with it is left
    out; only the roles' shared steps (generated tag lists) still carry their ids."""
    entries = [
        e
        for e in select(CATALOG, Selection(level=2))
        if e.control.remediation is not None and "docker_hosts" in e.control.applies_to
    ]
    selected = {e.id for e in entries}
    held = held_back({waived}, selected, shared_fixes(content_root(), CATALOG))
    tags = [e.id for e in entries if e.id not in held]
    generated = {frozenset(t.ids) for t in tag_lists(content_root(), CATALOG)}
    ran = listed_tasks(tmp_path, tags)
    assert any(t & selected for _, t in ran)  # the other controls still run
    fixing = [name for name, t in ran if t & held and frozenset(t & set(KNOWN)) not in generated]
    assert fixing == []
