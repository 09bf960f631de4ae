"""The Kubernetes roles (etcd, kube_control_plane, kube_kubelet, kube_policies) and CIS Kubernetes
1.12's verdicts on a real kubeadm v1.32 lab node (`lab up --profile k8s`: the kubeadm layout on disk,
a real etcd run from its static pod manifest by the lab's kubelet stand-in, no API server or kubelet
process).

In file order, on one node (each harden of a fresh k8s node costs a minute, so one node carries
both the roles' proofs and the verdicts'): the fresh node fails exactly the automated controls
kubeadm's defaults fail; a dry run on it changes nothing; hardening at level 2 keeps every
manifest valid and every kubeadm flag casemate does not own, adds casemate's, and leaves etcd
healthy and closed to clients without a certificate; a second run changes nothing and keeps the
encryption key, which no output, run record or report ever shows; then every automated control
passes (or is not applicable / not verifiable, with the reason); a node drifted back to weak
settings fails again and one harden brings it back; a broken etcd flag is rolled back; the kubelet
is restarted once, then rolled back when it fails."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Lab, harden_stats, lab_name, last_run, open_lab, report_of, results

MANIFESTS = "/etc/kubernetes/manifests"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
KEY_FILE = "/etc/kubernetes/encryption/encryption-config.yaml"
# what a dry run or a hardening may touch, listed with mode, owner, size and mtime
TREES = "/etc/kubernetes /var/lib/kubelet /var/lib/etcd /usr/lib/systemd/system/kubelet.service.d /etc/default/kubelet"
ETCDCTL = (
    "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
    "--command-timeout=5s"
)
CLIENT_CERT = (
    "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt "
    "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key"
)
# flags of kubeadm's manifests that casemate merges into (their items may only grow)
MERGED = {"--enable-admission-plugins", "--authorization-mode"}
DROPIN = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
# The level every harden and verify below runs at (but the first dry run and the two rollback
# tests, which run the default level or one control): level 2 changes everything level 1 does.
LEVEL = ("--level", "2")

# What kubeadm v1.32 leaves failing (shared/reference/kubeadm-1.32-defaults.md, "CIS-relevant flags
# kubeadm does not set" and the kubelet keys it leaves out), among casemate's automated controls.
KUBEADM_FAILS = {
    "cis_k8s_1_1_12",  # /var/lib/etcd root:root, no etcd account
    "cis_k8s_1_2_1",  # --anonymous-auth defaults to true (check-only: see the catalog)
    "cis_k8s_1_2_3", "cis_k8s_1_2_5", "cis_k8s_1_2_9", "cis_k8s_1_2_11", "cis_k8s_1_2_15",
    "cis_k8s_1_2_16", "cis_k8s_1_2_17", "cis_k8s_1_2_18", "cis_k8s_1_2_19", "cis_k8s_1_2_27",
    "cis_k8s_1_2_28", "cis_k8s_1_2_29", "cis_k8s_1_2_30",
    "cis_k8s_1_3_1", "cis_k8s_1_3_2", "cis_k8s_1_4_1",
    "cis_k8s_3_2_1",
    "cis_k8s_4_1_1",  # kubelet.service and 10-kubeadm.conf are 0644
    "cis_k8s_4_1_9",  # config.yaml is 0644
    "cis_k8s_4_2_12", "cis_k8s_4_2_13", "cis_k8s_4_2_14",
}  # fmt: skip
# Not applicable on this node: no CNI is installed, kube-proxy keeps its kubeconfig in a ConfigMap.
NOT_APPLICABLE = {"cis_k8s_1_1_9", "cis_k8s_1_1_10", "cis_k8s_4_1_3", "cis_k8s_4_1_4"}
# kube-proxy runs as a DaemonSet pod; no such process exists in the lab.
NOT_VERIFIABLE = {"cis_k8s_4_3_1"}
# Check-only controls that hardening leaves as they are, with the reason in the catalog.
STAYS_FAILING = {"cis_k8s_1_2_1"}
# What a hardened node leaves not passing, control by control.
HARDENED = (
    dict.fromkeys(NOT_APPLICABLE, "not_applicable")
    | dict.fromkeys(NOT_VERIFIABLE, "not_verifiable")
    | dict.fromkeys(STAYS_FAILING, "fail")
)


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("k8sroles"), 1, "--profile", "k8s") as lab:
        yield lab


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's verify reports, one directory each: later tests read earlier ones."""
    return tmp_path_factory.mktemp("k8s-reports")


