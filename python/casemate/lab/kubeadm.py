"""What kubeadm v1.32 `init` leaves on a single control-plane node (stacked etcd, containerd,
pkgs.k8s.io debs, no config file), as pure data: static pod manifests, certificates, kubeconfigs,
kubelet files, and every path with its mode. The lab's k8s profile writes exactly this into a
node (see layout.py); docs/lab.md says what is real there and what is not.

Source of every value: /work/shared/reference/kubeadm-1.32-defaults.md (kubeadm's own code of
the 1.31-1.33 line). `<ADV>` is the node's address on the lab network, `<NODE>` its name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

K8S_VERSION = "v1.32.0"
ETCD_IMAGE = "registry.k8s.io/etcd:3.5.16-0"  # what kubeadm v1.32.0 deploys
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
SERVICE_CIDR = "10.96.0.0/12"
SERVICE_IP = "10.96.0.1"  # first address of SERVICE_CIDR: the `kubernetes` service
CLUSTER_NAME = "kubernetes"
API_PORT = 6443
ETC = "/etc/kubernetes"
PKI = f"{ETC}/pki"
MANIFESTS = f"{ETC}/manifests"
KUBELET_DIR = "/var/lib/kubelet"
KUBELET_PKI = f"{KUBELET_DIR}/pki"
KUBELET_CLIENT_CURRENT = f"{KUBELET_PKI}/kubelet-client-current.pem"
ETCD_DATA = "/var/lib/etcd"
# The kubelet and kubeadm debs ship their units in the package unit directory, never /etc. On
# merged-/usr Debian (12+) /lib is a symlink to usr/lib: dpkg -L spells it /lib/systemd/system.
UNIT_DIR = "/lib/systemd/system"
FLEXVOLUME_DIR = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
# Host CA directories kubeadm mounts into the apiserver and controller-manager, each only if it
# exists on the host (volume name = path with "-" for "/").
CA_DIRS = (
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
)


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the layout depends on, read from the node once it runs."""

    name: str  # <NODE>: the lower-cased hostname
    address: str  # <ADV>: the node's address on the lab network
    ca_dirs: tuple[str, ...] = ()  # which of CA_DIRS exist on the node

    @property
    def server(self) -> str:
        return f"https://{self.address}:{API_PORT}"


# --- static pod commands -------------------------------------------------------------------------


def apiserver_flags(n: NodeFacts) -> list[str]:
    return sorted(
        [
            f"--advertise-address={n.address}",
            "--allow-privileged=true",
            "--authorization-mode=Node,RBAC",
            f"--client-ca-file={PKI}/ca.crt",
            "--enable-admission-plugins=NodeRestriction",
            "--enable-bootstrap-token-auth=true",
            f"--etcd-cafile={PKI}/etcd/ca.crt",
            f"--etcd-certfile={PKI}/apiserver-etcd-client.crt",
            f"--etcd-keyfile={PKI}/apiserver-etcd-client.key",
            "--etcd-servers=https://127.0.0.1:2379",
            f"--kubelet-client-certificate={PKI}/apiserver-kubelet-client.crt",
            f"--kubelet-client-key={PKI}/apiserver-kubelet-client.key",
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
            f"--proxy-client-cert-file={PKI}/front-proxy-client.crt",
            f"--proxy-client-key-file={PKI}/front-proxy-client.key",
            "--requestheader-allowed-names=front-proxy-client",
            f"--requestheader-client-ca-file={PKI}/front-proxy-ca.crt",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            f"--secure-port={API_PORT}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={PKI}/sa.pub",
            f"--service-account-signing-key-file={PKI}/sa.key",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--tls-cert-file={PKI}/apiserver.crt",
            f"--tls-private-key-file={PKI}/apiserver.key",
        ]
    )


