"""The lab as pure data: names, input checks, image tags by recipe hash, node run flags, the
inventory, and how a node's probe output reads as health. Nothing here touches Docker."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from casemate.errors import BadInputError
from casemate.locations import package_file

MIRROR = "http://deb.debian.org/debian"
VARIANT = "minbase"
RELEASES = ("bookworm", "trixie")
PACKAGES = (
    *("systemd", "systemd-sysv", "dbus", "docker.io", "containerd", "runsc", "auditd", "apparmor"),
    *("openssh-server", "procps", "iproute2", "jq", "openssl", "kmod", "iptables", "python3"),
    *("sudo", "etcd-server", "ca-certificates"),
    # what a real Debian host has and casemate uses: a static busybox for the probe image, and
    # python3-apt so package tasks can dry-run under --check
    *("busybox-static", "python3-apt"),
    # the k8s profile: etcdctl to talk to the node's real etcd, PyYAML for the lab's stand-in that
    # starts etcd from its static pod manifest; cron so the host baseline's cron controls concern
    # the node as they concern a real server
    *("etcd-client", "python3-yaml", "cron"),
    # the host baseline's account controls: password quality (pam_faillock and the faillock tool
    # come with libpam-modules), process accounting, sysstat and automatic security updates
    *("libpam-pwquality", "cracklib-runtime", "acct", "sysstat", "unattended-upgrades"),
    # file integrity: AIDE and Debian's aide-common (aideinit, the daily check timer)
    *("aide", "aide-common"),
)
# trixie splits the docker client out of docker.io: without it `docker` is missing in the node
EXTRA_PACKAGES = {"trixie": ("docker-cli",)}
LAB_LABEL = "io.casemate.lab"
RECIPE_LABEL = "io.casemate.recipe"
PROFILE_LABEL = "io.casemate.lab.profile"  # absent on nodes from before profiles: docker
# What a node is: "docker", a container host (the default), or "k8s", a kubeadm v1.32 control-plane
# node that also runs workloads, its layout written by the lab (layout.py). The inventory groups
# each profile's nodes belong to:
PROFILE_GROUPS = {
    "docker": ("docker_hosts",),
    "k8s": ("k8s_control_plane", "k8s_workers", "etcd"),
}
PROFILES = tuple(PROFILE_GROUPS)
MAX_NODES = 20
_NAME = re.compile(r"[a-z][a-z0-9-]{0,20}")


@dataclass(frozen=True, slots=True)
class Recipe:
    """Everything that decides what the node image contains, and the tags derived from it."""

    release: str
    base_hash: str
    base_tag: str  # casemate-base:<release>-<hash12>, from debootstrap
    node_hash: str
    node_tag: str  # casemate-node:<release>-<hash12>, built on the base
    dockerfile: str  # rendered: base tag, release and packages filled in
    entrypoint: str


def validate_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise BadInputError(
            f"lab name {name!r}: use 1-21 lowercase letters, digits or '-', starting with a letter"
        )


def validate_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise BadInputError(f"--profile must be one of {', '.join(PROFILES)}, not {profile!r}")


def validate_nodes(nodes: int) -> None:
    if not 1 <= nodes <= MAX_NODES:
        raise BadInputError(f"--nodes must be between 1 and {MAX_NODES}, not {nodes}")


def digest(*parts: str) -> str:
    """12 hex digits of SHA-256 over the parts (separated, so ("ab", "c") != ("a", "bc"))."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def packages(release: str) -> tuple[str, ...]:
    return (*PACKAGES, *EXTRA_PACKAGES.get(release, ()))


def make_recipe(release: str, dockerfile_template: str, entrypoint: str) -> Recipe:
    """The recipe for `release` from the Dockerfile template and entrypoint texts."""
    if release not in RELEASES:
        raise BadInputError(f"--release must be one of {', '.join(RELEASES)}, not {release!r}")
    base_hash = digest(release, VARIANT, MIRROR)
    base_tag = f"casemate-base:{release}-{base_hash}"
    dockerfile = (
        dockerfile_template.replace("@BASE@", base_tag)
        .replace("@RELEASE@", release)
        .replace("@PACKAGES@", " ".join(packages(release)))
    )
    node_hash = digest(base_tag, dockerfile, entrypoint)
    node_tag = f"casemate-node:{release}-{node_hash}"
    return Recipe(release, base_hash, base_tag, node_hash, node_tag, dockerfile, entrypoint)


def recipe(release: str) -> Recipe:
    """The recipe from the Dockerfile and entrypoint shipped in `casemate/lab/image/`."""
    return make_recipe(
        release,
        package_file("lab", "image", "Dockerfile").read_text(encoding="utf-8"),
        package_file("lab", "image", "entrypoint.sh").read_text(encoding="utf-8"),
    )