@pytest.fixture(scope="module")
def fresh(bed: Lab) -> dict[str, Any]:
    """The fresh node's manifests, read before any test changes them."""
    return {c: manifest(bed, c) for c in COMPONENTS}


def node(bed: Lab) -> str:
    return bed.nodes[0]


def run(bed: Lab, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "exec", node(bed), "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
    )


def manifest(bed: Lab, component: str) -> Any:
    return yaml.safe_load(bed.sh(node(bed), f"cat {MANIFESTS}/{component}.yaml"))


def flags(doc: Any) -> dict[str, str]:
    return dict(a.partition("=")[::2] for a in doc["spec"]["containers"][0]["command"][1:])


def tree_state(bed: Lab) -> str:
    return bed.sh(
        node(bed), f"find {TREES} -xdev -printf '%p %m %u:%g %s %T@\\n' 2>/dev/null | sort"
    )


def etcd_pid(bed: Lab) -> str:
    return bed.sh(node(bed), "pgrep -x etcd || true").strip()


def assert_etcd_healthy_and_closed(bed: Lab) -> None:
    ok = run(bed, f"{ETCDCTL} {CLIENT_CERT} endpoint health")
    assert ok.returncode == 0 and "is healthy" in ok.stdout + ok.stderr, ok.stdout + ok.stderr
    refused = run(bed, f"{ETCDCTL} endpoint health")
    assert refused.returncode != 0, "etcd answered a client without a certificate"


def key(bed: Lab) -> str:
    found = bed.sh(node(bed), f"sed -n 's/^ *secret: //p' {KEY_FILE}").split()
    assert len(found) == 1 and len(found[0]) == 44, "one base64 32-byte key"
    return found[0]


def shows(directory: Path, secret: str) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def verify(bed: Lab, out: Path) -> dict[str, dict[str, Any]]:
    """The node's automated CIS Kubernetes verdicts at level 2 (exit 1: 1.2.1 always fails)."""
    bed.casemate("verify", "-i", str(bed.inventory), *LEVEL, "--report-dir", str(out), check=1)
    return {
        c: r
        for c, r in results(report_of(out), node(bed)).items()
        if r["benchmark"] == "cis-kubernetes" and r["automated"]
    }


def test_a_fresh_node_fails_exactly_what_kubeadm_leaves_failing(bed: Lab, reports: Path) -> None:
    fresh = verify(bed, reports / "fresh")
    failing = {c for c, r in fresh.items() if r["status"] == "fail"}
    assert failing == KUBEADM_FAILS
    assert {c for c, r in fresh.items() if r["status"] == "not_applicable"} == NOT_APPLICABLE
    assert {c for c, r in fresh.items() if r["status"] == "not_verifiable"} == NOT_VERIFIABLE
    assert {c for c, r in fresh.items() if r["status"] == "error"} == set()
    # the live etcd already refuses a client without a certificate (kubeadm sets client-cert-auth)
    assert fresh["cis_k8s_2_2"]["status"] == "pass"
    assert "refused" in fresh["cis_k8s_2_2"]["observed"]


def test_check_mode_on_a_fresh_node_changes_nothing(bed: Lab, fresh: dict[str, Any]) -> None:
    before = tree_state(bed)
    dry = bed.casemate("harden", "-i", str(bed.inventory), "--check", "--diff", check=0)
    assert harden_stats(bed.state)[node(bed)]["changed"] > 0
    assert "--profiling=false" in dry.stdout  # the diff shows the manifest that would be written
    assert tree_state(bed) == before
    assert run(bed, f"test -e {KEY_FILE}").returncode != 0  # no key is made in a dry run


