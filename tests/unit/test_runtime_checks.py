"""casemate-runtime controls judged on crafted observations for what the lab cannot show: an
SELinux host of the RHEL family, and a real (non-container) host with or without AppArmor."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Status
from casemate.checks.command_output import CommandOutputParams
from casemate.verify import judge, wanted_probes

KINDS = builtin_kinds()
CATALOG = load_catalog(None, KINDS)
OS = '. /etc/os-release && echo "$ID $ID_LIKE"'


def ran(stdout: str, rc: int = 0, stderr: str = "") -> dict[str, Any]:
    return {"rc": rc, "stdout": stdout, "stderr": stderr}


def verdict(control_id: str, data: dict[str, Any]) -> tuple[Status, str]:
    entry = CATALOG.get(control_id)
    assert entry is not None
    wanted = {p.key for p in wanted_probes([entry])}
    assert set(data) <= wanted, set(data) - wanted  # the test feeds only what the control asks for
    v = judge(entry, Observations("h", {}, data))
    return v.status, v.observed


def cmd_key(control_id: str) -> str:
    """The key of the command's observation: a plain command's, or a container proof's."""
    entry = CATALOG.get(control_id)
    assert entry is not None and entry.check is not None
    return cast(CommandOutputParams, entry.check.params).probe().key


DOCKERD_UP = {"proc:dockerd": {"running": True, "argv": ["/usr/sbin/dockerd", "-H", "fd://"]}}
RHEL = {f"cmd:{OS}": ran("rhel centos fedora\n")}
DEBIAN = {f"cmd:{OS}": ran("debian\n")}


@pytest.mark.parametrize(
    ("mode", "status"),
    [("Enforcing", Status.PASS), ("Permissive", Status.FAIL), ("Disabled", Status.FAIL)],
)
def test_selinux_mode_on_rhel(mode: str, status: Status) -> None:
    got, observed = verdict("cm_rt_3_5", RHEL | {cmd_key("cm_rt_3_5"): ran(mode + "\n")})
    assert got is status
    assert mode in observed


def test_selinux_controls_do_not_concern_debian() -> None:
    got, observed = verdict("cm_rt_3_5", DEBIAN | {cmd_key("cm_rt_3_5"): ran("")})
    assert (got, observed) == (Status.NOT_APPLICABLE, "distribution = debian")


@pytest.mark.parametrize(
    ("config", "status"), [({"selinux-enabled": True}, Status.PASS), ({}, Status.FAIL)]
)
def test_docker_selinux_labels_on_rhel(config: dict[str, Any], status: Status) -> None:
    data = RHEL | {
        "read:/etc/docker/daemon.json": {"exists": True, "content": json.dumps(config)},
        "proc:dockerd": {"running": True, "argv": ["/usr/bin/dockerd"]},
    }
    assert verdict("cm_rt_3_4", data)[0] is status


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (ran("loaded\n"), Status.PASS),
        (ran("not loaded\n"), Status.FAIL),
        (ran("AppArmor is off in the running kernel\n"), Status.FAIL),
    ],
)
def test_apparmor_enforcement(answer: dict[str, Any], status: Status) -> None:
    assert verdict("cm_rt_3_3", DEBIAN | {cmd_key("cm_rt_3_3"): answer})[0] is status


@pytest.mark.parametrize("container", ["docker", "unknown"])
def test_apparmor_enforcement_is_not_verifiable_on_a_container_host(container: str) -> None:
    # the probe's one container reader decides ('unknown' counts as a container), never a shell
    # test of its own: without systemd-detect-virt, `systemd-detect-virt -q` said "no container"
    # and a container's missing AppArmor was judged a failure
    entry = CATALOG.get("cm_rt_3_3")
    assert entry is not None
    data = DEBIAN | {cmd_key("cm_rt_3_3"): ran("AppArmor is off in the running kernel\n")}
    v = judge(entry, Observations("h", {"container": container}, data))
    assert v.status is Status.NOT_VERIFIABLE
    assert v.observed == (
        f"this host is a {container} container: AppArmor belongs to the machine's kernel"
    )
    assert "detect-virt" not in cmd_key("cm_rt_3_3")


def test_gvisor_functional_check_fails_without_the_sandbox() -> None:
    runc_kernel = ran(
        "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)\n"
    )
    assert verdict("cm_rt_1_4", {cmd_key("cm_rt_1_4"): runc_kernel} | DOCKERD_UP)[0] is Status.FAIL
    # the check pipes the container's output through `head`, so a refused run is text, not an rc
    missing = ran("docker: Error response from daemon: unknown or invalid runtime name: runsc\n")
    got, observed = verdict("cm_rt_1_4", {cmd_key("cm_rt_1_4"): missing} | DOCKERD_UP)
    assert got is Status.FAIL
    assert "unknown or invalid runtime name: runsc" in observed


def test_seccomp_probe_must_see_every_call_denied() -> None:
    partly = ran("syncfs=denied io_uring_setup=allowed ptrace=denied\n")
    assert verdict("cm_rt_2_4", {cmd_key("cm_rt_2_4"): partly} | DOCKERD_UP)[0] is Status.FAIL


UNREACHABLE = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"  # fmt: skip


@pytest.mark.parametrize("control_id", ["cm_rt_1_4", "cm_rt_2_3", "cm_rt_2_4"])
def test_functional_probes_are_errors_without_a_daemon_to_ask(control_id: str) -> None:
    # `docker image inspect` cannot tell a missing image from a daemon it cannot reach: the
    # command then says "not present" and exits 0, but no image was looked for
    said = ran("probe image casemate-probe:busybox not present\n", 0, UNREACHABLE)
    stopped = {"proc:dockerd": {"running": False}}
    got, observed = verdict(control_id, {cmd_key(control_id): said} | stopped)
    assert (got, observed) == (
        Status.ERROR, "dockerd is not running: cannot tell what it would run with"
    )  # fmt: skip
    got, observed = verdict(control_id, {cmd_key(control_id): said} | DOCKERD_UP)
    assert (got, observed) == (Status.ERROR, UNREACHABLE.strip())
    missing = ran("probe image casemate-probe:busybox not present\n", 0, "Error: No such image: casemate-probe:busybox\n")  # fmt: skip
    assert verdict(control_id, {cmd_key(control_id): missing} | DOCKERD_UP)[0] is Status.FAIL
