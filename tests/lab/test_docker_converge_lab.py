"""docker_daemon on real nodes, when a run does not go the easy way: a daemon.json written but never
applied (a run that died before its restart) is applied by the next run; level 2 keeps the site's
log options consistent with the new log driver; and a write that cannot happen, a candidate
`dockerd --validate` refuses, and a restart dockerd refuses are each reported as what they are,
with only what was done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Lab, harden_stats, lab_name, last_run, open_lab, report_of, results
from .test_docker_lab import UNSPOILABLE, automated

CONFIG = "/etc/docker/daemon.json"
# What a daemon.json written without a restart leaves failing on a fresh Debian 12 node: controls
# whose check also asks the running daemon (docker info, the default bridge).
RUNTIME_JUDGED = ("cis_docker_2_2", "cis_docker_2_15", "cm_rt_1_2")
# ...and a runsc container, which only a daemon that loaded the runtime can start.
RUNSC_STARTS = "cm_rt_1_4"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    # Docker 20.10's own path: no dockerd --validate, so only a restart finds a file dockerd refuses.
    with open_lab(tmp_path_factory, lab_name("dconv"), 3, release="bookworm") as lab:
        yield lab


@pytest.fixture(scope="module")
def trixie(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("dconvt"), 1, release="trixie") as lab:
        yield lab


def main_pid(lab: Lab, node: str) -> str:
    return lab.sh(node, "systemctl show docker -p MainPID --value").strip()


def config_text(lab: Lab, node: str) -> str:
    return lab.sh(node, f"cat {CONFIG} 2>/dev/null || echo ABSENT")


def harden(lab: Lab, node: str, *args: str, inventory: Path | None = None, check: int = 0) -> str:
    inv = str(inventory or lab.inventory)
    done = lab.casemate("harden", "-i", inv, "--limit", node, *args, check=check)
    return done.stdout + done.stderr


def verify_results(lab: Lab, node: str, out: Path, *, level: str = "1") -> dict[str, str]:
    lab.casemate("verify", "-i", str(lab.inventory), "--limit", node, "--level", level,
                 "--report-dir", str(out))  # fmt: skip
    return {cid: str(r["status"]) for cid, r in results(report_of(out), node).items()}


def failure(lab: Lab, node: str) -> str:
    """The message the last harden run stored for a failed host (what the CLI shows, unwrapped)."""
    meta = json.loads((last_run(lab.state, "harden") / "run.json").read_text())
    messages: list[str] = meta["messages"][node]
    return messages[-1]


def event_messages(lab: Lab) -> list[str]:
    """The messages of the last harden run's task results (debug notes and failures)."""
    messages = []
    files = sorted(
        (last_run(lab.state, "harden") / "ansible" / "artifacts").glob("*/job_events/*.json")
    )
    for path in files:
        res = json.loads(path.read_text()).get("event_data", {}).get("res", {})
        if isinstance(res, dict) and isinstance(res.get("msg"), str):
            messages.append(res["msg"])
    return messages


def test_a_daemon_json_written_but_never_applied_is_applied_by_the_next_run(
    bed: Lab, tmp_path: Path
) -> None:
    node = bed.nodes[0]
    harden(bed, node)
    hardened = bed.sh(node, f"cat {CONFIG}")
    # What an interrupted harden leaves: the role's own daemon.json, and dockerd never restarted
    # with it. Here dockerd is restarted without any daemon.json first, then the hardened file is
    # put back. (The file came from a second node, hardened for it alone: docs/testing.md.)
    bed.sh(node, f"mv {CONFIG} /root/daemon.json.hardened && systemctl restart docker"
           " && docker version >/dev/null && rm /root/daemon.json.hardened")  # fmt: skip
    pid = main_pid(bed, node)
    bed.sh(node, f"cat > {CONFIG}", stdin=hardened)
    assert main_pid(bed, node) == pid
    before = verify_results(bed, node, tmp_path / "before")
    assert {c: before[c] for c in RUNTIME_JUDGED} == dict.fromkeys(RUNTIME_JUDGED, "fail")

    harden(bed, node)
    assert main_pid(bed, node) != pid, "dockerd still runs the configuration it had before"
    assert bed.sh(node, f"cat {CONFIG}") == hardened
    why = [m for m in event_messages(bed) if "dockerd is restarted" in m]
    assert why, "the run does not say why it restarted dockerd"
    assert (
        "reports other values than daemon.json for icc (daemon.json: false, running: true)"
        in why[0]
    )
    after = verify_results(bed, node, tmp_path / "after")
    judged = (*RUNTIME_JUDGED, RUNSC_STARTS)
    assert {c: after[c] for c in judged} == dict.fromkeys(judged, "pass")

    pid = main_pid(bed, node)
    harden(bed, node)
    assert harden_stats(bed.state)[node]["changed"] == 0
    assert main_pid(bed, node) == pid