def controller_manager_flags(pod_cidr: str | None = None) -> list[str]:
    """Without `--pod-network-cidr` (the lab's case) kubeadm sets no node CIDR allocation and no
    service range on the controller-manager."""
    conf = f"{ETC}/controller-manager.conf"
    flags = [
        f"--authentication-kubeconfig={conf}",
        f"--authorization-kubeconfig={conf}",
        "--bind-address=127.0.0.1",
        f"--client-ca-file={PKI}/ca.crt",
        f"--cluster-name={CLUSTER_NAME}",
        f"--cluster-signing-cert-file={PKI}/ca.crt",
        f"--cluster-signing-key-file={PKI}/ca.key",
        "--controllers=*,bootstrapsigner,tokencleaner",
        f"--kubeconfig={conf}",
        "--leader-elect=true",
        f"--requestheader-client-ca-file={PKI}/front-proxy-ca.crt",
        f"--root-ca-file={PKI}/ca.crt",
        f"--service-account-private-key-file={PKI}/sa.key",
        "--use-service-account-credentials=true",
    ]
    if pod_cidr:
        flags += [
            "--allocate-node-cidrs=true",
            f"--cluster-cidr={pod_cidr}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
        ]
    return sorted(flags)


def scheduler_flags() -> list[str]:
    conf = f"{ETC}/scheduler.conf"
    return sorted(
        [
            f"--authentication-kubeconfig={conf}",
            f"--authorization-kubeconfig={conf}",
            "--bind-address=127.0.0.1",
            f"--kubeconfig={conf}",
            "--leader-elect=true",
        ]
    )


def etcd_flags(n: NodeFacts) -> list[str]:
    adv = n.address
    return sorted(
        [
            f"--advertise-client-urls=https://{adv}:2379",
            f"--cert-file={PKI}/etcd/server.crt",
            "--client-cert-auth=true",
            f"--data-dir={ETCD_DATA}",
            "--experimental-initial-corrupt-check=true",
            "--experimental-watch-progress-notify-interval=5s",
            f"--initial-advertise-peer-urls=https://{adv}:2380",
            f"--initial-cluster={n.name}=https://{adv}:2380",
            f"--key-file={PKI}/etcd/server.key",
            f"--listen-client-urls=https://127.0.0.1:2379,https://{adv}:2379",
            "--listen-metrics-urls=http://127.0.0.1:2381",
            f"--listen-peer-urls=https://{adv}:2380",
            f"--name={n.name}",
            f"--peer-cert-file={PKI}/etcd/peer.crt",
            "--peer-client-cert-auth=true",
            f"--peer-key-file={PKI}/etcd/peer.key",
            f"--peer-trusted-ca-file={PKI}/etcd/ca.crt",
            "--snapshot-count=10000",
            f"--trusted-ca-file={PKI}/etcd/ca.crt",
        ]
    )


def command(component: str, n: NodeFacts) -> list[str]:
    """The static pod's `command:`: the binary, then its flags sorted by name."""
    if component == "kube-apiserver":
        flags = apiserver_flags(n)
    elif component == "kube-controller-manager":
        flags = controller_manager_flags()
    elif component == "kube-scheduler":
        flags = scheduler_flags()
    elif component == "etcd":
        flags = etcd_flags(n)
    else:
        raise ValueError(f"not a kubeadm static pod: {component!r}")
    return [component, *flags]


# --- static pods ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostPath:
    name: str
    path: str
    type: str  # DirectoryOrCreate or FileOrCreate
    read_only: bool


@dataclass(frozen=True, slots=True)
class Probes:
    host: str
    port: int
    scheme: str
    liveness: str
    readiness: str | None
    startup: str


def _ca_volumes(n: NodeFacts) -> list[HostPath]:
    return [
        HostPath(d.strip("/").replace("/", "-"), d, "DirectoryOrCreate", read_only=True)
        for d in CA_DIRS
        if d in n.ca_dirs
    ]


