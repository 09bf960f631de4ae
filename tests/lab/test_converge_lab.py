"""An interrupted harden converges on the next run: a config file casemate writes but whose service
never restarted or reloaded (the run died in between) is loaded by the next harden, through the
role's usual validation and rollback, and the harden after that changes nothing. Proven on real
services of lab nodes (containerd, sshd, a stand-in kubelet) by building that state directly: the
role's file written, the service left running the old one. And a node that stops in the middle of
a run is never said to have had a config "restored" that nobody wrote."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from .conftest import Lab, harden_stats, lab_name, last_run, open_lab, report_of, results
from .test_k8s_roles_lab import FAKE_KUBELET

# containerd's CRI section as the gvisor role writes it (Debian's runsc has no shim of its own):
# the runsc runtime, and runc beside it, which containerd drops from its defaults once any runtime
# is named
CRI = 'plugins."io.containerd.grpc.v1.cri".containerd'
RUNSC_TABLES = (
    f'[{CRI}.runtimes.runsc]\nruntime_type = "io.containerd.runc.v2"\n'
    f'[{CRI}.runtimes.runsc.options]\nBinaryName = "/usr/bin/runsc"\n'
    f'[{CRI}.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\n'
)
SSH_IDS = ",".join(f"cm_host_1_{n}" for n in range(1, 19))
KUBELET_IDS = ",".join(f"cis_k8s_4_2_{n}" for n in range(1, 15))
DROPIN = "/etc/ssh/sshd_config.d/00-casemate-hardening.conf"
BANNER = "/etc/issue.net"  # sshd_banner_path, which host_baseline writes too (cm_host_4_13)
# what sshd offers a client that tries no method at all: the running sshd's own configuration
OFFERED = (
    "ssh -o BatchMode=yes -o PreferredAuthentications=none -o StrictHostKeyChecking=no "
    "-o UserKnownHostsFile=/dev/null nobody@127.0.0.1 true 2>&1 | tail -n 1"
)


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("converge"), 2) as lab:
        yield lab


@pytest.fixture(scope="module")
def k8s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("convergek"), 1, "--profile", "k8s") as lab:
        yield lab


def main_process(lab: Lab, node: str, unit: str) -> tuple[str, int]:
    """(MainPID, start on the monotonic clock in microseconds) of a unit's main process."""
    out = lab.sh(
        node, f"systemctl show {unit} -p MainPID -p ExecMainStartTimestampMonotonic"
    ).splitlines()
    props = dict(line.split("=", 1) for line in out if "=" in line)
    return props["MainPID"], int(props["ExecMainStartTimestampMonotonic"])


def written_after_start(lab: Lab, node: str, unit: str, path: str) -> bool:
    """Whether `path` was last written after `unit`'s main process started (it has not loaded it)."""
    script = (
        "import os, subprocess, time\n"
        f"out = subprocess.run(['systemctl', 'show', '{unit}', '-p', 'ExecMainStartTimestampMonotonic',"
        " '--value'], capture_output=True, text=True).stdout\n"
        "started = int(out) / 1e6 + time.time() - time.monotonic()\n"
        f"print(os.stat('{path}').st_mtime > started)\n"
    )
    return lab.sh(node, "python3 -", stdin=script).strip() == "True"