def test_level_2_drops_the_json_file_log_options_journald_does_not_accept(
    bed: Lab, tmp_path: Path
) -> None:
    node = bed.nodes[1]
    site = {"log-opts": {"max-size": "10m", "max-file": "3"}, "labels": ["team=logs"]}
    bed.sh(node, f"mkdir -p /etc/docker && cat > {CONFIG} && systemctl restart docker",
           stdin=json.dumps(site, indent=2))  # fmt: skip
    drifted = config_text(bed, node)

    # the one control that sets the log driver (a whole level 2 run proved no more here: the site's
    # other keys surviving a whole level 2 harden is test_docker_lab's drifted node)
    only = ("--level", "2", "--controls", "cis_docker_2_13")
    dry = harden(bed, node, *only, "--check", "--diff")
    assert '-    "max-size": "10m"' in dry  # the diff shows them going
    said = [m for m in event_messages(bed) if "log-opts max-file, max-size" in m]
    assert said, "the dry run does not name the log options it would drop"
    assert "written for the json-file log driver and journald does not accept them" in said[0]
    assert config_text(bed, node) == drifted

    harden(bed, node, *only)
    written = bed.daemon_json(node)
    assert written["log-driver"] == "journald"
    assert "log-opts" not in written
    assert written["labels"] == ["team=logs"]
    running = bed.sh(node, "docker info --format '{{.LoggingDriver}}'").strip()
    assert running == "journald"
    dropped = [m for m in event_messages(bed) if "log-opts max-file, max-size" in m]
    assert dropped, "the run record does not name the dropped log options"
    assert "dropped from daemon.json (no log option is left)" in dropped[0]
    assert verify_results(bed, node, tmp_path / "v", level="2")["cis_docker_2_13"] == "pass"


def test_a_daemon_json_that_cannot_be_written_fails_as_such_and_nothing_restarts(
    bed: Lab,
) -> None:
    node = bed.nodes[2]
    bed.sh(node, f"mkdir -p /etc/docker && cat > {CONFIG} && systemctl restart docker",
           stdin='{"labels": ["team=ro"]}\n')  # fmt: skip
    pid, before = main_pid(bed, node), config_text(bed, node)
    bed.sh(node, f"mount --bind {CONFIG} {CONFIG} && mount -o remount,bind,ro {CONFIG}")
    try:
        out = harden(bed, node, "--controls", "cis_docker_2_2", check=3)
        said = failure(bed, node)
        assert said.startswith(
            f"Fail loudly for this host: could not write daemon.json at {CONFIG}: "
        )
        assert said.endswith("; nothing else was changed, dockerd was not restarted")
        assert "could not write daemon.json" in " ".join(out.split())
        assert "rolled back" not in out
        assert main_pid(bed, node) == pid
        assert config_text(bed, node) == before
    finally:
        bed.sh(node, f"umount {CONFIG}")


def test_a_restart_dockerd_refuses_is_rolled_back_with_dockerds_own_error(
    bed: Lab, tmp_path: Path
) -> None:
    node = bed.nodes[2]
    bed.sh(node, f"mkdir -p /etc/docker && cat > {CONFIG} && systemctl restart docker",
           stdin='{"labels": ["team=rb"]}\n')  # fmt: skip
    before = config_text(bed, node)
    inv = bed.inventory_with(
        tmp_path / "inv.yml", {node: {"docker_daemon_log_opts": {"max-size": "10m"}}}
    )
    # The site's own log options win, and journald refuses max-size at start: Docker 20.10 has no
    # dockerd --validate, so only the restart shows it.
    out = harden(bed, node, "--level", "2", "--controls", "cis_docker_2_13", inventory=inv, check=3)
    said = failure(bed, node)
    assert "rolled back: dockerd did not come back with the new daemon.json" in said
    assert "was restored and dockerd restarted with it" in said
    assert said.endswith(
        "dockerd's error: failed to start daemon: failed to set log opts: "
        "unknown log opt 'max-size' for journald log driver"
    )
    assert "rolled back: dockerd did not come back" in " ".join(out.split())
    assert bed.sh(node, "systemctl is-active docker").strip() == "active"
    assert config_text(bed, node) == before


