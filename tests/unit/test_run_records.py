"""Run records hold no secret and only their owner can read them: a real ansible-runner run (local
connection, a stand-in playbook that echoes the inventory's secrets and changes nothing), an
interrupted one, and the modes of the state directory, run directories and reports."""

from __future__ import annotations

import gc
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from casemate import cli, private
from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Status, Verdict
from casemate.harden import HardenPlan, run_harden
from casemate.redact import MARKER
from casemate.report import document
from casemate.rundir import RunDir, find_run, new_run
from casemate.runner import HostEvent, resolve_inventory
from casemate.verify import _evidence

from .test_redact import SECRETS

FIX = Path(__file__).parent.parent / "fixtures"
INVENTORY = FIX / "inventories" / "secrets.yml"
CONTENT = FIX / "secrets_playbook"  # playbooks/harden.yml: debug and fail tasks only
ENV_SECRET = "EnvToken-unit-1717"


def stored_leaks(root: Path) -> dict[str, list[str]]:
    """Every file under `root` that holds a secret value, with the values found."""
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", "replace")
        hits = [s for s in (*SECRETS, ENV_SECRET) if s in text]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def loose_modes(root: Path) -> list[str]:
    """Every directory not 0700 and every file not 0600 under `root` (itself included)."""
    bad = []
    for path in [root, *sorted(root.rglob("*"))]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = private.DIR_MODE if path.is_dir() else private.FILE_MODE
        if not path.is_symlink() and mode != want:
            bad.append(f"{path.relative_to(root.parent)} {mode:o}")
    return bad


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.ansible
def test_harden_run_records_hold_no_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CASEMATE_CONTENT", str(CONTENT))
    monkeypatch.setenv("CASEMATE_UNIT_API_TOKEN", ENV_SECRET)  # ansible-runner records the env
    state = tmp_path / "state"
    with umask(0o022), pytest.raises(SystemExit) as done:
        cli.main(["--state-dir", str(state), "harden", "-i", str(INVENTORY), "--controls", "cis_docker_2_2"])  # fmt: skip
    out, err = capsys.readouterr()
    assert done.value.code == 3, out + err  # the stand-in's last task fails, saying the token
    assert [s for s in SECRETS if s in out + err] == []
    (run,) = (state / "runs").iterdir()
    events = list(run.glob("ansible/artifacts/*/job_events/*.json"))
    assert events, "ansible-runner kept no event"
    assert stored_leaks(state) == {}
    assert loose_modes(state) == []
    for path in [*events, run / "inventory.json", run / "run.json"]:
        json.loads(path.read_text())  # redacted JSON is still JSON
    # the secrets were there and were taken out, not merely never reached
    assert MARKER in (next(run.glob("ansible/artifacts/*/stdout"))).read_text()
    assert "<redacted: secret>" in json.dumps(
        json.loads((run / "run.json").read_text())["messages"]
    )
    command = json.loads(next(run.glob("ansible/artifacts/*/command")).read_text())
    assert command["env"]["CASEMATE_UNIT_API_TOKEN"] == MARKER
    assert not (run / "ansible" / "env").exists()  # no env/ files: extravars, envvars, cmdline


# ansible-runner leaves its stdout and stderr files open when its event handler raises
@pytest.mark.ansible
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_interrupted_harden_is_redacted_too(tmp_path: Path) -> None:
    inventory = resolve_inventory(INVENTORY)
    state = tmp_path / "state"
    run = new_run(state, "harden", inventory.redactor(os.environ))
    seen: list[HostEvent] = []

    def interrupt(event: HostEvent) -> None:  # Ctrl-C once the secrets are in the artifacts
        seen.append(event)
        if event.status == "failed":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_harden(
            run=run,
            content=CONTENT,
            catalog=load_catalog(None, builtin_kinds()),
            inventory=inventory,
            harden_plan=HardenPlan(hosts=["local-1"], tags=[], entries=[]),
            level=1,
            profile="standard",
            check=False,
            diff=False,
            strategy="linear",
            forks=1,
            command=["casemate", "harden"],
            on_event=interrupt,
        )
    gc.collect()  # the handles ansible-runner left open flush now: into nothing that is kept
    assert [e.status for e in seen] == ["ok", "ok", "failed"]
    assert seen[-1].message == f"the API refused token {MARKER}"  # as shown on the console
    assert stored_leaks(state) == {}
    assert loose_modes(state) == []
    assert MARKER in next(run.path.glob("ansible/artifacts/*/stdout")).read_text()


