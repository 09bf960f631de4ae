"""The k8s profile on a real node: the kubeadm v1.32 layout on disk (files, modes, owners, flags,
PKI), a real etcd with TLS and client-certificate auth, containerd instead of Docker, and the
lab's stand-in for the kubelet restarting etcd when its static pod manifest changes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from casemate.lab import kubeadm
from casemate.lab.layout import facts_of

from .conftest import Lab, lab_name, open_lab

LAB = lab_name("k8slayout")
NODE = f"casemate-{LAB}-1"
PKI = "/etc/kubernetes/pki"
MANIFEST = "/etc/kubernetes/manifests/etcd.yaml"
SERVICE = "casemate-lab-kubelet-standin-etcd.service"
RESTARTER = "casemate-lab-kubelet-standin-etcd-restart.service"
STATE = "/run/casemate-lab/kubelet-standin-etcd.json"

# Every path kubeadm init, its debs and the kubelet leave, restated from the kubeadm v1.32
# reference: (file type as stat prints it, octal mode). All root:root.
DIR, FILE, LINK = "directory", "regular file", "symbolic link"
LAYOUT = {
    "/etc/kubernetes": (DIR, "755"),
    "/etc/kubernetes/manifests": (DIR, "755"),
    "/etc/kubernetes/manifests/.kubelet-keep": ("regular empty file", "644"),
    **{f"/etc/kubernetes/manifests/{c}.yaml": (FILE, "600") for c in kubeadm.COMPONENTS},
    PKI: (DIR, "755"),
    f"{PKI}/etcd": (DIR, "755"),
    **{
        f"{PKI}/{stem}.{ext}": (FILE, "644" if ext == "crt" else "600")
        for stem in (
            "ca",
            "apiserver",
            "apiserver-kubelet-client",
            "front-proxy-ca",
            "front-proxy-client",
            "etcd/ca",
            "etcd/server",
            "etcd/peer",
            "etcd/healthcheck-client",
            "apiserver-etcd-client",
        )
        for ext in ("crt", "key")
    },
    f"{PKI}/sa.key": (FILE, "600"),
    f"{PKI}/sa.pub": (FILE, "600"),
    **{
        f"/etc/kubernetes/{c}.conf": (FILE, "600")
        for c in ("admin", "super-admin", "controller-manager", "scheduler", "kubelet")
    },
    "/var/lib/kubelet": (DIR, "755"),
    "/var/lib/kubelet/.kubelet-keep": ("regular empty file", "644"),
    "/var/lib/kubelet/config.yaml": (FILE, "644"),
    "/var/lib/kubelet/kubeadm-flags.env": (FILE, "644"),
    "/var/lib/kubelet/pki": (DIR, "755"),
    "/var/lib/kubelet/pki/kubelet-client-*.pem": (FILE, "600"),
    "/var/lib/kubelet/pki/kubelet-client-current.pem": (LINK, "777"),
    "/var/lib/kubelet/pki/kubelet.crt": (FILE, "644"),
    "/var/lib/kubelet/pki/kubelet.key": (FILE, "600"),
    "/var/lib/etcd": (DIR, "700"),
    "/lib/systemd/system/kubelet.service": (FILE, "644"),
    "/lib/systemd/system/kubelet.service.d": (DIR, "755"),
    "/lib/systemd/system/kubelet.service.d/10-kubeadm.conf": (FILE, "644"),
    "/etc/default/kubelet": (FILE, "644"),
}
LEAVES = {  # stem: (issuer stem, subject, extended key usages)
    "apiserver": ("ca", "CN = kube-apiserver", "TLS Web Server Authentication"),
    "apiserver-kubelet-client": (
        "ca", "O = kubeadm:cluster-admins, CN = kube-apiserver-kubelet-client", "TLS Web Client Authentication",
    ),
    "front-proxy-client": ("front-proxy-ca", "CN = front-proxy-client", "TLS Web Client Authentication"),
    "etcd/server": ("etcd/ca", f"CN = {NODE}", "TLS Web Server Authentication, TLS Web Client Authentication"),
    "etcd/peer": ("etcd/ca", f"CN = {NODE}", "TLS Web Server Authentication, TLS Web Client Authentication"),
    "etcd/healthcheck-client": ("etcd/ca", "CN = kube-etcd-healthcheck-client", "TLS Web Client Authentication"),
    "apiserver-etcd-client": ("etcd/ca", "CN = kube-apiserver-etcd-client", "TLS Web Client Authentication"),
}  # fmt: skip
CAS = {"ca": "kubernetes", "front-proxy-ca": "front-proxy-ca", "etcd/ca": "etcd-ca"}

# Talks HTTPS to etcd's /health from inside the node, with or without a client certificate.
ETCD_GET = r"""
import json, socket, ssl, sys
host, cert = sys.argv[1], sys.argv[2:]
ctx = ssl.create_default_context(cafile="/etc/kubernetes/pki/etcd/ca.crt")
if cert:
    ctx.load_cert_chain(cert[0], cert[1])
