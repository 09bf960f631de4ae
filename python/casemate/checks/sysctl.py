"""sysctl: a kernel parameter as the running kernel reports it.

Inside a container, kernel.*, fs.* and vm.* belong to the whole machine, not to this host: they
are reported not_verifiable, never pass, because the host cannot own them.

`only_where` judges a parameter only on hosts with a container engine (`engine`), without one
(`no_engine`) or without Kubernetes (`no_kubernetes`: its CNI plugin owns reverse-path filtering).
What counts as an engine is the sysctl role's own evidence, read the same way: the host's inventory
groups, engine commands on the search path, running engine processes, engine and CNI interfaces,
and the inventory's `sysctl_engines` / `sysctl_engine_host` where a site set them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import Op, compare, describe
from casemate.readers import evidence_of

MACHINE_WIDE = ("kernel.", "fs.", "vm.", "user.", "abi.", "dev.")

# The engine evidence; roles/sysctl/{defaults,vars}/main.yml hold the same lists (a unit test keeps
# them equal), so the role and the check call the same hosts engine hosts.
ENGINES = (
    "dockerd", "containerd", "kubelet", "k3s", "rke2", "k0s", "crio", "podman", "cri-dockerd",
)  # fmt: skip
KUBERNETES = ("kubelet", "k3s", "rke2", "k0s")
ENGINE_INTERFACES = ("docker0", "podman*", "cni-podman*")
CNI_INTERFACES = (
    "cni0", "flannel*", "cilium_*", "cali*", "vxlan.calico", "weave", "kube-bridge", "kube-ipvs0",
)  # fmt: skip
ENGINE_GROUPS = ("docker_hosts", "k8s_control_plane", "k8s_workers")
KUBERNETES_GROUPS = ("k8s_control_plane", "k8s_workers")
ENGINE_PATH = (
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/bin:/snap/bin"
    ":/var/lib/rancher/rke2/bin:/var/lib/k0s/bin"
)
ENGINES_PROBE = Probe(
    "engines",
    f"{','.join(ENGINES)};{','.join(ENGINE_INTERFACES + CNI_INTERFACES)};{ENGINE_PATH}",
)


def engine_evidence(found: Mapping[str, Any], vars_: Mapping[str, Any]) -> tuple[list[str], bool]:
    """(evidence of a container engine, whether Kubernetes is among it), as the sysctl role sees
    it, read by the role's own function (roles/host_common/module_utils/casemate_host.py:
    evidence_of): `sysctl_engine_host: true/false` in the inventory overrides what the host
    shows."""
    names = [str(n) for n in vars_.get("sysctl_engines") or ENGINES]
    host_groups = [str(g) for g in vars_.get("group_names") or []]
    kube = evidence_of(
        found, [n for n in names if n in KUBERNETES], CNI_INTERFACES, KUBERNETES_GROUPS, host_groups
    )
    found_all = evidence_of(
        found, names, ENGINE_INTERFACES + CNI_INTERFACES, ENGINE_GROUPS, host_groups
    )
    forced = vars_.get("sysctl_engine_host", "auto")
    if forced is True or str(forced).lower() == "true":
        return ["sysctl_engine_host: true", *found_all], bool(kube)
    if forced is False or str(forced).lower() == "false":
        return [], False
    return found_all, bool(kube)


class SysctlParams(Params):
    name: str
    op: Op = Op.EQ
    value: Any
    only_where: Literal["engine", "no_engine", "no_kubernetes"] | None = None


def _condition(p: SysctlParams, obs: Observations) -> Verdict | None:
    """None when the parameter concerns this host; else the verdict that replaces the check's."""
    raw = obs.get(ENGINES_PROBE)
    err = error_of(raw)
    if err:
        return Verdict(Status.ERROR, f"only where {p.only_where}", err, (ENGINES_PROBE.key,))
    found, kube = engine_evidence(raw, obs.vars)
    shown = ", ".join(found) or "none"
    evidence_keys = (ENGINES_PROBE.key, "var:group_names", "var:sysctl_engine_host")
    if p.only_where == "engine" and not found:
        why = f"no container engine on this host (evidence: {shown})"
    elif p.only_where == "no_engine" and found:
        why = f"container engines on this host: {shown}"
    elif p.only_where == "no_kubernetes" and kube:
        why = f"Kubernetes runs here, its CNI plugin owns this (evidence: {shown})"
    else:
        return None
    return Verdict(Status.NOT_APPLICABLE, f"only where {p.only_where}", why, evidence_keys)


class Sysctl:
    name: ClassVar[str] = "sysctl"
    params: ClassVar[type[SysctlParams]] = SysctlParams

    def wants(self, p: SysctlParams) -> list[Probe]:
        return [Probe("sysctl", p.name)] + ([ENGINES_PROBE] if p.only_where else [])

    def judge(self, p: SysctlParams, obs: Observations) -> Verdict:
        probe = Probe("sysctl", p.name)
        expected = f"{p.name} {describe(p.op, p.value)}"
        if p.only_where and (skip := _condition(p, obs)) is not None:
            return skip
        raw = obs.get(probe)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        if not raw.get("exists"):
            return Verdict(
                Status.NOT_APPLICABLE,
                expected,
                f"{p.name} does not exist on this kernel",
                (probe.key,),
            )
        value = " ".join(str(raw.get("value", "")).split())
        if obs.container and p.name.startswith(MACHINE_WIDE):
            return Verdict(
                Status.NOT_VERIFIABLE,
                expected,
                f"{p.name} = {value} (machine-wide setting; this host is a {obs.container} "
                "container and cannot own it)",
                (probe.key, "facts"),
            )
        wanted = " ".join(str(p.value).split())
        status = Status.PASS if compare(p.op, value, wanted) else Status.FAIL
        return Verdict(status, expected, f"{p.name} = {value}", (probe.key,))