def test_run_dir_private_whatever_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "fresh" / "state"
    with umask(0):
        run = new_run(state, "verify")
        run.write_json("observations/n1.json", {"data": {}})
        run.write_text("junit.xml", "<testsuites/>\n")
    assert loose_modes(state) == []


def test_state_dir_of_casemate_alone_is_tightened_others_keep_their_mode(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    (ours / "runs").mkdir(parents=True)
    ours.chmod(0o755)
    (ours / "runs").chmod(0o755)
    new_run(ours, "harden")
    assert loose_modes(ours) == []  # an older casemate's 0755 state directory is made private
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    (shared / "notes.txt").write_text("not casemate's\n")
    run = new_run(shared, "harden")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # not casemate's to change
    assert loose_modes(shared / "runs") == []
    assert loose_modes(run.path) == []


@pytest.mark.ansible
def test_seal_never_follows_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("BecomePw-unit-4242\n")
    outside.chmod(0o644)
    run = new_run(tmp_path / "state", "harden", resolve_inventory(INVENTORY).redactor())
    artifacts = run.path / "ansible" / "artifacts" / "x"
    artifacts.mkdir(parents=True)
    (artifacts / "link").symlink_to(outside)
    (artifacts / "stdout").write_text("sudo BecomePw-unit-4242\n")
    (artifacts / "stdout").chmod(0o644)
    run.seal()
    assert outside.read_text() == "BecomePw-unit-4242\n"
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert (artifacts / "stdout").read_text() == f"sudo {MARKER}\n"
    assert loose_modes(run.path) == []


def test_report_dir_files_private_and_an_existing_dir_kept(tmp_path: Path) -> None:
    doc = {"schema": "casemate-report/1", "hosts": [], "results": []}
    made = tmp_path / "made" / "reports"
    report, xml = document.write_reports(made, doc)
    assert loose_modes(made) == []
    assert json.loads(report.read_text()) == doc
    existing = tmp_path / "ci-artifacts"
    existing.mkdir()
    existing.chmod(0o755)
    report, xml = document.write_reports(existing, doc)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in (report, xml)} == {0o600}


def test_var_evidence_never_stores_a_secret_variable() -> None:
    obs = Observations(
        "n1",
        vars={
            "ansible_become_password": "BecomePw-unit-4242",
            "allowed_docker_users": ["alice"],
            "site": {"api_token": "ApiToken-unit-7373", "region": "eu"},
        },
    )
    verdict = Verdict(
        Status.PASS,
        "",
        "",
        ("var:ansible_become_password", "var:allowed_docker_users", "var:site"),
    )
    assert _evidence(verdict, obs) == {
        "var:ansible_become_password": MARKER,
        "var:allowed_docker_users": ["alice"],
        "var:site": {"api_token": MARKER, "region": "eu"},
    }


def _stored_run(state: Path, name: str, started: str) -> Path:
    run = RunDir(private.state_dir(state, "runs", name))
    run.write_json("run.json", {"kind": name.split("-")[1], "started": started})
    return run.path


def test_latest_is_the_run_that_started_last_even_within_one_second(tmp_path: Path) -> None:
    """Run ids are stamped to the second and end in a random tail: two runs of one second
    sort by that tail. `latest` is the one that started last, as run.json records it."""
    state = tmp_path / "state"
    second = "20261205T120501Z"
    harden = _stored_run(state, "20261205T120500Z-harden-ffffff", "2026-12-05T12:05:00.9+00:00")
    newer = _stored_run(state, f"{second}-verify-000001", "2026-12-05T12:05:01.700000+00:00")
    _stored_run(state, f"{second}-verify-fffffe", "2026-12-05T12:05:01.200000+00:00")
    _stored_run(state, f"{second}-verify-ffffff", "2026-12-05T12:05:01+00:00")
    assert find_run(state, "latest").path == newer
    assert find_run(state, "latest-verify").path == newer
    assert find_run(state, "latest-harden").path == harden