try:
    with socket.create_connection((host, 2379), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    print(json.dumps({"body": data.split(b"\r\n\r\n", 1)[-1].decode()}))
except (ssl.SSLError, OSError) as e:
    print(json.dumps({"refused": str(e)}))
"""


@pytest.fixture(scope="module")
def k8s(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, LAB, 1, "--profile", "k8s") as bed:
        yield bed


def address(lab: Lab) -> str:
    return lab.sh(NODE, "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1").strip()


def facts(lab: Lab) -> kubeadm.NodeFacts:
    probe = "hostname; for d in /etc/ca-certificates /usr/share/ca-certificates /usr/local/share/ca-certificates; do echo $d; done"
    return facts_of(lab.sh(NODE, probe), address(lab))


def etcd_pid(lab: Lab) -> str:
    return lab.sh(NODE, "pidof etcd || true").strip()


def cmdline(lab: Lab, pid: str) -> list[str]:
    return lab.sh(NODE, f"cat /proc/{pid}/cmdline").split("\0")[:-1]


def wait_for(what: str, probe: Any, timeout: float = 60) -> Any:
    """Poll `probe` until it returns something truthy (no timing is asserted, only an outcome)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = probe()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}")


def etcd_get(lab: Lab, host: str, *cert: str) -> dict[str, str]:
    out = lab.sh(NODE, f"python3 - {host} {' '.join(cert)}", stdin=ETCD_GET)
    loaded: dict[str, str] = json.loads(out)
    return loaded


def healthcheck_cert() -> tuple[str, str]:
    return f"{PKI}/etcd/healthcheck-client.crt", f"{PKI}/etcd/healthcheck-client.key"


# --- the files -------------------------------------------------------------------------------------


def test_every_path_has_its_type_mode_and_owner(k8s: Lab) -> None:
    out = k8s.sh(NODE, "stat -c '%n|%F|%a|%U:%G' " + " ".join(LAYOUT))
    seen = {}
    for line in out.splitlines():
        name, kind, mode, owner = line.split("|")
        seen["/var/lib/kubelet/pki/kubelet-client-*.pem" if "kubelet-client-2" in name else name] = (
            kind, mode, owner,
        )  # fmt: skip
    assert seen == {path: (kind, mode, "root:root") for path, (kind, mode) in LAYOUT.items()}


def test_no_etcd_user_and_nothing_else_in_the_manifest_dir(k8s: Lab) -> None:
    assert k8s.sh(NODE, "getent passwd etcd || getent group etcd || echo none").strip() == "none"
    listed = k8s.sh(NODE, "ls -A /etc/kubernetes/manifests").split()
    assert sorted(listed) == sorted([".kubelet-keep", *(f"{c}.yaml" for c in kubeadm.COMPONENTS)])
    top = k8s.sh(NODE, "ls -A /etc/kubernetes").split()
    assert sorted(top) == sorted(
        ["admin.conf", "controller-manager.conf", "kubelet.conf", "manifests", "pki",
         "scheduler.conf", "super-admin.conf"]
    )  # fmt: skip


