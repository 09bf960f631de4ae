"""Report-only container and image checks, judged on a probe answer recorded from a lab node that
ran four containers: `good` (limits, read-only root, non-root user, healthcheck, no-new-privileges,
port on 127.0.0.1), `bad` (added SYS_ADMIN, seccomp=unconfined, /etc mounted read-write, port 80 on
every address, rshared mount, 10 restarts), `s1` (Docker socket mounted, a process named sshd) and
`p4` (privileged, under gVisor). Images: app:good (HEALTHCHECK, USER 1000) and app:bad (ADD of a
private key, a .env file, a setuid binary, an `apt-get update` step)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Status, Verdict
from casemate.checks.workloads import CONTAINERS, DOCKER_INFO, IMAGES
from casemate.probe.collect import parse_answer

KINDS = builtin_kinds()
OBS, _ = parse_answer(
    "node",
    (Path(__file__).parent.parent / "fixtures" / "observations" / "workloads.json").read_text(),
)


def run(kind: str, params: dict[str, Any], obs: Observations = OBS) -> Verdict:
    k = KINDS[kind]
    return k.judge(k.params.model_validate(params), obs)


def failing(v: Verdict) -> str:
    assert v.status is Status.FAIL, v
    return v.observed


@pytest.mark.parametrize(
    ("rule", "names", "not_named"),
    [
        ("capabilities_added", ["bad adds SYS_ADMIN"], ["CHOWN"]),
        ("sensitive_mounts_rw", ["bad mounts /etc read-write"], ["good"]),
        ("privileged_ports", ["bad publishes host port 80->80/tcp"], ["good"]),
        ("wildcard_ports", ["bad listens on every address"], ["good"]),
        ("shared_propagation", ["bad shared mount propagation on /srv (rshared)"], ["good"]),
        ("docker_socket_mounted", ["s1 mounts the Docker socket"], ["good", "bad"]),
        ("sshd_running", ["s1 runs sshd"], ["good", "bad"]),
        ("seccomp_unconfined", ["bad runs without seccomp"], ["good", "s1"]),
        ("no_new_privileges", ["bad may gain", "s1 may gain", "p4 may gain"], ["good"]),
        ("cpu_limited", ["bad has no CPU", "s1 has no CPU"], ["good"]),
    ],
)
def test_container_rules_name_the_offenders(
    rule: str, names: list[str], not_named: list[str]
) -> None:
    observed = failing(run("container_rule", {"rule": rule}))
    for name in names:
        assert name in observed
    for name in not_named:
        assert name not in observed.split(": ", 1)[1]
    assert "of 4 containers" in observed


def test_apparmor_is_not_verifiable_without_kernel_support() -> None:
    v = run("container_rule", {"rule": "apparmor_profile"})
    assert v.status is Status.NOT_VERIFIABLE
    assert "no AppArmor" in v.observed


@pytest.mark.parametrize(
    ("params", "offender"),
    [
        (
            {
                "pointer": "/HostConfig/Privileged",
                "what": "privileged",
                "op": "eq",
                "value": False,
                "type": "bool",
            },
            "p4 privileged=true",
        ),
        (
            {
                "pointer": "/HostConfig/Memory",
                "what": "memory",
                "op": "ge",
                "value": 1,
                "type": "int",
            },
            "s1 memory=0",
        ),
        (
            {
                "pointer": "/HostConfig/RestartPolicy/MaximumRetryCount",
                "what": "retries",
                "op": "le",
                "value": 5,
                "type": "int",
            },
            "bad retries=10",
        ),
        ({"pointer": "/State/Health", "what": "health", "op": "present"}, "bad health=<unset>"),
        (
            {
                "pointer": "/Config/User",
                "what": "user",
                "op": "not_regex",
                "value": "^(|0|root)(:.*)?$",
            },
            "s1 user=",
        ),
        (
            {
                "pointer": "/HostConfig/ReadonlyRootfs",
                "what": "ro",
                "op": "eq",
                "value": True,
                "type": "bool",
            },
            "bad ro=false",
        ),
    ],
)
def test_container_fields(params: dict[str, Any], offender: str) -> None:
    observed = failing(run("container_field", params))
    assert offender in observed
    assert "good " not in observed


def test_container_field_pass_and_not_applicable() -> None:
    params = {"pointer": "/HostConfig/PidMode", "what": "PID mode", "op": "ne", "value": "host"}
    assert run("container_field", params).status is Status.PASS
    up = {"proc:dockerd": OBS.data["proc:dockerd"]}
    empty = Observations("n", {}, {CONTAINERS.key: {"rc": 0, "stdout": "", "stderr": ""}, **up})
    v = run("container_field", params, empty)
    assert (v.status, v.observed) == (Status.NOT_APPLICABLE, "no running containers")
    broken = Observations(
        "n", {}, {CONTAINERS.key: {"rc": 1, "stdout": "", "stderr": "Cannot connect"}, **up}
    )
    assert run("container_field", params, broken).status is Status.ERROR


def test_nothing_listed_by_an_unreachable_daemon_is_not_no_containers() -> None:
    # `docker ps | xargs -r docker inspect` exits 0 when docker ps could not reach the daemon
    params = {"pointer": "/HostConfig/PidMode", "what": "PID mode", "op": "ne", "value": "host"}
    said = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"  # fmt: skip
    silent = {"rc": 0, "stdout": "", "stderr": said}
    up = {"proc:dockerd": OBS.data["proc:dockerd"]}
    down = {"proc:dockerd": {"running": False}}
    v = run("container_field", params, Observations("n", {}, {CONTAINERS.key: silent, **up}))
    assert (v.status, v.observed) == (Status.ERROR, said.strip())
    for rule in ("cpu_limited", "sshd_running"):
        v = run(
            "container_rule",
            {"rule": rule},
            Observations("n", {}, {CONTAINERS.key: silent, **down}),
        )
        assert (v.status, v.observed) == (
            Status.ERROR, "dockerd is not running: its containers cannot be listed"
        )  # fmt: skip
    v = run(
        "image_rule", {"rule": "healthcheck"}, Observations("n", {}, {IMAGES.key: silent, **down})
    )
    assert (v.status, v.observed) == (
        Status.ERROR,
        "dockerd is not running: its images cannot be listed",
    )


@pytest.mark.parametrize(
    ("rule", "offender"),
    [
        ("healthcheck", "casemate-probe:bb has no HEALTHCHECK"),
        ("update_layers", "app:bad: /bin/sh -c chmod 4755 /bin/tool && echo apt-get update"),
        ("add_layers", "app:bad: /bin/sh -c #(nop) ADD file:"),
        ("setuid_files", "app:bad: /bin/tool"),
        ("secret_files", "app:bad: /app/.env, /root/.ssh/id_rsa"),
    ],
)
def test_image_rules(rule: str, offender: str) -> None:
    observed = failing(run("image_rule", {"rule": rule}))
    assert offender in observed
    assert "app:good" not in observed


def test_image_rule_failed_or_missing_scan_is_an_error() -> None:
    images = json.loads(OBS.data[IMAGES.key]["stdout"])
    data = dict(OBS.data)
    data["image_files:1024"] = {
        "images": [{"id": images[0]["Id"], "error": "scan failed: docker save: broken pipe"}]
        + [{"id": i["Id"], "setuid": [], "secrets": []} for i in images[1:]]
    }
    v = run("image_rule", {"rule": "setuid_files"}, Observations("n", {}, data))
    assert v.status is Status.ERROR
    assert "scan failed: docker save: broken pipe" in v.observed
    data["image_files:1024"] = {"images": [{"id": i["Id"], "setuid": []} for i in images[1:]]}
    v = run("image_rule", {"rule": "setuid_files"}, Observations("n", {}, data))
    assert v.status is Status.ERROR
    assert v.observed.startswith("not scanned: ")


def test_image_rule_skipped_scan_is_not_verifiable() -> None:
    data = dict(OBS.data)
    data["image_files:1024"] = {
        "images": [
            {"id": i["Id"], "skipped": "larger than 1024 MiB"}
            for i in json.loads(data[IMAGES.key]["stdout"])
        ]
    }
    v = run("image_rule", {"rule": "setuid_files"}, Observations("n", {}, data))
    assert v.status is Status.NOT_VERIFIABLE
    assert "larger than 1024 MiB" in v.observed


def test_group_members() -> None:
    key = "cmd:getent group docker"
    params = {"group": "docker", "allowed_var": "casemate_docker_group_allow"}
    answer = {key: {"rc": 0, "stdout": "docker:x:998:alice,ci\n", "stderr": ""}}
    unset = run("group_members", params, Observations("n", {}, answer))
    assert (unset.status, unset.observed) == (
        Status.MANUAL,
        "members: alice, ci (set casemate_docker_group_allow to judge)",
    )
    ok = run(
        "group_members",
        params,
        Observations("n", {}, answer, {"casemate_docker_group_allow": ["alice", "ci"]}),
    )
    assert ok.status is Status.PASS
    bad = run(
        "group_members",
        params,
        Observations("n", {}, answer, {"casemate_docker_group_allow": ["ci"]}),
    )
    assert (bad.status, bad.observed) == (Status.FAIL, "not on the allow-list: alice")
    assert bad.evidence == (key, "var:casemate_docker_group_allow")
    none = run(
        "group_members", params, Observations("n", {}, {key: {"rc": 2, "stdout": "", "stderr": ""}})
    )
    assert none.status is Status.NOT_APPLICABLE


def test_container_rules_that_cannot_get_their_context_are_errors() -> None:
    data = dict(OBS.data)
    data[DOCKER_INFO.key] = {"rc": 0, "stdout": '{"ServerErrors": ["error during connect"]}', "stderr": ""}  # fmt: skip
    v = run("container_rule", {"rule": "apparmor_profile"}, Observations("n", {}, data))
    assert (v.status, v.observed) == (Status.ERROR, "error during connect")
    data = dict(OBS.data)
    data["read:/etc/docker/daemon.json"] = {"exists": True, "content": "{"}
    v = run("container_rule", {"rule": "no_new_privileges"}, Observations("n", {}, data))
    assert v.status is Status.ERROR
    assert "not valid JSON" in v.observed
