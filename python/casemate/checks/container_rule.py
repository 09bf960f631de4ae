"""container_rule: a named judgement about every running container that a single field cannot
express (added capabilities, sensitive mounts, published ports, sshd inside...). Report-only:
findings name each container; nothing is changed."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import MISSING
from casemate.checks.daemon_view import daemon_probes, daemon_view
from casemate.checks.dockerd import DOCKERD, cli_failure
from casemate.checks.workloads import (
    CONTAINER_PROCS,
    CONTAINERS,
    DOCKER_INFO,
    container_name,
    inspected,
    listing,
)

Rule = Literal[
    "capabilities_added",
    "sensitive_mounts_rw",
    "privileged_ports",
    "wildcard_ports",
    "shared_propagation",
    "docker_socket_mounted",
    "sshd_running",
    "no_new_privileges",
    "apparmor_profile",
    "seccomp_unconfined",
    "selinux_options",
    "cpu_limited",
]

# Docker's default capability set: adding one of these back is not an addition.
DEFAULT_CAPS = frozenset(
    [
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ]
)
SENSITIVE = ("/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")


@dataclass(frozen=True, slots=True)
class Context:
    info: Mapping[str, Any]
    nnp_default: bool
    procs: Mapping[str, list[str]]


class NotVerifiable(Exception):  # noqa: N818 - it is a verdict, not a failure of casemate
    """The fact cannot be observed on this host."""


def _caps(c: Mapping[str, Any], _: Context) -> str | None:
    added = {
        str(x).upper().removeprefix("CAP_") for x in c.get("HostConfig", {}).get("CapAdd") or []
    }
    extra = sorted(added - DEFAULT_CAPS)
    return f"adds {','.join(extra)}" if extra else None


def _mounts(c: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in c.get("Mounts") or [] if isinstance(m, Mapping)]


def _sensitive_rw(c: Mapping[str, Any], _: Context) -> str | None:
    bad = [
        str(m.get("Source"))
        for m in _mounts(c)
        if m.get("RW")
        and (
            m.get("Source") == "/"
            or any(
                str(m.get("Source", "")) == s or str(m.get("Source", "")).startswith(s + "/")
                for s in SENSITIVE
            )
        )
    ]
    return f"mounts {', '.join(bad)} read-write" if bad else None


def _ports(c: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(container port, host ip, host port) of every published port."""
    out = []
    for cport, bindings in (c.get("NetworkSettings", {}).get("Ports") or {}).items():
        for b in bindings or []:
            out.append((str(cport), str(b.get("HostIp", "")), str(b.get("HostPort", ""))))
    return out


def _privileged_ports(c: Mapping[str, Any], _: Context) -> str | None:
    bad = [f"{hp}->{cp}" for cp, _ip, hp in _ports(c) if hp.isdigit() and int(hp) < 1024]
    return f"publishes host port {', '.join(bad)}" if bad else None


def _wildcard_ports(c: Mapping[str, Any], _: Context) -> str | None:
    bad = [f"{ip or '*'}:{hp}" for _cp, ip, hp in _ports(c) if ip in ("", "0.0.0.0", "::")]
    return f"listens on every address: {', '.join(bad)}" if bad else None


def _shared(c: Mapping[str, Any], _: Context) -> str | None:
    bad = [
        f"{m.get('Destination')} ({m.get('Propagation')})"
        for m in _mounts(c)
        if "shared" in str(m.get("Propagation", ""))
    ]
    return f"shared mount propagation on {', '.join(bad)}" if bad else None


def _sock(c: Mapping[str, Any], _: Context) -> str | None:
    bad = [
        f"{m.get('Source')}:{m.get('Destination')}"
        for m in _mounts(c)
        if "docker.sock" in str(m.get("Source", "")) + str(m.get("Destination", ""))
    ]
    return f"mounts the Docker socket {', '.join(bad)}" if bad else None


def _sshd(c: Mapping[str, Any], ctx: Context) -> str | None:
    names = ctx.procs.get(str(c.get("Id", "")), [])
    return "runs sshd" if "sshd" in names else None


def _secopts(c: Mapping[str, Any]) -> list[str]:
    return [str(o) for o in c.get("HostConfig", {}).get("SecurityOpt") or []]


def _nnp(c: Mapping[str, Any], ctx: Context) -> str | None:
    if ctx.nnp_default:
        return None
    opts = [o.replace("=", ":") for o in _secopts(c)]
    on = any(o in ("no-new-privileges", "no-new-privileges:true") for o in opts)
    return None if on else "may gain privileges (no no-new-privileges, and no daemon default)"


def _apparmor(c: Mapping[str, Any], ctx: Context) -> str | None:
    if not any(str(o).startswith("name=apparmor") for o in ctx.info.get("SecurityOptions") or []):
        raise NotVerifiable(
            "this kernel gives the daemon no AppArmor, so no container can be confined by it"
        )
    profile = str(c.get("AppArmorProfile", ""))
    return None if profile not in ("", "unconfined") else f"AppArmor profile {profile or '<none>'}"