def test_kubelet_files(k8s: Lab) -> None:
    cfg = yaml.safe_load(k8s.sh(NODE, "cat /var/lib/kubelet/config.yaml"))
    assert cfg == yaml.safe_load(kubeadm.KUBELET_CONFIG)
    assert "resolvConf" not in cfg
    assert k8s.sh(NODE, "cat /var/lib/kubelet/kubeadm-flags.env") == kubeadm.KUBEADM_FLAGS_ENV
    assert k8s.sh(NODE, "cat /etc/default/kubelet") == "KUBELET_EXTRA_ARGS=\n"
    # the unit is installed where the debs put it, but nothing runs or restarts: no kubelet binary
    state = k8s.sh(
        NODE, "systemctl is-enabled kubelet.service; systemctl is-active kubelet.service || true"
    )
    assert state.split() == ["disabled", "inactive"]
    assert k8s.sh(NODE, "test -e /usr/bin/kubelet || echo absent").strip() == "absent"
    dropin = k8s.sh(NODE, "systemctl show -p DropInPaths kubelet.service").strip()
    # merged /usr: the debs' /lib/systemd/system is /usr/lib/systemd/system, as systemd says
    assert dropin == "DropInPaths=/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
    assert k8s.sh(NODE, "readlink /lib").strip() == "usr/lib"


def test_manifests_parse_and_carry_kubeadm_flags(k8s: Lab) -> None:
    n = facts(k8s)
    assert n.name == NODE
    for component in kubeadm.COMPONENTS:
        pod = yaml.safe_load(k8s.sh(NODE, f"cat /etc/kubernetes/manifests/{component}.yaml"))
        (container,) = pod["spec"]["containers"]
        command = container["command"]
        assert command[0] == component
        assert set(command[1:]) == set(kubeadm.command(component, n)[1:]), component
        assert command[1:] == sorted(command[1:])
        assert pod["metadata"]["creationTimestamp"] is None
        assert pod["status"] == {}
    etcd = yaml.safe_load(k8s.sh(NODE, f"cat {MANIFEST}"))["spec"]["containers"][0]["command"]
    adv = address(k8s)
    for flag in ("--client-cert-auth=true", "--peer-client-cert-auth=true", f"--name={NODE}",
                 f"--listen-client-urls=https://127.0.0.1:2379,https://{adv}:2379"):  # fmt: skip
        assert flag in etcd
    api = yaml.safe_load(k8s.sh(NODE, "cat /etc/kubernetes/manifests/kube-apiserver.yaml"))
    assert f"--advertise-address={adv}" in api["spec"]["containers"][0]["command"]


# --- the PKI -------------------------------------------------------------------------------------


def x509(lab: Lab, path: str, *fields: str) -> str:
    return lab.sh(NODE, f"openssl x509 -in {path} -noout {' '.join(fields)}")


def lasts(lab: Lab, crt: str, days: int) -> bool:
    """Whether `crt` is still valid `days` days from now."""
    out = lab.sh(NODE, f"openssl x509 -in {crt} -noout -checkend {days * 86400} || true")
    return out.strip() == "Certificate will not expire"


def same_public_key(lab: Lab, crt: str, key: str) -> bool:
    from_cert = lab.sh(NODE, f"openssl x509 -in {crt} -noout -pubkey")
    return from_cert == lab.sh(NODE, f"openssl pkey -in {key} -pubout")


def test_cas(k8s: Lab) -> None:
    for stem, cn in CAS.items():
        crt = f"{PKI}/{stem}.crt"
        assert x509(k8s, crt, "-subject", "-issuer").splitlines() == [
            f"subject=CN = {cn}",
            f"issuer=CN = {cn}",
        ]
        ext = x509(k8s, crt, "-ext", "basicConstraints,keyUsage,subjectAltName")
        assert "critical\n    CA:TRUE" in ext
        assert "Digital Signature, Key Encipherment, Certificate Sign" in ext
        assert f"DNS:{cn}" in ext
        assert k8s.sh(NODE, f"openssl verify -CAfile {crt} {crt}").strip() == f"{crt}: OK"
        assert lasts(k8s, crt, 9 * 365) and not lasts(k8s, crt, 11 * 365)  # 10 years