def test_containerd_is_restarted_for_a_runtime_written_without_a_restart(bed: Lab) -> None:
    node, inv = bed.nodes[0], str(bed.inventory)
    bed.sh(node, "cat >> /etc/containerd/config.toml", stdin=RUNSC_TABLES)
    assert written_after_start(bed, node, "containerd", "/etc/containerd/config.toml")
    before = main_process(bed, node, "containerd")

    bed.casemate("harden", "-i", inv, "--limit", node, "--controls", "cm_rt_1_3", check=0)
    assert harden_stats(bed.state)[node]["changed"] > 0
    after = main_process(bed, node, "containerd")
    assert after[0] != before[0] and after[1] > before[1], "containerd was not restarted"
    assert not written_after_start(bed, node, "containerd", "/etc/containerd/config.toml")
    # the restarted containerd loaded the runtimes: its CRI plugin came up with them
    plugins = bed.sh(node, "ctr plugins ls")
    assert any(
        line.split()[1:2] == ["cri"] and line.split()[-1] == "ok" for line in plugins.splitlines()
    )
    assert "runsc:{Type:io.containerd.runc.v2" in bed.sh(
        node,
        "journalctl _SYSTEMD_INVOCATION_ID=$(systemctl show -p InvocationID --value containerd) "
        "-o cat --no-pager | grep 'Start cri plugin' || true",
    )
    bed.casemate(
        "verify", "-i", inv, "--limit", node, "--controls", "cm_rt_1_3",
        "--report-dir", str(bed.state / "containerd-verify"), check=0,
    )  # fmt: skip
    assert (
        results(report_of(bed.state / "containerd-verify"), node)["cm_rt_1_3"]["status"] == "pass"
    )

    bed.casemate("harden", "-i", inv, "--limit", node, "--controls", "cm_rt_1_3", check=0)
    assert harden_stats(bed.state)[node]["changed"] == 0
    assert main_process(bed, node, "containerd") == after


def test_sshd_is_reloaded_for_a_dropin_written_without_a_reload(bed: Lab) -> None:
    model, node, inv = bed.nodes[1], bed.nodes[0], str(bed.inventory)
    # the drop-in and banner exactly as the role writes them, taken from a node it hardened
    bed.casemate("harden", "-i", inv, "--limit", model, "--controls", SSH_IDS, check=0)
    dropin, banner = bed.sh(model, f"cat {DROPIN}"), bed.sh(model, f"cat {BANNER}")
    bed.sh(node, f"cat > {BANNER} && chmod 644 {BANNER}", stdin=banner)
    bed.sh(node, f"cat > {DROPIN} && chmod 600 {DROPIN}", stdin=dropin)
    assert bed.sh(node, OFFERED).strip().endswith("(publickey,password).")  # still the old sshd
    pid = main_process(bed, node, "ssh")[0]

    bed.casemate("harden", "-i", inv, "--limit", node, "--controls", SSH_IDS, check=0)
    assert harden_stats(bed.state)[node]["changed"] > 0
    assert bed.sh(node, OFFERED).strip().endswith("(publickey).")  # passwords are refused now
    assert main_process(bed, node, "ssh")[0] == pid  # reloaded, never restarted
    assert bed.sh(node, f"cat {DROPIN}") == dropin  # nothing was rewritten
    # through the commit-confirmed path: a change armed with a rollback, then confirmed
    changes = bed.sh(node, "ls -d /var/backups/casemate/sshd/*/").split()
    assert len(changes) == 1
    assert bed.sh(node, f"cat {changes[0]}decided/by").startswith("confirmed")
    manifest = json.loads(bed.sh(node, f"cat {changes[0]}manifest.json"))
    assert manifest["files"] == [{"path": DROPIN, "existed": False, "current": "0"}]

    bed.casemate("harden", "-i", inv, "--limit", node, "--controls", SSH_IDS, check=0)
    assert harden_stats(bed.state)[node]["changed"] == 0
    assert bed.sh(node, "ls -d /var/backups/casemate/sshd/*/").split() == changes