def debootstrap_args(release: str, target: str) -> list[str]:
    return ["debootstrap", f"--variant={VARIANT}", release, target, MIRROR]


def build_args(r: Recipe, context: str, *, no_cache: bool) -> list[str]:
    """`docker build` arguments (legacy builder: BuildKit would need an entitlement for host
    networking, and the build's own network has no route out here)."""
    return [
        "build",
        "--network", "host",
        "--force-rm",  # no intermediate containers left behind by a failed step
        "--label", f"{RECIPE_LABEL}={r.node_hash}",
        "--tag", r.node_tag,
        *(["--no-cache"] if no_cache else []),
        context,
    ]  # fmt: skip


def network_name(lab: str) -> str:
    return f"casemate-{lab}"


def node_names(lab: str, count: int) -> list[str]:
    return [f"casemate-{lab}-{i}" for i in range(1, count + 1)]


def node_order(node: str) -> tuple[int, str]:
    """Sort key: casemate-lab-2 before casemate-lab-10."""
    tail = node.rsplit("-", 1)[-1]
    return (int(tail), node) if tail.isdigit() else (10**6, node)


def run_args(lab: str, node: str, image: str, profile: str = "docker") -> list[str]:
    """`docker run` arguments for one node: systemd with its own dockerd. Not --privileged: this
    kind of host refuses it (it does not grant CAP_SYS_RESOURCE), so every other capability is
    added instead, and /sys, seccomp and AppArmor are opened explicitly."""
    return [
        "run",
        "--detach",
        "--name", node,
        "--hostname", node,
        "--network", network_name(lab),
        "--label", f"{LAB_LABEL}={lab}",
        "--label", f"{PROFILE_LABEL}={profile}",
        "--cap-add", "ALL",
        "--cap-drop", "SYS_RESOURCE",
        "--security-opt", "seccomp=unconfined",
        "--security-opt", "apparmor=unconfined",
        "--security-opt", "systempaths=unconfined",
        # lets the node's own dockerd give devices to containers (privileged ones included), so
        # the lab can show the report-only findings about such containers
        "--device-cgroup-rule", "a *:* rwm",
        "--cgroupns", "private",
        "--tmpfs", "/run",
        "--tmpfs", "/run/lock",
        "--tmpfs", "/tmp",
        "--volume", "/var/lib/docker",  # the inner dockerd's overlay2 cannot sit on overlay
        image,
    ]  # fmt: skip


def network_create(lab: str) -> list[str]:
    """`docker network create` of the lab's bridge. Internal: the nodes reach each other and the
    controller reaches them, but nothing beyond this machine (no default route), so nothing a node
    runs (apt's daily timers that the host baseline enables, a package install) leaves the lab."""
    return [
        *("network", "create", "--driver", "bridge", "--internal"),
        *("--label", f"{LAB_LABEL}={lab}", network_name(lab)),
    ]


def inventory_text(lab: str, nodes: Sequence[str], profile: str = "docker") -> str:
    """The lab's Ansible inventory, every node reached by `docker exec`: docker nodes in
    docker_hosts; k8s nodes (each a single-node cluster) in k8s_control_plane, k8s_workers and
    etcd."""
    hosts = "".join(f"        {n}: {{ansible_host: {n}}}\n" for n in nodes)
    groups = "".join(f"    {g}:\n      hosts:\n{hosts}" for g in PROFILE_GROUPS[profile])
    return (
        "# written by casemate lab up; do not edit\n"
        "all:\n"
        "  children:\n"
        f"{groups}"
        "  vars:\n"
        "    ansible_connection: docker        # the short name on purpose: the mitogen strategy"
        " only accelerates this one\n"
        "    ansible_python_interpreter: /usr/bin/python3\n"
        "    # docker exec enters a node as root already: the plays' become (sudo to root) would\n"
        "    # only start a second Python in the node per run (docs/lab.md)\n"
        "    ansible_become: false\n"
        "    # nodes share the controller's CPUs: under load, the first connection to a node (its\n"
        "    # interpreter's start) can take longer than Ansible's default 10 s\n"
        "    ansible_timeout: 60\n"
        f"    casemate_lab: {lab}\n"
        "    # gVisor's own network stack refuses to start inside a lab node (it sees the root\n"
        "    # network namespace); sandboxed containers there run without a network\n"
        '    gvisor_runsc_args: ["--network=none"]\n'
        "    # AIDE (cm_host_4_22) watches the node's own files (/etc and the like), not trees\n"
        "    # only packages change: its database builds in a second, not minutes of both cores\n"
        '    host_baseline_aide_rules: ["!/usr/", "!/var/", "!/opt/"]\n'
    )