def test_harden_keeps_kubeadm_flags_and_adds_ours(bed: Lab, fresh: dict[str, Any]) -> None:
    pid = etcd_pid(bed)
    bed.casemate("harden", "-i", str(bed.inventory), *LEVEL, check=0)
    assert harden_stats(bed.state)[node(bed)]["changed"] > 0
    after = {c: manifest(bed, c) for c in COMPONENTS}
    for component, doc in after.items():
        assert doc["kind"] == "Pod" and doc["apiVersion"] == "v1", component
        volumes = {v["name"] for v in doc["spec"].get("volumes") or []}
        mounts = doc["spec"]["containers"][0].get("volumeMounts") or []
        assert {m["name"] for m in mounts} <= volumes, component
        assert len({m["mountPath"] for m in mounts}) == len(mounts), component
        old, new = flags(fresh[component]), flags(doc)
        for name, value in old.items():
            if name in MERGED:
                assert set(value.split(",")) <= set(new[name].split(",")), (component, name)
            else:
                assert new.get(name) == value, (component, name)  # kubeadm's flag is untouched
    api = flags(after["kube-apiserver"])
    for name, value in {
        "--profiling": "false",
        "--audit-log-path": "/var/log/kubernetes/audit/audit.log",
        "--audit-policy-file": "/etc/kubernetes/casemate/audit-policy.yaml",
        "--admission-control-config-file": "/etc/kubernetes/casemate/admission-config.yaml",
        "--encryption-provider-config": KEY_FILE,
        "--kubelet-certificate-authority": "/etc/kubernetes/pki/ca.crt",
        "--service-account-extend-token-expiration": "false",
        "--service-account-lookup": "true",
        "--request-timeout": "300s",
    }.items():
        assert api[name] == value, name
    assert int(api["--audit-log-maxage"]) >= 30 and int(api["--audit-log-maxbackup"]) >= 10
    assert {
        "NodeRestriction",
        "EventRateLimit",
        "AlwaysPullImages",
        "DenyServiceExternalIPs",
    } <= set(api["--enable-admission-plugins"].split(","))
    assert "--anonymous-auth" not in api  # 1.2.1 stays check-only: kubeadm's probes are anonymous
    cm = flags(after["kube-controller-manager"])
    assert (
        cm["--profiling"] == "false"
        and "RotateKubeletServerCertificate=true" in cm["--feature-gates"]
    )
    assert flags(after["kube-scheduler"])["--profiling"] == "false"
    # the files the API server reads are mounted into its pod
    mounted = {
        m["mountPath"] for m in after["kube-apiserver"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert {
        "/etc/kubernetes/casemate",
        "/etc/kubernetes/encryption",
        "/var/log/kubernetes/audit",
    } <= mounted
    # backups live outside the manifest directory, which holds only the four manifests
    listing = bed.sh(node(bed), f"ls -A {MANIFESTS}").split()
    assert sorted(x for x in listing if not x.startswith(".")) == sorted(
        f"{c}.yaml" for c in COMPONENTS
    )
    assert bed.sh(node(bed), "ls /var/backups/casemate/kube_control_plane").split()
    assert bed.sh(node(bed), "stat -c '%U:%G %a' /var/lib/etcd").strip() == "etcd:etcd 700"
    config = yaml.safe_load(bed.sh(node(bed), "cat /var/lib/kubelet/config.yaml"))
    assert config["readOnlyPort"] == 0 and config["serverTLSBootstrap"] is True
    assert config["cgroupDriver"] == "systemd"  # a kubeadm key casemate does not own
    assert "protectKernelDefaults" not in config  # a container's kernel settings are the machine's
    # etcd's manifest was already compliant: it was not rewritten, and etcd kept running
    assert after["etcd"] == fresh["etcd"]
    assert etcd_pid(bed) == pid
    assert_etcd_healthy_and_closed(bed)


def decisions(run: Path) -> dict[str, dict[str, Any]]:
    """task name -> result of the read/decide tasks of kube_control_plane and etcd in a run."""
    found = {}
    for path in run.glob("ansible/artifacts/*/job_events/*.json"):
        event = json.loads(path.read_text())
        data = event.get("event_data") or {}
        if event.get("event") == "runner_on_ok" and data.get("task_action") in DECIDE:
            found[data["task_action"]] = data["res"]
    return found


DECIDE = ("kube_control_plane_decide", "etcd_decide")


def test_second_harden_changes_nothing_and_keeps_the_key(bed: Lab) -> None:
    first = key(bed)
    first_run = last_run(bed.state, "harden")
    assert shows(first_run, first) == []
    # the first harden changed files and manifests: its reads said so, and named them
    assert all(d["apply"] and d["differs"] for d in decisions(first_run).values())
    out = bed.casemate("harden", "-i", str(bed.inventory), *LEVEL, check=0)
    assert harden_stats(bed.state)[node(bed)]["changed"] == 0
    # on the compliant node each read judged every change step idle (the API server's checksum
    # annotations as the writes would give them included), so the steps were one skipped include
    again = decisions(last_run(bed.state, "harden"))
    assert sorted(again) == sorted(DECIDE)
    assert {name: d["differs"] for name, d in again.items()} == {name: [] for name in DECIDE}
    assert key(bed) == first  # a new key would make the Secrets written so far unreadable
    assert first not in out.stdout + out.stderr
    assert shows(last_run(bed.state, "harden"), first) == []
    dry = bed.casemate("harden", "-i", str(bed.inventory), *LEVEL, "--check", "--diff", check=0)
    assert harden_stats(bed.state)[node(bed)]["changed"] == 0
    assert first not in dry.stdout + dry.stderr
    assert shows(bed.state, first) == []  # no run record, event or diff anywhere holds the key
    assert bed.sh(node(bed), f"stat -c '%U:%G %a' {KEY_FILE}").strip() == "root:root 600"


def test_a_hardened_node_passes_every_automated_control(bed: Lab, reports: Path) -> None:
    after = verify(bed, reports / "after")
    assert {c: r["status"] for c, r in after.items() if r["status"] != "pass"} == HARDENED
    assert "refused" in after["cis_k8s_2_2"]["observed"]  # still, with the hardened etcd
    # etcd runs (through the lab's stand-in for the kubelet) with the manifest's new flags
    assert "running etcd" in after["cis_k8s_2_3"]["observed"]
    # the encryption key never reaches the report
    secret = bed.sh(node(bed), f"grep -o 'secret: .*' {KEY_FILE}").split(":", 1)[1].strip()
    assert len(secret) >= 40
    for name in ("fresh", "after"):
        assert secret not in (reports / name / "report.json").read_text()
    # every file systemd loads for the kubelet is root's alone: its unit file as well as the drop-in
    unit = bed.sh(node(bed), "systemctl show -p FragmentPath --value kubelet.service").strip()
    assert unit.endswith("/systemd/system/kubelet.service")
    assert (
        bed.sh(node(bed), f"stat -c '%a %U:%G' {unit} {DROPIN}").split("\n")[:2]
        == ["600 root:root"] * 2
    )


def test_a_drifted_node_fails_again_and_one_harden_brings_it_back(bed: Lab, reports: Path) -> None:
    # drift: undo a few settings by hand, as an operator might; the unit file alone (its drop-in
    # stays right) is enough to fail 4.1.1 and 4.1.2
    unit = bed.sh(node(bed), "systemctl show -p FragmentPath --value kubelet.service").strip()
    bed.sh(node(bed), "chmod 0644 /var/lib/kubelet/config.yaml /etc/kubernetes/manifests/kube-scheduler.yaml"
                      " && sed -i 's/--profiling=false/--profiling=true/' /etc/kubernetes/manifests/kube-scheduler.yaml"
                      f" && chown root:root /var/lib/etcd && chmod 0644 {unit} && chown nobody {unit}")  # fmt: skip
    drifted = verify(bed, reports / "drifted")
    assert {c for c, r in drifted.items() if r["status"] == "fail"} == {
        "cis_k8s_1_1_5", "cis_k8s_1_1_12", "cis_k8s_1_4_1", "cis_k8s_4_1_1", "cis_k8s_4_1_2",
        "cis_k8s_4_1_9", *STAYS_FAILING,
    }  # fmt: skip
    assert drifted["cis_k8s_4_1_1"]["observed"] == f"{unit} 0644"
    bed.casemate("harden", "-i", str(bed.inventory), *LEVEL, check=0)
    again = verify(bed, reports / "again")
    assert {c: r["status"] for c, r in again.items() if r["status"] != "pass"} == HARDENED


def test_a_broken_etcd_flag_is_rolled_back(bed: Lab, tmp_path: Path) -> None:
    before = bed.sh(node(bed), f"cat {MANIFESTS}/etcd.yaml")
    pid = etcd_pid(bed)
    inventory = yaml.safe_load(bed.inventory.read_text())
    inventory["all"]["vars"] |= {
        "etcd_extra_flags": {"--snapshot-count": "not-a-number"},  # etcd refuses to start with it
        "etcd_ready_timeout": 25,
    }
    broken = tmp_path / "inventory.yml"
    broken.write_text(yaml.safe_dump(inventory))
    out = bed.casemate("harden", "-i", str(broken), "--controls", "cis_k8s_2_2", check=3)
    assert "rolled back" in out.stdout
    assert "--snapshot-count" in out.stdout
    assert bed.sh(node(bed), f"cat {MANIFESTS}/etcd.yaml") == before
    assert harden_stats(bed.state)[node(bed)]["rescued"] == 1
    assert etcd_pid(bed) not in (
        "",
        pid,
    )  # etcd was restarted twice: with the bad flag, then without
    assert "not-a-number" not in bed.sh(
        node(bed), "cat /proc/$(pgrep -x etcd)/cmdline | tr '\\0' ' '"
    )
    assert_etcd_healthy_and_closed(bed)
    # the backup of the manifest is outside the manifest directory
    assert bed.sh(node(bed), "ls /var/backups/casemate/etcd").split()


# The lab has no kubelet. This stand-in answers /healthz like one and, like the real kubelet's
# strict config decoding, refuses to start on a config.yaml key it does not know.
FAKE_KUBELET = """\
import http.server, sys, yaml
config = yaml.safe_load(open(next(a[9:] for a in sys.argv if a.startswith("--config="))))
if "casemateTestUnknownKey" in config:
    sys.exit("kubelet: unknown field casemateTestUnknownKey")
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer((config.get("healthzBindAddress", "127.0.0.1"), config.get("healthzPort", 10248)), Health).serve_forever()
"""


def kubelet_answers(bed: Lab) -> bool:
    """Whether the kubelet's healthz answers within about ten seconds (a fresh start needs a moment)."""
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
    return run(bed, f'python3 -c "{probe}"').returncode == 0


def kubelet_pid(bed: Lab) -> str:
    return bed.sh(node(bed), "systemctl show kubelet -p MainPID --value").strip()


def test_kubelet_restarted_once_then_rolled_back_when_it_fails(bed: Lab, tmp_path: Path) -> None:
    bed.sh(
        node(bed),
        "mkdir -p /usr/local/libexec/casemate-test && cat > /usr/local/libexec/casemate-test/kubelet.py",
        stdin=FAKE_KUBELET,
    )
    bed.sh(
        node(bed),
        "printf '#!/bin/bash\\nexec -a kubelet /usr/bin/python3 /usr/local/libexec/casemate-test/kubelet.py \"$@\"\\n' "
        "> /usr/bin/kubelet && chmod 755 /usr/bin/kubelet && systemctl start kubelet",
    )
    # drift: an overriding flag in /etc/default/kubelet and the read-only port open in config.yaml
    bed.sh(
        node(bed),
        "sed -i 's/^KUBELET_EXTRA_ARGS=.*/KUBELET_EXTRA_ARGS=--read-only-port=10255/' /etc/default/kubelet",
    )
    bed.sh(
        node(bed), "sed -i 's/^readOnlyPort: 0$/readOnlyPort: 10255/' /var/lib/kubelet/config.yaml"
    )
    bed.sh(node(bed), "systemctl restart kubelet")
    assert kubelet_answers(bed), "the stand-in kubelet does not start"
    pid = kubelet_pid(bed)

    bed.casemate("harden", "-i", str(bed.inventory), "--controls", "cis_k8s_4_2_4", check=0)
    assert harden_stats(bed.state)[node(bed)]["changed"] > 0
    assert bed.sh(node(bed), "cat /etc/default/kubelet").strip() == "KUBELET_EXTRA_ARGS="
    assert (
        yaml.safe_load(bed.sh(node(bed), "cat /var/lib/kubelet/config.yaml"))["readOnlyPort"] == 0
    )
    restarted = kubelet_pid(bed)
    # restarted once, and it answered healthy before the role went on (it waited for it)
    assert restarted not in ("0", pid)
    assert "--read-only-port" not in bed.sh(node(bed), f"tr '\\0' ' ' < /proc/{restarted}/cmdline")

    before = bed.sh(node(bed), "cat /var/lib/kubelet/config.yaml")
    inventory = yaml.safe_load(bed.inventory.read_text())
    inventory["all"]["vars"] |= {
        "kube_kubelet_extra_settings": {"casemateTestUnknownKey": True},
        "kube_kubelet_ready_timeout": 15,
    }
    broken = tmp_path / "inventory.yml"
    broken.write_text(yaml.safe_dump(inventory))
    out = bed.casemate("harden", "-i", str(broken), "--controls", "cis_k8s_4_2_4", check=3)
    assert "rolled back" in out.stdout
    assert bed.sh(node(bed), "cat /var/lib/kubelet/config.yaml") == before
    assert bed.sh(node(bed), "systemctl is-active kubelet").strip() == "active"
    assert kubelet_answers(bed)
    assert "answers healthy again" in out.stdout
    bed.sh(node(bed), "systemctl stop kubelet && rm -f /usr/bin/kubelet")