def test_leaves_verify_against_their_ca(k8s: Lab) -> None:
    adv = address(k8s)
    for stem, (issuer, subject, eku) in LEAVES.items():
        crt = f"{PKI}/{stem}.crt"
        ok = k8s.sh(NODE, f"openssl verify -CAfile {PKI}/{issuer}.crt {crt}").strip()
        assert ok == f"{crt}: OK"
        assert x509(k8s, crt, "-subject").strip() == f"subject={subject}"
        ext = x509(k8s, crt, "-ext", "basicConstraints,extendedKeyUsage,keyUsage")
        assert "CA:FALSE" in ext and eku in ext and "Digital Signature, Key Encipherment" in ext
        assert x509(k8s, crt, "-text").count("Public-Key: (2048 bit)") == 1
        key = f"{PKI}/{stem}.key"
        assert k8s.sh(NODE, f"head -1 {key}").strip() == "-----BEGIN RSA PRIVATE KEY-----"
        assert same_public_key(k8s, crt, key)
    sans = x509(k8s, f"{PKI}/apiserver.crt", "-ext", "subjectAltName")
    assert sans.split("\n", 1)[1].strip() == (
        f"DNS:{NODE}, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, "
        f"DNS:kubernetes.default.svc.cluster.local, IP Address:10.96.0.1, IP Address:{adv}"
    )
    for stem in ("etcd/server", "etcd/peer"):
        sans = x509(k8s, f"{PKI}/{stem}.crt", "-ext", "subjectAltName")
        assert sans.split("\n", 1)[1].strip() == (
            f"DNS:{NODE}, DNS:localhost, IP Address:{adv}, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"
        )
    assert "Subject Alternative Name" not in x509(
        k8s, f"{PKI}/etcd/healthcheck-client.crt", "-text"
    )
    # a leaf is valid for a year, from 5 minutes before it was made
    crt = f"{PKI}/apiserver.crt"
    assert lasts(k8s, crt, 364) and not lasts(k8s, crt, 366)
    began = x509(k8s, crt, "-startdate").split("=", 1)[1].strip()
    backdate = int(k8s.sh(NODE, f"echo $(( $(stat -c %Y {crt}) - $(date -d '{began}' +%s) ))"))
    assert 295 <= backdate <= 330


def test_service_account_keys(k8s: Lab) -> None:
    assert k8s.sh(NODE, f"head -1 {PKI}/sa.key").strip() == "-----BEGIN RSA PRIVATE KEY-----"
    assert k8s.sh(NODE, f"head -1 {PKI}/sa.pub").strip() == "-----BEGIN PUBLIC KEY-----"
    assert k8s.sh(NODE, f"openssl pkey -in {PKI}/sa.key -pubout") == k8s.sh(
        NODE, f"cat {PKI}/sa.pub"
    )


def test_kubeconfigs_embed_ca_signed_client_certs(k8s: Lab) -> None:
    adv = address(k8s)
    users = {
        "admin.conf": "O = kubeadm:cluster-admins, CN = kubernetes-admin",
        "super-admin.conf": "O = system:masters, CN = kubernetes-super-admin",
        "controller-manager.conf": "CN = system:kube-controller-manager",
        "scheduler.conf": "CN = system:kube-scheduler",
    }
    ca_data = k8s.sh(NODE, f"base64 -w0 {PKI}/ca.crt")
    for conf, subject in users.items():
        doc = yaml.safe_load(k8s.sh(NODE, f"cat /etc/kubernetes/{conf}"))
        cluster = doc["clusters"][0]
        assert cluster == {"cluster": {"certificate-authority-data": ca_data, "server": f"https://{adv}:6443"},
                           "name": "kubernetes"}  # fmt: skip
        user = doc["users"][0]["user"]
        k8s.sh(NODE, "base64 -d > /root/c.crt", stdin=user["client-certificate-data"])
        k8s.sh(NODE, "base64 -d > /root/c.key", stdin=user["client-key-data"])
        try:
            assert (
                k8s.sh(NODE, f"openssl verify -CAfile {PKI}/ca.crt /root/c.crt").strip()
                == "/root/c.crt: OK"
            )
            assert x509(k8s, "/root/c.crt", "-subject").strip() == f"subject={subject}"
            assert "TLS Web Client Authentication" in x509(
                k8s, "/root/c.crt", "-ext", "extendedKeyUsage"
            )
            assert lasts(k8s, "/root/c.crt", 364) and not lasts(k8s, "/root/c.crt", 366)
            assert same_public_key(k8s, "/root/c.crt", "/root/c.key")
        finally:
            k8s.sh(NODE, "rm -f /root/c.crt /root/c.key")
        assert doc["current-context"] == f"{doc['users'][0]['name']}@kubernetes"
    kubelet = yaml.safe_load(k8s.sh(NODE, "cat /etc/kubernetes/kubelet.conf"))
    pem = "/var/lib/kubelet/pki/kubelet-client-current.pem"
    assert kubelet["users"] == [
        {"name": f"system:node:{NODE}", "user": {"client-certificate": pem, "client-key": pem}}
    ]
    assert k8s.sh(NODE, f"openssl verify -CAfile {PKI}/ca.crt {pem}").strip() == f"{pem}: OK"
    assert (
        x509(k8s, pem, "-subject").strip() == f"subject=O = system:nodes, CN = system:node:{NODE}"
    )
    assert k8s.sh(NODE, f"grep -c 'BEGIN EC PRIVATE KEY' {pem}").strip() == "1"