def volumes(component: str, n: NodeFacts) -> list[HostPath]:
    """The pod's hostPath volumes in kubeadm's order for its volumeMounts (the `volumes:` list
    is always sorted by name)."""
    certs = [
        HostPath("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", read_only=True),
        HostPath("k8s-certs", PKI, "DirectoryOrCreate", read_only=True),
    ]
    if component == "kube-apiserver":
        return sorted([*certs, *_ca_volumes(n)], key=lambda v: v.name)
    if component == "kube-controller-manager":
        return sorted(
            [
                *certs,
                *_ca_volumes(n),
                HostPath("kubeconfig", f"{ETC}/controller-manager.conf", "FileOrCreate", True),
                HostPath("flexvolume-dir", FLEXVOLUME_DIR, "DirectoryOrCreate", read_only=False),
            ],
            key=lambda v: v.name,
        )
    if component == "kube-scheduler":
        return [HostPath("kubeconfig", f"{ETC}/scheduler.conf", "FileOrCreate", read_only=True)]
    # etcd lists its mounts data first, then certificates (not sorted, unlike its volumes)
    return [
        HostPath("etcd-data", ETCD_DATA, "DirectoryOrCreate", read_only=False),
        HostPath("etcd-certs", f"{PKI}/etcd", "DirectoryOrCreate", read_only=False),
    ]


def probes(component: str, n: NodeFacts) -> Probes:
    local = "127.0.0.1"
    return {
        "kube-apiserver": Probes(n.address, API_PORT, "HTTPS", "/livez", "/readyz", "/livez"),
        "kube-controller-manager": Probes(local, 10257, "HTTPS", "/healthz", None, "/healthz"),
        "kube-scheduler": Probes(local, 10259, "HTTPS", "/healthz", None, "/healthz"),
        "etcd": Probes(local, 2381, "HTTP", "/livez", "/readyz", "/readyz"),
    }[component]


REQUESTS = {
    "kube-apiserver": {"cpu": "250m"},
    "kube-controller-manager": {"cpu": "200m"},
    "kube-scheduler": {"cpu": "100m"},
    "etcd": {"cpu": "100m", "memory": "100Mi"},
}


def image(component: str) -> str:
    return ETCD_IMAGE if component == "etcd" else f"registry.k8s.io/{component}:{K8S_VERSION}"


def pod_annotations(component: str, n: NodeFacts) -> dict[str, str]:
    if component == "kube-apiserver":
        key = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"
        return {key: f"{n.address}:{API_PORT}"}
    if component == "etcd":
        return {"kubeadm.kubernetes.io/etcd.advertise-client-urls": f"https://{n.address}:2379"}
    return {}


def _probe(p: Probes, path: str, kind: str) -> dict[str, Any]:
    get = {"host": p.host, "path": path, "port": p.port, "scheme": p.scheme}
    if kind == "readiness":
        return {"failureThreshold": 3, "httpGet": get, "periodSeconds": 1, "timeoutSeconds": 15}
    return {
        "failureThreshold": 8 if kind == "liveness" else 24,
        "httpGet": get,
        "initialDelaySeconds": 10,
        "periodSeconds": 10,
        "timeoutSeconds": 15,
    }


def pod(component: str, n: NodeFacts) -> dict[str, Any]:
    """The static pod as kubeadm serialises it (the YAML writer sorts the keys)."""
    vols = volumes(component, n)
    p = probes(component, n)
    container: dict[str, Any] = {
        "command": command(component, n),
        "image": image(component),
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": _probe(p, p.liveness, "liveness"),
        "name": component,
        "resources": {"requests": dict(REQUESTS[component])},
        "startupProbe": _probe(p, p.startup, "startup"),
        "volumeMounts": [
            {"mountPath": v.path, "name": v.name, **({"readOnly": True} if v.read_only else {})}
            for v in vols
        ],
    }
    if p.readiness is not None:
        container["readinessProbe"] = _probe(p, p.readiness, "readiness")
    metadata: dict[str, Any] = {
        "creationTimestamp": None,
        "labels": {"component": component, "tier": "control-plane"},
        "name": component,
        "namespace": "kube-system",
    }
    if pod_annotations(component, n):
        metadata["annotations"] = pod_annotations(component, n)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [container],
            "hostNetwork": True,
            "priority": 2000001000,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [
                {"hostPath": {"path": v.path, "type": v.type}, "name": v.name}
                for v in sorted(vols, key=lambda v: v.name)
            ],
        },
        "status": {},
    }