def _seccomp(c: Mapping[str, Any], _: Context) -> str | None:
    off = [o for o in _secopts(c) if o.replace(":", "=") == "seccomp=unconfined"]
    return "runs without seccomp (seccomp=unconfined)" if off else None


def _selinux(c: Mapping[str, Any], _: Context) -> str | None:
    labels = [o for o in _secopts(c) if o.replace(":", "=").startswith("label=")]
    return None if labels else "has no SELinux label options"


def _cpu(c: Mapping[str, Any], _: Context) -> str | None:
    hc = c.get("HostConfig", {})
    limited = bool(hc.get("CpuShares")) or bool(hc.get("NanoCpus")) or bool(hc.get("CpuQuota"))
    return None if limited else "has no CPU shares or limit"


RULES: Mapping[str, tuple[str, Callable[[Mapping[str, Any], Context], str | None]]] = {
    "capabilities_added": ("adds no capability beyond Docker's default set", _caps),
    "sensitive_mounts_rw": ("mounts no sensitive host directory read-write", _sensitive_rw),
    "privileged_ports": ("publishes no host port below 1024", _privileged_ports),
    "wildcard_ports": ("binds published ports to a specific host address", _wildcard_ports),
    "shared_propagation": ("has no shared mount propagation", _shared),
    "docker_socket_mounted": ("does not mount the Docker socket", _sock),
    "sshd_running": ("runs no sshd", _sshd),
    "no_new_privileges": ("cannot gain privileges (no-new-privileges)", _nnp),
    "apparmor_profile": ("runs under an AppArmor profile", _apparmor),
    "seccomp_unconfined": ("keeps a seccomp profile", _seccomp),
    "selinux_options": ("has SELinux label options", _selinux),
    "cpu_limited": ("has CPU shares or a CPU limit", _cpu),
}


class ContainerRuleParams(Params):
    rule: Rule


class Unobserved(Exception):  # noqa: N818 - it is a verdict (error), not a failure of casemate
    """A fact the rule needs could not be observed: the verdict is an error."""


def _context(p: ContainerRuleParams, obs: Observations) -> Context:
    info: Mapping[str, Any] = {}
    if p.rule == "apparmor_profile":
        failed = cli_failure(obs.get(DOCKER_INFO))
        if failed:
            raise Unobserved(failed)
        try:
            info = json.loads(str(obs.get(DOCKER_INFO).get("stdout", "")))
        except ValueError:
            raise Unobserved("docker info did not print JSON") from None
        if not isinstance(info, Mapping):
            raise Unobserved("docker info did not print a JSON object")
    nnp = False
    if p.rule == "no_new_privileges":
        view = daemon_view(obs, "/etc/docker/daemon.json", "dockerd")
        if view.error:
            raise Unobserved(view.error)
        value, _ = view.setting("no-new-privileges", ["--no-new-privileges"], "bool")
        nnp = value is not MISSING and value is True
    procs: Mapping[str, list[str]] = {}
    if p.rule == "sshd_running":
        raw = obs.get(CONTAINER_PROCS)
        if error_of(raw):
            raise Unobserved(str(error_of(raw)))
        procs = raw.get("containers", {})
    return Context(info, nnp, procs)


class ContainerRule:
    name: ClassVar[str] = "container_rule"
    params: ClassVar[type[ContainerRuleParams]] = ContainerRuleParams

    def wants(self, p: ContainerRuleParams) -> list[Probe]:
        extra = {
            "apparmor_profile": [DOCKER_INFO],
            "no_new_privileges": daemon_probes("/etc/docker/daemon.json", "dockerd"),
            "sshd_running": [CONTAINER_PROCS],
        }
        return [CONTAINERS, DOCKERD, *extra.get(p.rule, [])]

    def judge(self, p: ContainerRuleParams, obs: Observations) -> Verdict:
        evidence = tuple(dict.fromkeys(probe.key for probe in self.wants(p)))
        text, rule = RULES[p.rule]
        expected = f"every running container {text}"
        containers, err = inspected(obs, CONTAINERS)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        if not containers:
            return Verdict(Status.NOT_APPLICABLE, expected, "no running containers", evidence)
        try:
            ctx = _context(p, obs)
            bad = [f"{container_name(c)} {why}" for c in containers if (why := rule(c, ctx))]
        except NotVerifiable as exc:
            return Verdict(Status.NOT_VERIFIABLE, expected, str(exc), evidence)
        except Unobserved as exc:
            return Verdict(Status.ERROR, expected, str(exc), evidence)
        if p.rule == "no_new_privileges" and ctx.nnp_default:
            return Verdict(
                Status.PASS, expected, "the daemon default no-new-privileges is on", evidence
            )
        if bad:
            return Verdict(
                Status.FAIL, expected, listing(bad, len(containers), "containers"), evidence
            )
        return Verdict(Status.PASS, expected, f"all {len(containers)} running containers", evidence)
