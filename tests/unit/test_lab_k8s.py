"""The lab's k8s profile, pure parts: kubeadm v1.32's static pod flags and manifests, the PKI
table, kubeconfigs, the file/mode table, the layout script, the etcd stand-in, k8s health.

The expected values are restated here from the kubeadm v1.32 reference (what `kubeadm init`
leaves on a node), not computed from casemate.lab.kubeadm, so that a slip there fails here."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.lab import kubeadm as k
from casemate.lab import layout, standin
from casemate.lab.health import PROBE, PROBE_K8S, health_of, health_of_k8s, probe_for
from casemate.locations import package_file

ADV = "172.30.0.5"
NODE = "casemate-k-1"
DEBIAN_CA_DIRS = (
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
)
N = k.NodeFacts(NODE, ADV, DEBIAN_CA_DIRS)
PKI = "/etc/kubernetes/pki"

APISERVER = [
    f"--advertise-address={ADV}", "--allow-privileged=true", "--authorization-mode=Node,RBAC",
    f"--client-ca-file={PKI}/ca.crt", "--enable-admission-plugins=NodeRestriction",
    "--enable-bootstrap-token-auth=true", f"--etcd-cafile={PKI}/etcd/ca.crt",
    f"--etcd-certfile={PKI}/apiserver-etcd-client.crt", f"--etcd-keyfile={PKI}/apiserver-etcd-client.key",
    "--etcd-servers=https://127.0.0.1:2379", f"--kubelet-client-certificate={PKI}/apiserver-kubelet-client.crt",
    f"--kubelet-client-key={PKI}/apiserver-kubelet-client.key",
    "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
    f"--proxy-client-cert-file={PKI}/front-proxy-client.crt", f"--proxy-client-key-file={PKI}/front-proxy-client.key",
    "--requestheader-allowed-names=front-proxy-client", f"--requestheader-client-ca-file={PKI}/front-proxy-ca.crt",
    "--requestheader-extra-headers-prefix=X-Remote-Extra-", "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-username-headers=X-Remote-User", "--secure-port=6443",
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local", f"--service-account-key-file={PKI}/sa.pub",
    f"--service-account-signing-key-file={PKI}/sa.key", "--service-cluster-ip-range=10.96.0.0/12",
    f"--tls-cert-file={PKI}/apiserver.crt", f"--tls-private-key-file={PKI}/apiserver.key",
]  # fmt: skip
CONTROLLER_MANAGER = [
    "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
    "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf", "--bind-address=127.0.0.1",
    f"--client-ca-file={PKI}/ca.crt", "--cluster-name=kubernetes", f"--cluster-signing-cert-file={PKI}/ca.crt",
    f"--cluster-signing-key-file={PKI}/ca.key", "--controllers=*,bootstrapsigner,tokencleaner",
    "--kubeconfig=/etc/kubernetes/controller-manager.conf", "--leader-elect=true",
    f"--requestheader-client-ca-file={PKI}/front-proxy-ca.crt", f"--root-ca-file={PKI}/ca.crt",
    f"--service-account-private-key-file={PKI}/sa.key", "--use-service-account-credentials=true",
]  # fmt: skip
SCHEDULER = [
    "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf",
    "--authorization-kubeconfig=/etc/kubernetes/scheduler.conf", "--bind-address=127.0.0.1",
    "--kubeconfig=/etc/kubernetes/scheduler.conf", "--leader-elect=true",
]  # fmt: skip
ETCD = [
    f"--advertise-client-urls=https://{ADV}:2379", f"--cert-file={PKI}/etcd/server.crt", "--client-cert-auth=true",
    "--data-dir=/var/lib/etcd", "--experimental-initial-corrupt-check=true",
    "--experimental-watch-progress-notify-interval=5s", f"--initial-advertise-peer-urls=https://{ADV}:2380",
    f"--initial-cluster={NODE}=https://{ADV}:2380", f"--key-file={PKI}/etcd/server.key",
    f"--listen-client-urls=https://127.0.0.1:2379,https://{ADV}:2379", "--listen-metrics-urls=http://127.0.0.1:2381",
    f"--listen-peer-urls=https://{ADV}:2380", f"--name={NODE}", f"--peer-cert-file={PKI}/etcd/peer.crt",
    "--peer-client-cert-auth=true", f"--peer-key-file={PKI}/etcd/peer.key",
    f"--peer-trusted-ca-file={PKI}/etcd/ca.crt", "--snapshot-count=10000", f"--trusted-ca-file={PKI}/etcd/ca.crt",
]  # fmt: skip
FLAGS = {
    "kube-apiserver": APISERVER,
    "kube-controller-manager": CONTROLLER_MANAGER,
    "kube-scheduler": SCHEDULER,
    "etcd": ETCD,
}


# --- static pods ---------------------------------------------------------------------------------


@pytest.mark.parametrize("component", list(FLAGS))
def test_command_is_binary_then_sorted_flags(component: str) -> None:
    cmd = k.command(component, N)
    assert cmd[0] == component
    assert set(cmd[1:]) == set(FLAGS[component])
    assert len(cmd[1:]) == len(FLAGS[component])
    names = [f.split("=", 1)[0] for f in cmd[1:]]
    assert names == sorted(names)


def test_flag_counts() -> None:
    counts = {c: len(k.command(c, N)) - 1 for c in k.COMPONENTS}
    assert counts == {
        "kube-apiserver": 27,
        "kube-controller-manager": 14,
        "kube-scheduler": 5,
        "etcd": 19,
    }


def test_controller_manager_with_a_pod_cidr() -> None:
    extra = set(k.controller_manager_flags("10.244.0.0/16")) - set(CONTROLLER_MANAGER)
    assert extra == {
        "--allocate-node-cidrs=true",
        "--cluster-cidr=10.244.0.0/16",
        "--service-cluster-ip-range=10.96.0.0/12",
    }


def test_no_cis_flag_kubeadm_leaves_unset_is_set() -> None:
    unset = {
        "kube-apiserver": ["--anonymous-auth", "--profiling", "--audit-log-path", "--kubelet-certificate-authority",
                           "--encryption-provider-config", "--tls-cipher-suites", "--tls-min-version"],
        "kube-controller-manager": ["--profiling", "--terminated-pod-gc-threshold", "--feature-gates"],
        "kube-scheduler": ["--profiling"],
        "etcd": ["--auto-tls", "--peer-auto-tls"],
    }  # fmt: skip
    for component, flags in unset.items():
        names = {f.split("=", 1)[0] for f in k.command(component, N)[1:]}
        assert not names & set(flags), component


def test_unknown_component() -> None:
    with pytest.raises(ValueError, match="not a kubeadm static pod"):
        k.command("kube-proxy", N)


def _pod(component: str, facts: k.NodeFacts = N) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(k.manifest_text(component, facts))
    return loaded


@pytest.mark.parametrize("component", k.COMPONENTS)
def test_manifest_common_shape(component: str) -> None:
    text = k.manifest_text(component, N)
    assert "  creationTimestamp: null\n" in text
    assert text.endswith("status: {}\n")
    assert text == yaml.safe_dump(yaml.safe_load(text), sort_keys=True, default_flow_style=False)
    pod = _pod(component)
    assert (pod["apiVersion"], pod["kind"]) == ("v1", "Pod")
    meta = pod["metadata"]
    assert meta["name"] == component
    assert meta["namespace"] == "kube-system"
    assert meta["labels"] == {"component": component, "tier": "control-plane"}
    spec = pod["spec"]
    assert spec["hostNetwork"] is True
    assert spec["priority"] == 2000001000
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    (container,) = spec["containers"]
    assert container["name"] == component
    assert container["imagePullPolicy"] == "IfNotPresent"
    for absent in ("securityContext", "ports", "env", "args"):
        assert absent not in container
    assert container["command"] == k.command(component, N)


def test_images() -> None:
    images = {c: _pod(c)["spec"]["containers"][0]["image"] for c in k.COMPONENTS}
    assert images == {
        "kube-apiserver": "registry.k8s.io/kube-apiserver:v1.32.0",
        "kube-controller-manager": "registry.k8s.io/kube-controller-manager:v1.32.0",
        "kube-scheduler": "registry.k8s.io/kube-scheduler:v1.32.0",
        "etcd": "registry.k8s.io/etcd:3.5.16-0",
    }


def test_annotations() -> None:
    assert _pod("kube-apiserver")["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": f"{ADV}:6443"
    }
    assert _pod("etcd")["metadata"]["annotations"] == {
        "kubeadm.kubernetes.io/etcd.advertise-client-urls": f"https://{ADV}:2379"
    }
    assert "annotations" not in _pod("kube-scheduler")["metadata"]
    assert "annotations" not in _pod("kube-controller-manager")["metadata"]


@pytest.mark.parametrize(
    ("component", "requests", "where", "paths"),
    [
        ("kube-apiserver", {"cpu": "250m"}, (ADV, 6443, "HTTPS"), ("/livez", "/readyz", "/livez")),
        (
            "kube-controller-manager",
            {"cpu": "200m"},
            ("127.0.0.1", 10257, "HTTPS"),
            ("/healthz", None, "/healthz"),
        ),
        (
            "kube-scheduler",
            {"cpu": "100m"},
            ("127.0.0.1", 10259, "HTTPS"),
            ("/healthz", None, "/healthz"),
        ),
        (
            "etcd",
            {"cpu": "100m", "memory": "100Mi"},
            ("127.0.0.1", 2381, "HTTP"),
            ("/livez", "/readyz", "/readyz"),
        ),
    ],
)
def test_probes_and_resources(
    component: str,
    requests: dict[str, str],
    where: tuple[str, int, str],
    paths: tuple[str | None, ...],
) -> None:
    c = _pod(component)["spec"]["containers"][0]
    assert c["resources"] == {"requests": requests}
    host, port, scheme = where

    def get(path: str | None) -> dict[str, Any]:
        return {"host": host, "path": path, "port": port, "scheme": scheme}

    live, ready, start = paths
    assert c["livenessProbe"] == {"failureThreshold": 8, "httpGet": get(live), "initialDelaySeconds": 10,
                                  "periodSeconds": 10, "timeoutSeconds": 15}  # fmt: skip
    assert c["startupProbe"] == {"failureThreshold": 24, "httpGet": get(start), "initialDelaySeconds": 10,
                                 "periodSeconds": 10, "timeoutSeconds": 15}  # fmt: skip
    if ready is None:
        assert "readinessProbe" not in c
    else:
        assert c["readinessProbe"] == {"failureThreshold": 3, "httpGet": get(ready), "periodSeconds": 1,
                                       "timeoutSeconds": 15}  # fmt: skip


def _volumes(
    component: str, facts: k.NodeFacts = N
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    spec = _pod(component, facts)["spec"]
    vols = [(v["name"], v["hostPath"]["path"], v["hostPath"]["type"]) for v in spec["volumes"]]
    mounts = [
        (m["name"], m["mountPath"], m.get("readOnly"))
        for m in spec["containers"][0]["volumeMounts"]
    ]
    return vols, mounts


def test_apiserver_volumes_on_debian() -> None:
    vols, mounts = _volumes("kube-apiserver")
    assert vols == [
        ("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate"),
        ("etc-ca-certificates", "/etc/ca-certificates", "DirectoryOrCreate"),
        ("k8s-certs", PKI, "DirectoryOrCreate"),
        (
            "usr-local-share-ca-certificates",
            "/usr/local/share/ca-certificates",
            "DirectoryOrCreate",
        ),
        ("usr-share-ca-certificates", "/usr/share/ca-certificates", "DirectoryOrCreate"),
    ]
    assert mounts == [(name, path, True) for name, path, _ in vols]


def test_controller_manager_volumes_on_debian() -> None:
    vols, mounts = _volumes("kube-controller-manager")
    assert vols == [
        ("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate"),
        ("etc-ca-certificates", "/etc/ca-certificates", "DirectoryOrCreate"),
        (
            "flexvolume-dir",
            "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
            "DirectoryOrCreate",
        ),
        ("k8s-certs", PKI, "DirectoryOrCreate"),
        ("kubeconfig", "/etc/kubernetes/controller-manager.conf", "FileOrCreate"),
        (
            "usr-local-share-ca-certificates",
            "/usr/local/share/ca-certificates",
            "DirectoryOrCreate",
        ),
        ("usr-share-ca-certificates", "/usr/share/ca-certificates", "DirectoryOrCreate"),
    ]
    read_write = {name for name, _, ro in mounts if not ro}
    assert read_write == {"flexvolume-dir"}
    assert [m[0] for m in mounts] == [v[0] for v in vols]


def test_scheduler_and_etcd_volumes() -> None:
    assert _volumes("kube-scheduler") == (
        [("kubeconfig", "/etc/kubernetes/scheduler.conf", "FileOrCreate")],
        [("kubeconfig", "/etc/kubernetes/scheduler.conf", True)],
    )
    vols, mounts = _volumes("etcd")
    assert vols == [
        ("etcd-certs", f"{PKI}/etcd", "DirectoryOrCreate"),
        ("etcd-data", "/var/lib/etcd", "DirectoryOrCreate"),
    ]
    assert mounts == [("etcd-data", "/var/lib/etcd", None), ("etcd-certs", f"{PKI}/etcd", None)]


def test_ca_volumes_follow_the_host() -> None:
    bare = k.NodeFacts(NODE, ADV)
    assert [v[0] for v in _volumes("kube-apiserver", bare)[0]] == ["ca-certs", "k8s-certs"]
    rhel = k.NodeFacts(NODE, ADV, ("/etc/pki/ca-trust", "/etc/pki/tls/certs"))
    assert [v[0] for v in _volumes("kube-controller-manager", rhel)[0]] == [
        "ca-certs", "etc-pki-ca-trust", "etc-pki-tls-certs", "flexvolume-dir", "k8s-certs", "kubeconfig",
    ]  # fmt: skip


# --- PKI -----------------------------------------------------------------------------------------


def test_pki_table() -> None:
    table = {
        c.stem.removeprefix(f"{PKI}/"): (
            c.issuer.removeprefix(f"{PKI}/") if c.issuer else None, c.cn, c.org, c.eku, c.dns, c.ips, c.days,
        )
        for c in k.pki_certs(N)
    }  # fmt: skip
    node_sans = ((NODE, "localhost"), (ADV, "127.0.0.1", "::1"))
    api_dns = (
        NODE,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    )
    assert table == {
        "ca": (None, "kubernetes", None, (), ("kubernetes",), (), 3650),
        "apiserver": (
            "ca",
            "kube-apiserver",
            None,
            ("serverAuth",),
            api_dns,
            ("10.96.0.1", ADV),
            365,
        ),
        "apiserver-kubelet-client": (
            "ca",
            "kube-apiserver-kubelet-client",
            "kubeadm:cluster-admins",
            ("clientAuth",),
            (),
            (),
            365,
        ),
        "front-proxy-ca": (None, "front-proxy-ca", None, (), ("front-proxy-ca",), (), 3650),
        "front-proxy-client": (
            "front-proxy-ca",
            "front-proxy-client",
            None,
            ("clientAuth",),
            (),
            (),
            365,
        ),
        "etcd/ca": (None, "etcd-ca", None, (), ("etcd-ca",), (), 3650),
        "etcd/server": ("etcd/ca", NODE, None, ("serverAuth", "clientAuth"), *node_sans, 365),
        "etcd/peer": ("etcd/ca", NODE, None, ("serverAuth", "clientAuth"), *node_sans, 365),
        "etcd/healthcheck-client": (
            "etcd/ca",
            "kube-etcd-healthcheck-client",
            None,
            ("clientAuth",),
            (),
            (),
            365,
        ),
        "apiserver-etcd-client": (
            "etcd/ca",
            "kube-apiserver-etcd-client",
            None,
            ("clientAuth",),
            (),
            (),
            365,
        ),
    }
    assert {c.key_type for c in k.pki_certs(N)} == {"rsa"}
    assert {c.backdate_s for c in k.pki_certs(N)} == {300}


def test_22_pki_files_with_their_modes() -> None:
    pki = {
        e.path: e.mode
        for e in k.layout_entries(N)
        if e.path.startswith(f"{PKI}/") and e.kind == "f"
    }
    assert len(pki) == 22
    assert {p for p, m in pki.items() if m == "0644"} == {p for p in pki if p.endswith(".crt")}
    assert {p for p, m in pki.items() if m == "0600"} == {
        p for p in pki if p.endswith((".key", "sa.pub"))
    }


def test_subjects_order_organisation_first() -> None:
    kc = next(c for c in k.kubeconfigs(N) if c.file == "admin.conf")
    assert k.kubeconfig_cert(kc).subject == "/O=kubeadm:cluster-admins/CN=kubernetes-admin"
    assert k.pki_certs(N)[0].subject == "/CN=kubernetes"


def test_extensions_of_a_ca_and_of_leaves() -> None:
    ca, api = k.pki_certs(N)[:2]
    assert k.openssl_extensions(ca).splitlines() == [
        "[ext]",
        "basicConstraints = critical, CA:TRUE",
        "keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign",
        "subjectKeyIdentifier = hash",
        "subjectAltName = DNS:kubernetes",
    ]
    assert k.openssl_extensions(api).splitlines() == [
        "[ext]",
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        "subjectKeyIdentifier = none",
        "authorityKeyIdentifier = keyid",
        "extendedKeyUsage = serverAuth",
        "subjectAltName = DNS:casemate-k-1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc,"
        f" DNS:kubernetes.default.svc.cluster.local, IP:10.96.0.1, IP:{ADV}",
    ]
    client = k.openssl_extensions(k.kubelet_client_cert(N))
    assert "keyUsage = critical, digitalSignature\n" in client  # an EC key does no key encipherment
    assert "subjectAltName" not in client


def test_kubelet_certificates() -> None:
    client = k.kubelet_client_cert(N)
    assert (client.cn, client.org, client.eku, client.key_type, client.issuer) == (
        f"system:node:{NODE}",
        "system:nodes",
        ("clientAuth",),
        "ec",
        f"{PKI}/ca",
    )
    ca, serving = k.kubelet_serving_certs(N, 1700000000)
    assert (ca.cn, ca.is_ca, ca.backdate_s) == (f"{NODE}-ca@1700000000", True, 3600)
    assert (serving.cn, serving.issuer, serving.dns, serving.eku) == (
        f"{NODE}@1700000000",
        "kubelet-ca",
        (NODE,),
        ("serverAuth",),
    )


# --- kubeconfigs ---------------------------------------------------------------------------------


def test_kubeconfig_table() -> None:
    table = {kc.file: (kc.user, kc.org, kc.embedded) for kc in k.kubeconfigs(N)}
    assert table == {
        "admin.conf": ("kubernetes-admin", "kubeadm:cluster-admins", True),
        "super-admin.conf": ("kubernetes-super-admin", "system:masters", True),
        "controller-manager.conf": ("system:kube-controller-manager", None, True),
        "scheduler.conf": ("system:kube-scheduler", None, True),
        "kubelet.conf": (f"system:node:{NODE}", "system:nodes", False),
    }


def test_admin_conf() -> None:
    kc = k.kubeconfigs(N)[0]
    text = k.kubeconfig_text(kc, N)
    assert "    certificate-authority-data: CASEMATE_FILL_CA_DATA\n" in text  # plain, never quoted
    assert yaml.safe_load(text) == {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": k.CA_DATA, "server": f"https://{ADV}:6443"},
                      "name": "kubernetes"}],
        "contexts": [{"context": {"cluster": "kubernetes", "user": "kubernetes-admin"},
                      "name": "kubernetes-admin@kubernetes"}],
        "current-context": "kubernetes-admin@kubernetes",
        "kind": "Config",
        "preferences": {},
        "users": [{"name": "kubernetes-admin",
                   "user": {"client-certificate-data": k.CERT_DATA, "client-key-data": k.KEY_DATA}}],
    }  # fmt: skip


def test_kubelet_conf_points_at_the_rotated_pem() -> None:
    kc = next(c for c in k.kubeconfigs(N) if c.file == "kubelet.conf")
    doc = yaml.safe_load(k.kubeconfig_text(kc, N))
    pem = "/var/lib/kubelet/pki/kubelet-client-current.pem"
    assert doc["users"] == [
        {"name": f"system:node:{NODE}", "user": {"client-certificate": pem, "client-key": pem}}
    ]
    assert doc["current-context"] == f"system:node:{NODE}@kubernetes"
    assert doc["clusters"][0]["cluster"]["server"] == f"https://{ADV}:6443"


# --- kubelet and package files -------------------------------------------------------------------


def test_kubelet_config() -> None:
    cfg = yaml.safe_load(k.KUBELET_CONFIG)
    assert "resolvConf" not in cfg  # no systemd-resolved on a lab node
    assert cfg["authentication"] == {
        "anonymous": {"enabled": False},
        "webhook": {"cacheTTL": "0s", "enabled": True},
        "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
    }
    assert cfg["authorization"]["mode"] == "Webhook"
    assert (cfg["cgroupDriver"], cfg["staticPodPath"], cfg["rotateCertificates"]) == (
        "systemd",
        "/etc/kubernetes/manifests",
        True,
    )
    assert cfg["crashLoopBackOff"] == {} and cfg["containerRuntimeEndpoint"] == ""
    for absent in (
        "readOnlyPort",
        "protectKernelDefaults",
        "tlsCertFile",
        "serverTLSBootstrap",
        "featureGates",
    ):
        assert absent not in cfg
    assert list(cfg) == sorted(cfg)
    assert len(k.KUBELET_CONFIG.splitlines()) == 48  # the reference's 49 lines, minus resolvConf


def test_flags_env_and_units() -> None:
    assert k.KUBEADM_FLAGS_ENV == (
        'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock'
        ' --pod-infra-container-image=registry.k8s.io/pause:3.10"\n'
    )
    assert (
        "ExecStart=/usr/bin/kubelet\nRestart=always\nStartLimitInterval=0\nRestartSec=10\n"
        in k.KUBELET_SERVICE
    )
    assert k.KUBEADM_DROPIN.splitlines()[-2:] == [
        "ExecStart=",
        "ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS",
    ]
    assert k.ETC_DEFAULT_KUBELET == "KUBELET_EXTRA_ARGS=\n"
    assert k.UNIT_DIR == "/lib/systemd/system"


def test_file_and_mode_table() -> None:
    table = {e.path: (e.kind, e.mode, e.owner) for e in k.layout_entries(N)}
    assert {o for _, _, o in table.values()} == {"root:root"}
    expected = {
        "/etc/kubernetes": ("d", "0755"),
        "/etc/kubernetes/manifests": ("d", "0755"),
        "/etc/kubernetes/manifests/.kubelet-keep": ("f", "0644"),
        "/etc/kubernetes/manifests/kube-apiserver.yaml": ("f", "0600"),
        "/etc/kubernetes/manifests/kube-controller-manager.yaml": ("f", "0600"),
        "/etc/kubernetes/manifests/kube-scheduler.yaml": ("f", "0600"),
        "/etc/kubernetes/manifests/etcd.yaml": ("f", "0600"),
        f"{PKI}": ("d", "0755"),
        f"{PKI}/etcd": ("d", "0755"),
        "/etc/kubernetes/admin.conf": ("f", "0600"),
        "/etc/kubernetes/super-admin.conf": ("f", "0600"),
        "/etc/kubernetes/controller-manager.conf": ("f", "0600"),
        "/etc/kubernetes/scheduler.conf": ("f", "0600"),
        "/etc/kubernetes/kubelet.conf": ("f", "0600"),
        "/var/lib/kubelet": ("d", "0755"),
        "/var/lib/kubelet/.kubelet-keep": ("f", "0644"),
        "/var/lib/kubelet/config.yaml": ("f", "0644"),
        "/var/lib/kubelet/kubeadm-flags.env": ("f", "0644"),
        "/var/lib/kubelet/pki": ("d", "0755"),
        "/var/lib/kubelet/pki/kubelet-client-*.pem": ("f", "0600"),
        "/var/lib/kubelet/pki/kubelet-client-current.pem": ("l", None),
        "/var/lib/kubelet/pki/kubelet.crt": ("f", "0644"),
        "/var/lib/kubelet/pki/kubelet.key": ("f", "0600"),
        "/var/lib/etcd": ("d", "0700"),
        "/lib/systemd/system/kubelet.service": ("f", "0644"),
        "/lib/systemd/system/kubelet.service.d": ("d", "0755"),
        "/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": ("f", "0644"),
        "/etc/default/kubelet": ("f", "0644"),
        "/usr/libexec/kubernetes/kubelet-plugins/volume/exec": ("d", "0755"),
    }
    non_pki = {
        p: (kind, mode)
        for p, (kind, mode, _) in table.items()
        if kind == "d" or not p.startswith(f"{PKI}/")
    }
    assert non_pki == expected


# --- the layout script ---------------------------------------------------------------------------


def test_facts_of() -> None:
    out = "Casemate-K-1\n/usr/share/ca-certificates\n/etc/ca-certificates\n/elsewhere\n"
    facts = layout.facts_of(out, ADV)
    assert facts == k.NodeFacts(NODE, ADV, ("/etc/ca-certificates", "/usr/share/ca-certificates"))
    for bad_out, addr in (("", ADV), ("host\n", "")):
        with pytest.raises(ValueError, match="no hostname or no address"):
            layout.facts_of(bad_out, addr)


def test_kubelet_client_pem_name() -> None:
    assert (
        layout.kubelet_client_pem(0)
        == "/var/lib/kubelet/pki/kubelet-client-1970-01-01-00-00-00.pem"
    )


def test_layout_script_is_valid_sh_and_deterministic(tmp_path: Path) -> None:
    script = layout.layout_script(N, 1700000000)
    assert script == layout.layout_script(N, 1700000000)
    path = tmp_path / "layout.sh"
    path.write_text(script)
    subprocess.run(["sh", "-n", str(path)], check=True)
    assert "NOW=1700000000\n" in script


def test_layout_script_makes_every_key_then_signs_issuers_first() -> None:
    body = layout.node_part(N, 1700000000)
    lines = body.splitlines()
    joined = lines.index("join")
    assert all(not line.startswith("sign ") for line in lines[:joined])
    keys = [line.split()[-1] for line in lines if line.startswith("bg key ")]
    assert len(keys) == len(set(keys)) == 18  # 10 pki pairs + sa + 4 kubeconfigs + kubelet 3
    signed = [line.split()[1] for line in lines if line.startswith("sign ")]
    for line in (line for line in lines if line.startswith("sign ")):
        issuer = line.split()[2]
        if issuer != '""':
            assert signed.index(issuer) < signed.index(line.split()[1]), line
    assert len(signed) == 17


def test_layout_script_writes_every_file_of_the_table() -> None:
    body = layout.node_part(N, 1700000000)
    written = set(re.findall(r"(?:^|\| )(?:put \d{4}|kubeconfig|dir \d{4}) (\S+)", body, re.M))
    written |= {f"{s}.crt" for s in re.findall(r"^sign (\S+)", body, re.M)}
    written |= set(re.findall(r"^bg key \w+ (\S+)", body, re.M))
    written |= {f"{PKI}/sa.pub", "/var/lib/kubelet/pki/kubelet-client-current.pem"}
    for e in k.layout_entries(N):
        path = e.path.replace("*", "2023-11-14-22-13-20")
        assert path in written, path


def test_layout_writes_the_stand_in_outside_the_kubeadm_layout() -> None:
    body = layout.node_part(N, 1700000000)
    for unit, text in layout.standin_units():
        assert f"put 0644 /etc/systemd/system/{unit} <<'CASEMATE_EOF'\n{text}CASEMATE_EOF\n" in body
    assert f"put 0755 {standin.PROGRAM} <<'CASEMATE_EOF'\n" in body
    assert not standin.PROGRAM.startswith("/etc/kubernetes")
    for line in body.splitlines():
        if line.startswith("systemctl"):
            assert "kubelet.service" not in line  # installed, never enabled
    assert "systemctl mask docker.socket docker.service" in body
    assert f"systemctl enable --now {standin.SERVICE}" in body


def test_layout_marker_is_the_same_in_both_halves() -> None:
    prelude = package_file("lab", "k8s", "layout.sh").read_text()
    assert f"MARK={layout.MARK}\n" in prelude
    assert f"put 0644 {layout.MARK}\n" in layout.node_part(N, 0)
    subprocess.run(["sh", "-n", str(package_file("lab", "k8s", "layout.sh"))], check=True)


def test_here_document_delimiter_is_refused() -> None:
    with pytest.raises(ValueError, match="delimiter"):
        layout._here("put 0644 /x", "a\nCASEMATE_EOF\nb\n")


# --- the etcd stand-in ----------------------------------------------------------------------------


def _etcd_manifest() -> str:
    return k.manifest_text("etcd", N)


def test_stand_in_runs_the_manifest_command() -> None:
    assert standin.command_of(_etcd_manifest()) == ["etcd", *ETCD]
    doc = yaml.safe_load(_etcd_manifest())
    doc["spec"]["containers"][0]["args"] = ["--auto-tls=false"]
    assert standin.command_of(yaml.safe_dump(doc))[-1] == "--auto-tls=false"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("apiVersion: v1\nkind: Pod\nspec: [unclosed\n", "does not parse as YAML at line 4"),
        ("- a\n- b\n", "is not a YAML mapping"),
        ("apiVersion: v1\nkind: Deployment\n", "is not a v1 Pod"),
        ("apiVersion: v1\nkind: Pod\nspec: {}\n", "has no spec.containers list"),
        (
            "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: other, command: [x]}]}\n",
            "no single container named etcd",
        ),
        (
            "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: etcd, command: etcd}]}\n",
            "command is not a list of strings",
        ),
        (
            "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: etcd, command: [etcd, 5]}]}\n",
            "command is not a list of strings",
        ),
        (
            "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: etcd, command: []}]}\n",
            "no command",
        ),
        ("", "is not a YAML mapping"),
    ],
)
def test_stand_in_refuses_an_unusable_manifest(text: str, reason: str) -> None:
    with pytest.raises(standin.ManifestError, match=re.escape(reason)):
        standin.command_of(text)


@pytest.fixture
def node_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The stand-in's manifest and state file moved under tmp_path; returns the manifest."""
    monkeypatch.setattr(standin, "MANIFEST", str(tmp_path / "etcd.yaml"))
    monkeypatch.setattr(standin, "STATE", str(tmp_path / "run" / "state.json"))
    return tmp_path / "etcd.yaml"