def to_yaml(data: Any) -> str:
    """YAML as Kubernetes' writers emit it: block style, keys sorted, lists not indented under
    their key, no line folding."""
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, width=10_000)


def manifest_text(component: str, n: NodeFacts) -> str:
    return to_yaml(pod(component, n))


# --- certificates --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cert:
    """One certificate and its key, `<stem>.crt` / `<stem>.key`."""

    stem: str  # path without suffix, e.g. /etc/kubernetes/pki/etcd/server
    issuer: str | None  # the issuing CA's stem; None: a self-signed CA
    cn: str
    org: str | None = None
    eku: tuple[str, ...] = ()  # serverAuth, clientAuth
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    key_type: str = "rsa"  # rsa (2048) or ec (P-256)
    days: int = 365  # kubeadm: CAs 87600h, leaves 8760h
    backdate_s: int = 300  # NotBefore this far before now

    @property
    def is_ca(self) -> bool:
        return self.issuer is None

    @property
    def subject(self) -> str:
        """openssl's -subj: O before CN, as Go orders a pkix.Name."""
        return (f"/O={self.org}" if self.org else "") + f"/CN={self.cn}"


def _ca(stem: str, cn: str) -> Cert:
    return Cert(stem, None, cn, dns=(cn,), days=3650)


def pki_certs(n: NodeFacts) -> tuple[Cert, ...]:
    """The 11 certificate/key pairs of /etc/kubernetes/pki (sa.key/sa.pub are a bare key pair)."""
    ca, fp, etcd = f"{PKI}/ca", f"{PKI}/front-proxy-ca", f"{PKI}/etcd/ca"
    node_dns, node_ips = (n.name, "localhost"), (n.address, "127.0.0.1", "::1")
    both = ("serverAuth", "clientAuth")
    api_dns = (n.name, *_service_names())
    return (
        _ca(ca, "kubernetes"),
        Cert(f"{PKI}/apiserver", ca, "kube-apiserver", eku=("serverAuth",), dns=api_dns,
             ips=(SERVICE_IP, n.address)),
        Cert(f"{PKI}/apiserver-kubelet-client", ca, "kube-apiserver-kubelet-client",
             org="kubeadm:cluster-admins", eku=("clientAuth",)),
        _ca(fp, "front-proxy-ca"),
        Cert(f"{PKI}/front-proxy-client", fp, "front-proxy-client", eku=("clientAuth",)),
        _ca(etcd, "etcd-ca"),
        Cert(f"{PKI}/etcd/server", etcd, n.name, eku=both, dns=node_dns, ips=node_ips),
        Cert(f"{PKI}/etcd/peer", etcd, n.name, eku=both, dns=node_dns, ips=node_ips),
        Cert(f"{PKI}/etcd/healthcheck-client", etcd, "kube-etcd-healthcheck-client",
             eku=("clientAuth",)),
        Cert(f"{PKI}/apiserver-etcd-client", etcd, "kube-apiserver-etcd-client",
             eku=("clientAuth",)),
    )  # fmt: skip


def _service_names() -> tuple[str, ...]:
    return (
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    )


def openssl_extensions(c: Cert) -> str:
    """The [ext] section `openssl ca` signs `c` with: what Go's x509 writes for kubeadm's
    templates (a subject key id on CAs only; leaves name their issuer's key)."""
    lines = ["[ext]"]
    if c.is_ca:
        lines += [
            "basicConstraints = critical, CA:TRUE",
            "keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign",
            "subjectKeyIdentifier = hash",
        ]
    else:
        usage = "digitalSignature" if c.key_type == "ec" else "digitalSignature, keyEncipherment"
        lines += [
            "basicConstraints = critical, CA:FALSE",
            f"keyUsage = critical, {usage}",
            "subjectKeyIdentifier = none",
            "authorityKeyIdentifier = keyid",
        ]
        if c.eku:
            lines.append(f"extendedKeyUsage = {', '.join(c.eku)}")
    sans = [f"DNS:{d}" for d in c.dns] + [f"IP:{i}" for i in c.ips]
    if sans:
        lines.append(f"subjectAltName = {', '.join(sans)}")
    return "\n".join(lines) + "\n"


