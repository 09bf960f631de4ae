"""How a node's health is read: one `docker exec` runs its profile's probe (PROBE for docker
nodes, PROBE_K8S for k8s nodes), `health_of` / `health_of_k8s` reads the output."""

from __future__ import annotations

from collections.abc import Callable

# Run in a node as `sh -c PROBE`; prints one line: "<up|down> <systemctl is-system-running>".
PROBE = (
    "if docker info >/dev/null 2>&1; then d=up; else d=down; fi; "
    's=$(systemctl is-system-running 2>/dev/null); echo "$d ${s:-unknown}"'
)
# The k8s profile's nodes run containerd and etcd, not Docker. Prints one line: "<up|down> <up|down>
# <systemctl is-system-running>" for containerd (`ctr version`) and etcd (health over TLS with the
# kubeadm healthcheck client certificate, as kubeadm's own etcd checks do).
_ETCD_HEALTH = (
    "ETCDCTL_API=3 timeout 6 etcdctl --endpoints=https://127.0.0.1:2379"
    " --cacert=/etc/kubernetes/pki/etcd/ca.crt"
    " --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt"
    " --key=/etc/kubernetes/pki/etcd/healthcheck-client.key"
    " --dial-timeout=2s --command-timeout=3s endpoint health"
)
PROBE_K8S = (
    "if timeout 5 ctr version >/dev/null 2>&1; then c=up; else c=down; fi; "
    f"if {_ETCD_HEALTH} >/dev/null 2>&1; then e=up; else e=down; fi; "
    's=$(systemctl is-system-running 2>/dev/null); echo "$c $e ${s:-unknown}"'
)
# Lists the failed units, one per line ("auditd.service loaded failed failed ...").
FAILED_UNITS = "systemctl --failed --plain --no-legend --no-pager 2>/dev/null"
READY = "ready"
STARTING = "starting"
_BOOTING = {"initializing", "starting", "offline", "unknown"}


def health_of(probe_output: str) -> str:
    """READY when the node's dockerd answers and systemd has settled (running or degraded:
    auditd cannot run in a container), STARTING while systemd boots, else a short reason."""
    words = probe_output.split()
    if len(words) != 2 or words[0] not in ("up", "down"):
        return "no answer from the node"
    dockerd, systemd = words
    settled = systemd in ("running", "degraded")
    if settled and dockerd == "up":
        return READY
    if systemd in _BOOTING:
        return STARTING
    if settled:
        return "dockerd not answering"
    return f"systemd {systemd}"


def health_of_k8s(probe_output: str) -> str:
    """READY when systemd has settled, containerd answers and etcd reports healthy to a client
    with a certificate; STARTING while systemd boots, else a short reason."""
    words = probe_output.split()
    if len(words) != 3 or not {words[0], words[1]} <= {"up", "down"}:
        return "no answer from the node"
    containerd, etcd, systemd = words
    settled = systemd in ("running", "degraded")
    if settled and containerd == etcd == "up":
        return READY
    if systemd in _BOOTING:
        return STARTING
    if not settled:
        return f"systemd {systemd}"
    return "containerd not answering" if containerd == "down" else "etcd not answering"


def probe_for(profile: str) -> tuple[str, Callable[[str], str]]:
    """The probe script a node of `profile` runs, and how its output reads."""
    return (PROBE_K8S, health_of_k8s) if profile == "k8s" else (PROBE, health_of)


def failed_units(listing: str, *, limit: int = 160) -> str:
    """The failed units from FAILED_UNITS' output, "a.service, b.service"; "" if none, or if
    too long for a one-line message."""
    units = [line.split()[0] for line in listing.splitlines() if line.split()]
    text = ", ".join(units)
    return text if len(text) <= limit else ""