def test_kubelet_serving_pair(k8s: Lab) -> None:
    crt = "/var/lib/kubelet/pki/kubelet.crt"
    subject = x509(k8s, crt, "-subject").strip()
    assert subject.startswith(f"subject=CN = {NODE}@")
    assert (
        k8s.sh(NODE, f"grep -c 'BEGIN CERTIFICATE' {crt}").strip() == "2"
    )  # the cert, then its CA
    assert same_public_key(k8s, crt, "/var/lib/kubelet/pki/kubelet.key")
    assert same_public_key(k8s, pem := "/var/lib/kubelet/pki/kubelet-client-current.pem", pem)


# --- etcd, containerd, docker --------------------------------------------------------------------


def test_etcd_answers_only_clients_with_a_certificate(k8s: Lab) -> None:
    with_cert = etcd_get(k8s, "127.0.0.1", *healthcheck_cert())
    assert json.loads(with_cert["body"])["health"] == "true"  # 3.5 adds "reason"
    via_address = etcd_get(k8s, address(k8s), *healthcheck_cert())  # the server cert's IP SAN
    assert json.loads(via_address["body"])["health"] == "true"
    without = etcd_get(k8s, "127.0.0.1")
    # refused in the handshake: "bad certificate" (etcd 3.4, bookworm) or "certificate required"
    # (etcd 3.5, trixie)
    refused = without.get("refused", "").lower()
    assert "bad certificate" in refused or "certificate required" in refused, without
    crt, key = healthcheck_cert()
    health = k8s.sh(NODE, f"ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert={PKI}/etcd/ca.crt "
                          f"--cert={crt} --key={key} endpoint health 2>&1")  # fmt: skip
    assert "is healthy" in health


def test_etcd_runs_the_manifest_command_as_root(k8s: Lab) -> None:
    pid = etcd_pid(k8s)
    assert pid and " " not in pid
    manifest = yaml.safe_load(k8s.sh(NODE, f"cat {MANIFEST}"))
    assert cmdline(k8s, pid) == manifest["spec"]["containers"][0]["command"]
    assert k8s.sh(NODE, f"ps -o user= -p {pid}").strip() == "root"
    assert k8s.sh(NODE, "etcd --version | head -1").startswith("etcd Version: 3.")
    main = k8s.sh(NODE, f"systemctl show -p MainPID --value {SERVICE}").strip()
    assert main == pid


def test_containerd_runs_and_docker_is_masked(k8s: Lab) -> None:
    assert "Server:" in k8s.sh(NODE, "ctr version")
    units = "docker.service docker.socket"
    assert k8s.sh(NODE, f"systemctl is-enabled {units} || true").split() == ["masked", "masked"]
    assert k8s.sh(NODE, f"systemctl is-active {units} || true").split() == ["inactive", "inactive"]
    assert k8s.sh(NODE, "systemctl is-active containerd").strip() == "active"
    status = k8s.casemate("lab", "status", "--name", LAB, check=0).stdout
    assert "k8s" in status and "ready" in status


def test_inventory_and_a_second_lab_up_keeps_the_node(k8s: Lab) -> None:
    inv = yaml.safe_load(k8s.inventory.read_text())
    hosts = {NODE: {"ansible_host": NODE}}
    assert inv["all"]["children"] == {
        "k8s_control_plane": {"hosts": hosts},
        "k8s_workers": {"hosts": hosts},
        "etcd": {"hosts": hosts},
    }
    assert inv["all"]["vars"]["ansible_connection"] == "docker"
    before = k8s.sh(NODE, f"sha256sum {PKI}/ca.crt /etc/kubernetes/admin.conf; pidof etcd")
    k8s.casemate("lab", "up", "--name", LAB, "--nodes", "1", "--profile", "k8s", check=0)
    assert k8s.sh(NODE, f"sha256sum {PKI}/ca.crt /etc/kubernetes/admin.conf; pidof etcd") == before