# --- kubeconfigs ---------------------------------------------------------------------------------

CA_DATA = "CASEMATE_FILL_CA_DATA"  # filled in the node: base64 of pki/ca.crt
CERT_DATA = "CASEMATE_FILL_CERT_DATA"  # base64 of the client certificate
KEY_DATA = "CASEMATE_FILL_KEY_DATA"  # base64 of the client key


@dataclass(frozen=True, slots=True)
class Kubeconfig:
    file: str  # e.g. admin.conf, under /etc/kubernetes
    user: str  # the client certificate's CN
    org: str | None
    embedded: bool = True  # False: kubelet.conf after kubelet-finalize points at the kubelet's pem

    @property
    def path(self) -> str:
        return f"{ETC}/{self.file}"


def kubeconfigs(n: NodeFacts) -> tuple[Kubeconfig, ...]:
    return (
        Kubeconfig("admin.conf", "kubernetes-admin", "kubeadm:cluster-admins"),
        Kubeconfig("super-admin.conf", "kubernetes-super-admin", "system:masters"),
        Kubeconfig("controller-manager.conf", "system:kube-controller-manager", None),
        Kubeconfig("scheduler.conf", "system:kube-scheduler", None),
        Kubeconfig("kubelet.conf", f"system:node:{n.name}", "system:nodes", embedded=False),
    )


def kubeconfig_cert(kc: Kubeconfig) -> Cert:
    """The embedded client certificate of `kc` (stem is a name in the layout's scratch dir)."""
    return Cert(kc.file.removesuffix(".conf"), f"{PKI}/ca", kc.user, org=kc.org,
                eku=("clientAuth",))  # fmt: skip


def kubeconfig_text(kc: Kubeconfig, n: NodeFacts) -> str:
    """The kubeconfig as client-go writes it, with CA_DATA, CERT_DATA and KEY_DATA left for the
    node to fill in."""
    if kc.embedded:
        user = {"client-certificate-data": CERT_DATA, "client-key-data": KEY_DATA}
    else:
        user = {"client-certificate": KUBELET_CLIENT_CURRENT, "client-key": KUBELET_CLIENT_CURRENT}
    context = f"{kc.user}@{CLUSTER_NAME}"
    return to_yaml(
        {
            "apiVersion": "v1",
            "clusters": [
                {
                    "cluster": {"certificate-authority-data": CA_DATA, "server": n.server},
                    "name": CLUSTER_NAME,
                }
            ],
            "contexts": [{"context": {"cluster": CLUSTER_NAME, "user": kc.user}, "name": context}],
            "current-context": context,
            "kind": "Config",
            "preferences": {},
            "users": [{"name": kc.user, "user": user}],
        }
    )


# --- what the kubelet wrote -----------------------------------------------------------------------


def kubelet_client_cert(n: NodeFacts) -> Cert:
    """The kubelet's rotated client certificate: its own P-256 key, signed through a CSR by the
    controller-manager with the cluster CA (5 min backdate, 1 year)."""
    return Cert("kubelet-client", f"{PKI}/ca", f"system:node:{n.name}", org="system:nodes",
                eku=("clientAuth",), key_type="ec")  # fmt: skip


def kubelet_serving_certs(n: NodeFacts, unix_time: int) -> tuple[Cert, Cert]:
    """The kubelet's self-signed serving pair (client-go's GenerateSelfSignedCertKey): a
    throw-away CA `<NODE>-ca@<t>` and the certificate `<NODE>@<t>` it signs, both valid from an
    hour ago for a year; kubelet.crt holds the certificate, then that CA."""
    ca = Cert("kubelet-ca", None, f"{n.name}-ca@{unix_time}", backdate_s=3600)
    leaf = Cert("kubelet", "kubelet-ca", f"{n.name}@{unix_time}", eku=("serverAuth",),
                dns=(n.name,), backdate_s=3600)  # fmt: skip
    return ca, leaf


