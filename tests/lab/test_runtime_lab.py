"""Runtime isolation on a real node: gVisor registered and proven with a throw-away container,
and the report-only container checks naming real offenders (casemate never touches them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Lab, harden_stats, lab_name, last_run, open_lab, report_of, results


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One fresh node of this module's own. (It used the fourth node of the session's four-node
    lab, which `test_docker_lab.py` uses too: on any other pytest-xdist worker than that module's,
    that booted four nodes for the one this module needs, and on the same worker it ran on a node
    that module had changed.)"""
    with open_lab(tmp_path_factory, lab_name("runtime"), 1) as bed:
        yield bed


def test_gvisor_runs_and_workload_findings_name_the_containers(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[0]
    inv = str(lab.inventory)
    lab.casemate("harden", "-i", inv, "--limit", node, check=0)
    lab.casemate("harden", "-i", inv, "--limit", node, check=0)
    assert harden_stats(lab.state)[node]["changed"] == 0

    lab.casemate(
        "verify", "-i", inv, "--limit", node, "--report-dir", str(tmp_path / "clean"), check=0
    )
    clean = results(report_of(tmp_path / "clean"), node)
    assert {
        c: clean[c]["status"] for c in ("cm_rt_1_1", "cm_rt_1_2", "cm_rt_1_3", "cm_rt_1_4")
    } == {
        "cm_rt_1_1": "pass",
        "cm_rt_1_2": "pass",
        "cm_rt_1_3": "pass",
        "cm_rt_1_4": "pass",
    }
    assert "Starting gVisor" in str(clean["cm_rt_1_4"]["observed"])
    assert clean["cis_docker_5_5"]["status"] == "not_applicable"  # nothing runs yet

    # Two workloads a platform team would not want: a privileged container (runnable here only
    # under gVisor: this host cannot grant runc all capabilities) and one with the Docker socket.
    lab.sh(
        node,
        "docker run -d --pull never --name wild --runtime runsc --privileged casemate-probe:busybox sleep 600",
    )
    lab.sh(
        node,
        "docker run -d --pull never --name sockpuppet -v /var/run/docker.sock:/var/run/docker.sock casemate-probe:busybox sleep 600",
    )
    lab.sh(
        node,
        "docker run -d --pull never --name open --security-opt seccomp=unconfined casemate-probe:busybox sleep 600",
    )
    before = lab.sh(node, "docker ps -q --no-trunc | sort")

    lab.casemate(
        "verify", "-i", inv, "--limit", node, "--report-dir", str(tmp_path / "busy"), check=1
    )
    busy = results(report_of(tmp_path / "busy"), node)
    assert busy["cis_docker_5_5"]["status"] == "fail"
    assert "wild privileged=true" in str(busy["cis_docker_5_5"]["observed"])
    assert busy["cis_docker_5_32"]["status"] == "fail"
    assert "sockpuppet mounts the Docker socket" in str(busy["cis_docker_5_32"]["observed"])
    assert "wild" not in str(busy["cis_docker_5_32"]["observed"])
    assert busy["cis_docker_5_22"]["status"] == "fail"
    assert "open runs without seccomp" in str(busy["cis_docker_5_22"]["observed"])
    assert busy["cis_docker_5_5"]["mode"] == "report-only"
    assert lab.sh(node, "docker ps -q --no-trunc | sort") == before  # verify changed no workload


PROBE = (
    "docker run --rm --pull never --network none --disable-content-trust {opt} -v /usr:/usr:ro -v /lib:/lib:ro "
    "-v /lib64:/lib64:ro casemate-probe:busybox /usr/bin/python3 "
    "/usr/local/lib/casemate/syscall_probe.py syncfs io_uring_setup ptrace"
)


@pytest.fixture(scope="module")
def level_2(lab: Lab) -> Lab:
    """The module's node, hardened at level 1 by the first test when it ran, now hardened at level
    2 with no workload left running (the first test's), once for the two tests that judge it
    there: a second level 2 harden changes nothing. (The first of the two ran that pair itself and
    the second one more level 2 harden, which changed nothing after the pair: docs/testing.md.)"""
    node = lab.nodes[0]
    inv = str(lab.inventory)
    lab.sh(node, "docker rm -f $(docker ps -aq) >/dev/null 2>&1 || true")
    lab.casemate("harden", "-i", inv, "--limit", node, "--level", "2", check=0)
    lab.casemate("harden", "-i", inv, "--limit", node, "--level", "2", check=0)
    assert harden_stats(lab.state)[node]["changed"] == 0
    return lab


def test_seccomp_profile_denies_what_it_blocks(level_2: Lab, tmp_path: Path) -> None:
    lab = level_2
    node = lab.nodes[0]
    inv = str(lab.inventory)

    # Expected failures at level 2, each a decision only the site can make: Docker 20.10 has no
    # authorization plugin to offer (2.12), and who may log in over SSH (cm_host_1_18, AllowGroups)
    # is not casemate's to guess
    lab.casemate(
        "verify", "-i", inv, "--limit", node, "--level", "2", "--report-dir", str(tmp_path), check=1
    )
    got = results(report_of(tmp_path), node)
    seccomp = {
        c: got[c]["status"]
        for c in ("cm_rt_2_1", "cm_rt_2_2", "cm_rt_2_3", "cm_rt_2_4", "cis_docker_2_17")
    }
    assert set(seccomp.values()) == {"pass"}, seccomp
    assert got["cm_rt_2_4"]["observed"].endswith(
        "syncfs=denied io_uring_setup=denied ptrace=denied"
    )
    failing = {c for c, r in got.items() if r["status"] in ("fail", "error")}
    assert failing == {"cis_docker_2_12", "cm_host_1_18"}
    # AppArmor: the profile is installed and parses, but a container cannot prove enforcement
    apparmor = {c: got[c]["status"] for c in ("cm_rt_3_1", "cm_rt_3_2", "cm_rt_3_3")}
    assert apparmor == {"cm_rt_3_1": "pass", "cm_rt_3_2": "pass", "cm_rt_3_3": "not_verifiable"}
    assert "container" in got["cm_rt_3_3"]["observed"]
    assert not [
        c for c, r in got.items() if r["status"] == "pass" and "AppArmor belongs" in r["observed"]
    ]

    # the same probe without seccomp: every call goes through, so the denials above are the profile's
    assert lab.sh(node, PROBE.format(opt="--security-opt seccomp=unconfined")).split() == [
        "syncfs=allowed",
        "io_uring_setup=allowed",
        "ptrace=allowed",
    ]


def proofs_seen(directory: Path, node: str) -> dict[str, tuple[str, bool, str]]:
    """(status, whether the proof was a kept one, why it ran) of the seccomp proofs."""
    report = report_of(directory)
    (host,) = [h for h in report["hosts"] if h["name"] == node]
    got = results(report, node)
    seen = {}
    for c in ("cm_rt_2_3", "cm_rt_2_4"):
        (key,) = [k for k in got[c]["evidence"] if k.startswith("proof:")]
        obs = host["observations"][key]
        seen[c] = (got[c]["status"], obs["cached"], obs.get("why", ""))
    return seen


def test_a_kept_proof_gives_way_when_the_seccomp_setting_changes(
    level_2: Lab, tmp_path: Path
) -> None:
    lab = level_2
    node = lab.nodes[0]
    inv = str(lab.inventory)

    def check(name: str, *more: str, code: int = 0) -> dict[str, tuple[str, bool, str]]:
        lab.casemate(
            "verify", "-i", inv, "--limit", node, "--level", "2",
            "--controls", "cm_rt_2_3,cm_rt_2_4", "--report-dir", str(tmp_path / name), *more,
            check=code,
        )  # fmt: skip
        return proofs_seen(tmp_path / name, node)

    check("first")
    kept = check("kept")
    assert kept == dict.fromkeys(("cm_rt_2_3", "cm_rt_2_4"), ("pass", True, ""))
    kept_in = lab.sh(node, "stat -c '%U %a' /var/cache/casemate /var/cache/casemate/proofs")
    assert kept_in.split("\n")[:2] == ["root 700", "root 700"]

    # the daemon now gives containers a profile that allows every call (dockerd 20.10 has no
    # daemon-wide "unconfined"): the kept passes must not be reused, and 2.4 fails
    spoil = (
        "cp /etc/docker/daemon.json /root/daemon.json.good"
        ' && printf \'{"defaultAction": "SCMP_ACT_ALLOW"}\' > /etc/docker/seccomp/allow.json'
        ' && jq \'.["seccomp-profile"] = "/etc/docker/seccomp/allow.json"\''
        " /etc/docker/daemon.json > /root/d.json"
        " && cat /root/d.json > /etc/docker/daemon.json && systemctl restart docker"
    )
    lab.sh(node, spoil)
    spoiled = check("spoiled", code=1)
    assert {c: s[:2] for c, s in spoiled.items()} == {
        "cm_rt_2_3": ("pass", False),  # a filter is still applied: Seccomp 2
        "cm_rt_2_4": ("fail", False),
    }
    assert all("dockerd" in why and "files" in why for _, _, why in spoiled.values()), spoiled
    # a failing proof is never kept (and drops the pass it had): it runs again, and fails again
    again = check("again", code=1)
    assert again["cm_rt_2_4"] == ("fail", False, "no kept proof")
    assert again["cm_rt_2_3"] == ("pass", True, "")

    lab.sh(node, "cat /root/daemon.json.good > /etc/docker/daemon.json && systemctl restart docker")
    assert {c: s[:2] for c, s in check("restored").items()} == dict.fromkeys(
        ("cm_rt_2_3", "cm_rt_2_4"), ("pass", False)
    )
    fresh = check("fresh", "--fresh-proofs")
    assert fresh == dict.fromkeys(fresh, ("pass", False, "fresh proofs were asked for"))
    assert json.loads((last_run(lab.state, "verify") / "run.json").read_text())["fresh_proofs"]
    assert check("kept again") == dict.fromkeys(fresh, ("pass", True, ""))