def test_a_left_daemon_json_dockerd_refuses_is_rolled_back_to_the_one_it_ran(bed: Lab) -> None:
    node = bed.nodes[1]
    ran = '{"icc": false, "labels": ["team=before"]}\n'
    bed.sh(node, f"mkdir -p /etc/docker && cat > {CONFIG} && systemctl restart docker", stdin=ran)
    # An interrupted run: casemate's copy of the file dockerd runs with (the copy keeps its mtime),
    # then a new file dockerd will refuse at start, and no restart.
    backups = "/var/backups/casemate/docker_daemon"
    bed.sh(
        node,
        f"mkdir -p -m 0700 {backups} && cp -p {CONFIG} {backups}/daemon.json.$(date -u +%Y%m%dT%H%M%SZ)",
    )
    left = '{"icc": false, "labels": ["team=before"], "bip": "not-an-ip"}\n'
    bed.sh(node, f"cat > {CONFIG}", stdin=left)

    harden(bed, node, "--controls", "cis_docker_2_2", check=3)  # nothing to write: icc is false
    said = failure(bed, node)
    assert (
        "rolled back: dockerd did not come back with daemon.json as found (daemon.json is not in effect"
        in said
    )
    assert f"casemate's copy of the daemon.json it ran with ({backups}/daemon.json." in said
    assert (
        f"was restored and dockerd restarted with it, and the refused file is kept at {backups}/"
        in said
    )
    assert said.endswith(
        "dockerd's error: failed to start daemon: Error initializing network controller: "
        "invalid CIDR address: not-an-ip"
    )
    assert bed.sh(node, f"cat {CONFIG}") == ran
    assert bed.sh(node, "systemctl is-active docker").strip() == "active"
    assert "not-an-ip" in bed.sh(node, f"cat {said.rsplit(' is kept at ', 1)[1].split(';')[0]}")


def test_docker_26_validates_the_candidate_and_converges(trixie: Lab, tmp_path: Path) -> None:
    node = trixie.nodes[0]
    harden(trixie, node)
    pid = main_pid(trixie, node)
    harden(trixie, node)
    assert harden_stats(trixie.state)[node]["changed"] == 0, "a pending restart that never ends"
    assert main_pid(trixie, node) == pid
    # The hardened Debian 13 node verifies clean: every automated control of every benchmark it is
    # in passes, or says why it does not concern it or cannot be seen from a container.
    trixie.casemate("verify", "-i", str(trixie.inventory), "--limit", node,
                    "--report-dir", str(tmp_path / "v"))  # fmt: skip
    found = results(report_of(tmp_path / "v"), node)
    left = {
        c: (r["status"], r["observed"])
        for c, r in found.items()
        if r["automated"] and r["status"] not in ("pass", "not_applicable", "not_verifiable")
    }
    assert left == {}
    assert found["cis_docker_2_2"]["status"] == "pass"
    assert found["cm_host_1_1"]["status"] == "pass"  # sshd -T of OpenSSH 10 is read

    before = config_text(trixie, node)
    inv = trixie.inventory_with(
        tmp_path / "inv.yml", {node: {"docker_daemon_extra_settings": {"no-such-key": 1}}}
    )
    harden(trixie, node, "--controls", "cis_docker_2_2", inventory=inv, check=3)
    said = failure(trixie, node)
    assert "dockerd --validate refused the new daemon.json (changed keys: no-such-key)" in said
    assert "the following directives don't match any configuration option: no-such-key" in said
    assert said.endswith("; nothing was changed, dockerd was not restarted")
    assert main_pid(trixie, node) == pid
    assert config_text(trixie, node) == before


def test_a_drifted_docker_26_node_fails_every_control_then_recovers(
    trixie: Lab, tmp_path: Path
) -> None:
    """What test_docker_lab shows on Docker 20.10, on Docker 26: a node drifted by spoil_docker.sh
    fails every automated daemon and file control, and level 2 brings it back. Docker 26 also runs
    with a daemon-wide "unconfined" seccomp profile, which 20.10 refuses to start with: here
    cis_docker_2_17 is shown failing on a real node too."""
    node = trixie.nodes[0]
    trixie.spoil(node)
    trixie.sh(node, f"jq '.[\"seccomp-profile\"] = \"unconfined\"' {CONFIG} > /root/d.json"
              f" && cat /root/d.json > {CONFIG} && rm /root/d.json && systemctl restart docker"
              " && docker version >/dev/null")  # fmt: skip
    unspoilable = UNSPOILABLE - {"cis_docker_2_17"}

    bad = docker_results(trixie, node, tmp_path / "bad", check=1)
    assert {c: s for c, s in bad.items() if s != "fail" and c not in unspoilable} == {}
    assert bad["cis_docker_2_17"] == "fail"

    trixie.casemate("harden", "-i", str(trixie.inventory), "--limit", node, "--level", "2", check=0)
    trixie.casemate("harden", "-i", str(trixie.inventory), "--limit", node, "--level", "2", check=0)
    assert harden_stats(trixie.state)[node]["changed"] == 0
    good = docker_results(trixie, node, tmp_path / "good", check=1)
    # Docker ships no authorization plugin: 2.12 stays failing until a site installs one.
    assert {c: s for c, s in good.items() if s not in ("pass", "not_applicable")} == {
        "cis_docker_2_12": "fail"
    }
    assert trixie.daemon_json(node)["labels"] == ["team=blue"]  # the site's own key survived


def docker_results(lab: Lab, node: str, out: Path, *, check: int) -> dict[str, str]:
    """Level 2 statuses of the automated CIS Docker section 2 and 3 controls of a node."""
    lab.casemate("verify", "-i", str(lab.inventory), "--limit", node, "--level", "2",
                 "--report-dir", str(out), check=check)  # fmt: skip
    return {c: str(r["status"]) for c, r in automated(report_of(out), node).items()}
