"""The Kubernetes roles (etcd, kube_control_plane, kube_kubelet, kube_policies) on a real kubeadm
v1.32 lab node (`lab up --profile k8s`: the kubeadm layout on disk, a real etcd run from its
static pod manifest by the lab's kubelet stand-in, no API server or kubelet process).

In file order, on one node: a dry run on the fresh node changes nothing; hardening keeps every
manifest valid and every kubeadm flag casemate does not own, adds casemate's, and leaves etcd
healthy and closed to clients without a certificate; a second run changes nothing and keeps the
encryption key, which no output or run record ever shows; a broken etcd flag is rolled back."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import Lab, harden_stats, lab_name, last_run, open_lab

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


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("k8sroles"), 1, "--profile", "k8s") as lab:
        yield lab


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


def test_check_mode_on_a_fresh_node_changes_nothing(bed: Lab, fresh: dict[str, Any]) -> None:
    before = tree_state(bed)
    dry = bed.casemate("harden", "-i", str(bed.inventory), "--check", "--diff", check=0)
    assert harden_stats(bed.state)[node(bed)]["changed"] > 0
    assert "--profiling=false" in dry.stdout  # the diff shows the manifest that would be written
    assert tree_state(bed) == before
    assert run(bed, f"test -e {KEY_FILE}").returncode != 0  # no key is made in a dry run


def test_harden_keeps_kubeadm_flags_and_adds_ours(bed: Lab, fresh: dict[str, Any]) -> None:
    pid = etcd_pid(bed)
    bed.casemate("harden", "-i", str(bed.inventory), check=0)
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


def test_second_harden_changes_nothing_and_keeps_the_key(bed: Lab) -> None:
    first = key(bed)
    first_run = last_run(bed.state, "harden")
    assert shows(first_run, first) == []
    out = bed.casemate("harden", "-i", str(bed.inventory), check=0)
    assert harden_stats(bed.state)[node(bed)]["changed"] == 0
    assert key(bed) == first  # a new key would make the Secrets written so far unreadable
    assert first not in out.stdout + out.stderr
    assert shows(last_run(bed.state, "harden"), first) == []
    dry = bed.casemate("harden", "-i", str(bed.inventory), "--check", "--diff", check=0)
    assert harden_stats(bed.state)[node(bed)]["changed"] == 0
    assert first not in dry.stdout + dry.stderr
    assert shows(bed.state, first) == []  # no run record, event or diff anywhere holds the key
    assert bed.sh(node(bed), f"stat -c '%U:%G %a' {KEY_FILE}").strip() == "root:root 600"


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