KUBELET_CONFIG = """\
apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerRuntimeEndpoint: ""
cpuManagerReconcilePeriod: 0s
crashLoopBackOff: {}
evictionPressureTransitionPeriod: 0s
fileCheckFrequency: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
httpCheckFrequency: 0s
imageMaximumGCAge: 0s
imageMinimumGCAge: 0s
kind: KubeletConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {}
nodeStatusReportFrequency: 0s
nodeStatusUpdateFrequency: 0s
rotateCertificates: true
runtimeRequestTimeout: 0s
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
streamingConnectionIdleTimeout: 0s
syncFrequency: 0s
volumeStatsAggPeriod: 0s
"""  # no resolvConf: kubeadm writes it only when systemd-resolved is active, and it is not here

KUBEADM_FLAGS_ENV = (
    'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock'
    f' --pod-infra-container-image={PAUSE_IMAGE}"\n'
)

KUBELET_SERVICE = """\
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""

KUBEADM_DROPIN = """\
# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""  # noqa: E501 - the packaged file's lines

ETC_DEFAULT_KUBELET = "KUBELET_EXTRA_ARGS=\n"


# --- the file table -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of the layout: kind d (directory), f (file) or l (symlink), its octal mode
    (None for a symlink) and owner. A `*` in the path matches the kubelet's time-stamped name."""

    path: str
    kind: str
    mode: str | None
    owner: str = "root:root"


def layout_entries(n: NodeFacts) -> tuple[Entry, ...]:
    """Every path the k8s profile writes, with the mode kubeadm, the debs or the kubelet leave."""
    d = [
        Entry(ETC, "d", "0755"),
        Entry(MANIFESTS, "d", "0755"),  # shipped by the kubelet deb (kubeadm alone would use 0700)
        Entry(PKI, "d", "0755"),
        Entry(f"{PKI}/etcd", "d", "0755"),
        Entry(KUBELET_DIR, "d", "0755"),
        Entry(KUBELET_PKI, "d", "0755"),
        Entry(ETCD_DATA, "d", "0700"),
        Entry(f"{UNIT_DIR}/kubelet.service.d", "d", "0755"),
        # the controller-manager's flexvolume hostPath (DirectoryOrCreate: made when it starts)
        Entry(FLEXVOLUME_DIR, "d", "0755"),
    ]
    f = [
        Entry(f"{MANIFESTS}/.kubelet-keep", "f", "0644"),
        *(Entry(f"{MANIFESTS}/{c}.yaml", "f", "0600") for c in COMPONENTS),
        Entry(f"{PKI}/sa.key", "f", "0600"),
        Entry(f"{PKI}/sa.pub", "f", "0600"),
    ]
    for c in pki_certs(n):
        f += [Entry(f"{c.stem}.crt", "f", "0644"), Entry(f"{c.stem}.key", "f", "0600")]
    f += [Entry(kc.path, "f", "0600") for kc in kubeconfigs(n)]
    f += [
        Entry(f"{KUBELET_DIR}/.kubelet-keep", "f", "0644"),
        Entry(f"{KUBELET_DIR}/config.yaml", "f", "0644"),
        Entry(f"{KUBELET_DIR}/kubeadm-flags.env", "f", "0644"),
        Entry(f"{KUBELET_PKI}/kubelet-client-*.pem", "f", "0600"),
        Entry(KUBELET_CLIENT_CURRENT, "l", None),
        Entry(f"{KUBELET_PKI}/kubelet.crt", "f", "0644"),
        Entry(f"{KUBELET_PKI}/kubelet.key", "f", "0600"),
        Entry(f"{UNIT_DIR}/kubelet.service", "f", "0644"),
        Entry(f"{UNIT_DIR}/kubelet.service.d/10-kubeadm.conf", "f", "0644"),
        Entry("/etc/default/kubelet", "f", "0644"),
    ]
    return (*d, *f)