def _state(tmp_path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((tmp_path / "run" / "state.json").read_text())
    return loaded


def test_stand_in_run(
    monkeypatch: pytest.MonkeyPatch,
    node_paths: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ran: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(standin.os, "execvp", lambda f, argv: ran.append((f, argv)))
    assert standin.main(["x"]) == standin.EX_CONFIG  # missing: etcd stays down
    assert _state(tmp_path)["error"] == "cannot be read: No such file or directory"
    node_paths.write_text("spec: [\n")
    assert standin.main(["x"]) == standin.EX_CONFIG
    assert _state(tmp_path)["argv"] is None
    assert not ran
    node_paths.write_text(_etcd_manifest())
    standin.main(["x"])
    assert ran == [("etcd", ["etcd", *ETCD])]
    state = _state(tmp_path)
    assert state["argv"] == ["etcd", *ETCD] and state["error"] is None
    assert state["sha256"] == hashlib.sha256(node_paths.read_bytes()).hexdigest()
    err = capsys.readouterr().err
    assert "cannot be read" in err and "does not parse" in err and "starting etcd from" in err
    assert standin.main(["x", "bogus"]) == 2


def test_restart_only_when_the_content_changed_or_etcd_is_down() -> None:
    assert not standin.needs_restart("abc", {"sha256": "abc"}, active=True)
    assert standin.needs_restart("abd", {"sha256": "abc"}, active=True)
    assert standin.needs_restart("abc", {"sha256": "abc"}, active=False)
    assert standin.needs_restart(None, {"sha256": "abc"}, active=True)  # manifest removed
    assert standin.needs_restart("abc", {}, active=True)


def test_stand_in_sync(
    monkeypatch: pytest.MonkeyPatch, node_paths: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[list[str]] = []

    def systemctl(args: list[str], check: bool) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(args, 0)  # etcd is active

    monkeypatch.setattr(standin.subprocess, "run", systemctl)
    node_paths.write_text(_etcd_manifest())
    monkeypatch.setattr(standin.os, "execvp", lambda f, argv: None)
    standin.run()  # records the sha256 it started etcd from
    assert standin.main(["x", "sync"]) == 0
    assert calls[-1] == ["systemctl", "is-active", "--quiet", standin.SERVICE]  # no restart
    node_paths.write_text(_etcd_manifest().replace("10000", "10001"))
    assert standin.main(["x", "sync"]) == 0
    assert calls[-1] == ["systemctl", "--no-block", "restart", standin.SERVICE]
    err = capsys.readouterr().err
    assert "content unchanged: etcd keeps running" in err and "changed (sha256" in err


def test_stand_in_units() -> None:
    svc, path, restarter = (text for _, text in layout.standin_units())
    for text in (svc, path, restarter):
        assert text.startswith(
            "# casemate lab: STAND-IN for the kubelet running the etcd static pod"
        )
        assert "Description=casemate lab stand-in for the kubelet" in text
    assert f"ExecStart=/usr/bin/python3 {standin.PROGRAM}\n" in svc
    assert "RestartPreventExitStatus=78\n" in svc and "Restart=always\n" in svc
    assert "Type=notify\n" in svc  # started = etcd serving
    assert "PathChanged=/etc/kubernetes/manifests/etcd.yaml\n" in path
    assert f"Unit={standin.RESTARTER}\n" in path
    assert f"ExecStart=/usr/bin/python3 {standin.PROGRAM} sync\n" in restarter
    assert all(u.startswith("casemate-lab-kubelet-standin-etcd") for u, _ in layout.standin_units())


def test_stand_in_program_runs_on_the_nodes_python() -> None:
    source = package_file("lab", "standin.py").read_text()
    assert source.startswith("#!/usr/bin/python3\n")
    assert not re.search(r"^\s*(from|import) casemate", source, re.M)  # stdlib and PyYAML only


# --- health of a k8s node --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "health"),
    [
        ("up up running\n", "ready"),
        ("up up degraded\n", "ready"),
        ("up down starting\n", "starting"),
        ("down down initializing\n", "starting"),
        ("up down degraded\n", "etcd not answering"),
        ("down up degraded\n", "containerd not answering"),
        ("down down running\n", "containerd not answering"),
        ("up up maintenance\n", "systemd maintenance"),
        ("up running\n", "no answer from the node"),  # a docker-profile answer
        ("yes up running\n", "no answer from the node"),
        ("", "no answer from the node"),
    ],
)
def test_k8s_health(output: str, health: str) -> None:
    assert health_of_k8s(output) == health


def test_probe_for_profile() -> None:
    assert probe_for("docker") == (PROBE, health_of)
    assert probe_for("k8s") == (PROBE_K8S, health_of_k8s)
    assert "docker info" not in PROBE_K8S
    assert "ctr version" in PROBE_K8S
    assert "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt" in PROBE_K8S
