"""Runtime isolation on a real node: gVisor registered and proven with a throw-away container,
and the report-only container checks naming real offenders (casemate never touches them)."""

from __future__ import annotations

from pathlib import Path

from .conftest import Lab, harden_stats, report_of, results


def test_gvisor_runs_and_workload_findings_name_the_containers(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[3]
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


def test_seccomp_profile_denies_what_it_blocks(lab: Lab, tmp_path: Path) -> None:
    node = lab.nodes[3]
    inv = str(lab.inventory)
    lab.sh(node, "docker rm -f $(docker ps -aq) >/dev/null 2>&1 || true")
    lab.casemate("harden", "-i", inv, "--limit", node, "--level", "2", check=0)
    lab.casemate("harden", "-i", inv, "--limit", node, "--level", "2", check=0)
    assert harden_stats(lab.state)[node]["changed"] == 0

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