def test_kubelet_is_restarted_for_settings_written_without_a_restart(k8s: Lab) -> None:
    node, inv = k8s.nodes[0], str(k8s.inventory)
    k8s.sh(
        node,
        "mkdir -p /usr/local/libexec/casemate-test && cat > /usr/local/libexec/casemate-test/kubelet.py",
        stdin=FAKE_KUBELET,
    )
    k8s.sh(
        node,
        "printf '#!/bin/bash\\nexec -a kubelet /usr/bin/python3 /usr/local/libexec/casemate-test/kubelet.py \"$@\"\\n' "
        "> /usr/bin/kubelet && chmod 755 /usr/bin/kubelet",
    )
    # config.yaml as the role writes it (the kubelet stopped, so nothing restarts), then the kubelet
    # started on the previous file and the role's file put back under it: an interrupted run
    k8s.casemate("harden", "-i", inv, "--controls", KUBELET_IDS, check=0)
    config = "/var/lib/kubelet/config.yaml"
    hardened = k8s.sh(node, f"cat {config}")
    backup = k8s.sh(node, "ls /var/backups/casemate/kube_kubelet/config.yaml.*").split()[0]
    k8s.sh(node, f"cat {backup} > {config} && systemctl start kubelet")
    assert kubelet_answers(k8s, node)
    k8s.sh(node, f"cat > {config}", stdin=hardened)
    assert written_after_start(k8s, node, "kubelet", config)
    before = main_process(k8s, node, "kubelet")

    k8s.casemate("harden", "-i", inv, "--controls", KUBELET_IDS, check=0)
    after = main_process(k8s, node, "kubelet")
    assert after[0] not in ("0", before[0]), "the kubelet was not restarted"
    assert not written_after_start(k8s, node, "kubelet", config)
    assert kubelet_answers(k8s, node)  # it came back healthy (the role waited for it)
    assert k8s.sh(node, f"cat {config}") == hardened

    k8s.casemate("harden", "-i", inv, "--controls", KUBELET_IDS, check=0)
    assert harden_stats(k8s.state)[node]["changed"] == 0
    assert main_process(k8s, node, "kubelet") == after
    k8s.sh(node, "systemctl stop kubelet && rm -f /usr/bin/kubelet")


def kubelet_answers(lab: Lab, node: str) -> bool:
    probe = (
        "import time, urllib.request\n"
        "for _ in range(50):\n"
        "    try:\n"
        "        urllib.request.urlopen('http://127.0.0.1:10248/healthz', timeout=2); break\n"
        "    except OSError:\n"
        "        time.sleep(0.2)\n"
        "else:\n"
        "    raise SystemExit(1)\n"
    )
    return lab.sh(node, "python3 - && echo yes", stdin=probe).strip() == "yes"


# The node powers itself off (PID 1 gone: the container stops) the moment the gvisor role has backed
# up containerd's config, right before it would change it: the next task fails (not unreachable),
# so the role's rescue runs, with nothing written to put back.
HALT_PATH = """\
[Path]
PathExistsGlob=/var/backups/casemate/gvisor/config.toml.*
Unit=casemate-test-halt.service
"""
HALT_SERVICE = """\
[Service]
Type=oneshot
ExecStart=/bin/systemctl poweroff --force --force
"""


def test_a_node_that_stops_mid_run_is_never_said_to_be_restored(bed: Lab) -> None:
    node, inv = bed.nodes[1], str(bed.inventory)
    bed.sh(node, "cat > /etc/systemd/system/casemate-test-halt.path", stdin=HALT_PATH)
    bed.sh(node, "cat > /etc/systemd/system/casemate-test-halt.service", stdin=HALT_SERVICE)
    bed.sh(node, "systemctl daemon-reload && systemctl start casemate-test-halt.path")

    # the gvisor role's runtime control is all the run needs to reach that backup (a whole harden
    # ran every role before it on both nodes first: docs/testing.md)
    out = bed.casemate("harden", "-i", inv, "--controls", "cm_rt_1_3", check=3)
    stats = harden_stats(bed.state)
    assert stats[node]["failed"] + stats[node]["unreachable"] > 0
    assert stats[bed.nodes[0]]["failed"] == stats[bed.nodes[0]]["unreachable"] == 0
    said = json.loads((last_run(bed.state, "harden") / "run.json").read_text())["messages"][node]
    said += [line for line in out.stdout.splitlines() if node in line]
    assert said, "the stopped node's failure says nothing"
    for message in said:
        assert "restored" not in message.lower(), message
        assert "rolled back" not in message.lower(), message
    running = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}}", node],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert running.strip() == "false"  # the node really stopped during the run