# --- the stand-in restarts etcd when its manifest changes ----------------------------------------


def edit_manifest(lab: Lab, text: str) -> None:
    """Replace etcd.yaml the way Ansible does: a temporary file in the directory, then a rename."""
    lab.sh(NODE, f"cat > /etc/kubernetes/manifests/.etcd.yaml.new && chmod 0600 "
                 f"/etc/kubernetes/manifests/.etcd.yaml.new && mv /etc/kubernetes/manifests/.etcd.yaml.new {MANIFEST}",
           stdin=text)  # fmt: skip


def test_editing_the_manifest_restarts_etcd_with_the_new_flags(k8s: Lab) -> None:
    original = k8s.sh(NODE, f"cat {MANIFEST}")
    old_pid = etcd_pid(k8s)
    pod = yaml.safe_load(original)
    command = pod["spec"]["containers"][0]["command"]
    pod["spec"]["containers"][0]["command"] = [
        "--snapshot-count=10001" if f == "--snapshot-count=10000" else f for f in command
    ]
    edit_manifest(k8s, yaml.safe_dump(pod))
    pid = wait_for("etcd with the new flag", lambda: (p := etcd_pid(k8s)) and p != old_pid and p)
    assert "--snapshot-count=10001" in cmdline(k8s, pid)
    assert "--snapshot-count=10000" not in cmdline(k8s, pid)
    wait_for(
        "etcd healthy again", lambda: "body" in etcd_get(k8s, "127.0.0.1", *healthcheck_cert())
    )
    journal = k8s.sh(NODE, f"journalctl -u {SERVICE} --no-pager -o cat")
    assert (
        "casemate lab kubelet stand-in: starting etcd from /etc/kubernetes/manifests/etcd.yaml"
        in journal
    )
    state = json.loads(k8s.sh(NODE, f"cat {STATE}"))
    assert state["pid"] == int(pid) and state["argv"] == cmdline(k8s, pid)
    assert state["sha256"] == k8s.sh(NODE, f"sha256sum {MANIFEST}").split()[0]
    edit_manifest(k8s, original)
    back = wait_for(
        "etcd back on the original flags", lambda: (p := etcd_pid(k8s)) and p != pid and p
    )
    assert "--snapshot-count=10000" in cmdline(k8s, back)


def test_a_manifest_that_does_not_parse_leaves_etcd_down(k8s: Lab) -> None:
    original = k8s.sh(NODE, f"cat {MANIFEST}")
    edit_manifest(k8s, "apiVersion: v1\nkind: Pod\nspec: [this does not parse\n")
    wait_for("etcd to stop", lambda: not etcd_pid(k8s))
    time.sleep(12)  # longer than the unit's RestartSec: a crash loop would have restarted it
    assert not etcd_pid(k8s)
    assert k8s.sh(NODE, f"systemctl is-active {SERVICE} || true").strip() == "failed"
    journal = k8s.sh(NODE, f"journalctl -u {SERVICE} --no-pager -o cat")
    assert "does not parse as YAML" in journal and "etcd stays down" in journal
    assert "refused" in etcd_get(k8s, "127.0.0.1", *healthcheck_cert())
    edit_manifest(k8s, original)
    pid = wait_for("etcd back once the manifest is fixed", lambda: etcd_pid(k8s))
    assert cmdline(k8s, pid) == yaml.safe_load(original)["spec"]["containers"][0]["command"]
    wait_for("etcd healthy", lambda: "body" in etcd_get(k8s, "127.0.0.1", *healthcheck_cert()))


def test_rewriting_the_same_manifest_keeps_etcd_running(k8s: Lab) -> None:
    pid = wait_for("etcd", lambda: etcd_pid(k8s))
    edit_manifest(k8s, k8s.sh(NODE, f"cat {MANIFEST}"))
    wait_for(
        "the stand-in to look at the rewritten manifest",
        lambda: (
            "content unchanged: etcd keeps running"
            in k8s.sh(NODE, f"journalctl -u {RESTARTER} --no-pager -o cat")
        ),
    )
    assert etcd_pid(k8s) == pid
