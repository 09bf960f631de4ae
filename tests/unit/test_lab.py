"""The lab's pure parts (recipe hashing, run flags, inventory, health, the up plan) and its input
checks. No Docker here: a stand-in `docker` script covers the calls that need one."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from casemate import cli
from casemate.errors import BadInputError, EnvironmentProblemError
from casemate.lab import LabNode, LabStatus, lab_down, lab_status, lab_up
from casemate.lab.health import failed_units, health_of
from casemate.lab.plan import Found, plan_nodes
from casemate.lab.recipe import (
    PACKAGES,
    PROFILE_GROUPS,
    build_args,
    debootstrap_args,
    inventory_text,
    make_recipe,
    network_create,
    network_name,
    node_names,
    node_order,
    recipe,
    run_args,
)
from casemate.locations import package_file

DOCKERFILE = package_file("lab", "image", "Dockerfile").read_text()
ENTRYPOINT = package_file("lab", "image", "entrypoint.sh").read_text()


# --- recipe and image tags ---------------------------------------------------------------------


def test_recipe_hash_is_stable() -> None:
    first = make_recipe("bookworm", DOCKERFILE, ENTRYPOINT)
    assert first == make_recipe("bookworm", DOCKERFILE, ENTRYPOINT)
    assert first == recipe("bookworm")
    # Pinned: a new hashing scheme would silently orphan every cached base image.
    assert first.base_tag == "casemate-base:bookworm-c7f90e31c96c"
    assert re.fullmatch(r"casemate-node:bookworm-[0-9a-f]{12}", first.node_tag)
    assert first.node_tag.endswith(first.node_hash)


def test_recipe_hash_follows_dockerfile_and_entrypoint() -> None:
    base = make_recipe("bookworm", DOCKERFILE, ENTRYPOINT)
    edited = make_recipe("bookworm", DOCKERFILE + "# a comment\n", ENTRYPOINT)
    new_entry = make_recipe("bookworm", DOCKERFILE, ENTRYPOINT.replace("exec", "exec "))
    assert len({base.node_tag, edited.node_tag, new_entry.node_tag}) == 3
    assert base.base_tag == edited.base_tag == new_entry.base_tag  # debootstrap is not redone


def test_recipe_differs_per_release() -> None:
    bookworm, trixie = recipe("bookworm"), recipe("trixie")
    assert trixie.base_tag.startswith("casemate-base:trixie-")
    assert bookworm.base_hash != trixie.base_hash
    assert bookworm.node_hash != trixie.node_hash


def test_rendered_dockerfile() -> None:
    r = recipe("bookworm")
    assert not re.search(r"@[A-Z]+@", r.dockerfile)
    assert f"FROM {r.base_tag}\n" in r.dockerfile
    for line in (
        "deb http://deb.debian.org/debian bookworm main",
        "deb http://deb.debian.org/debian bookworm-updates main",
        "deb http://deb.debian.org/debian-security bookworm-security main",
        "ENV container=docker",
        "STOPSIGNAL SIGRTMIN+3",
        "systemctl disable etcd.service",
        "--no-install-recommends " + " ".join(PACKAGES) + " \\",
    ):
        assert line in r.dockerfile
    masked = r.dockerfile.split("systemctl mask", 1)[1].split("&&", 1)[0].replace("\\", " ")
    assert masked.split() == [
        "getty@tty1.service",
        "console-getty.service",
        "systemd-udevd.service",
        "systemd-modules-load.service",
        "systemd-sysctl.service",  # it would write machine-wide kernel parameters at every boot
    ]


def test_trixie_adds_the_docker_client() -> None:
    assert " docker-cli " in recipe("trixie").dockerfile
    assert "docker-cli" not in recipe("bookworm").dockerfile


def test_unknown_release_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="--release must be one of bookworm, trixie"):
        recipe("sid")


def test_entrypoint_remounts_then_boots_systemd() -> None:
    subprocess.run(["sh", "-n", str(package_file("lab", "image", "entrypoint.sh"))], check=True)
    code = [line.strip() for line in ENTRYPOINT.splitlines() if not line.lstrip().startswith("#")]
    assert 'mount -o remount,rw /sys || say "cannot remount /sys read-write"' in code
    assert any(line.startswith('mount -o remount,bind,rw "$target"') for line in code)
    assert "cgroup | cgroup2)" in code
    assert [line for line in code if line][-1] == "exec /sbin/init"


def test_debootstrap_and_build_arguments() -> None:
    r = recipe("bookworm")
    assert debootstrap_args("bookworm", "/x/root") == [
        "debootstrap", "--variant=minbase", "bookworm", "/x/root", "http://deb.debian.org/debian"
    ]  # fmt: skip
    args = build_args(r, "/ctx", no_cache=False)
    assert args[0] == "build"
    assert args[args.index("--network") + 1] == "host"
    assert args[args.index("--tag") + 1] == r.node_tag
    assert args[args.index("--label") + 1] == f"io.casemate.recipe={r.node_hash}"
    assert args[-1] == "/ctx"
    assert "--no-cache" not in args
    assert "--no-cache" in build_args(r, "/ctx", no_cache=True)


# --- nodes -------------------------------------------------------------------------------------


def test_run_flags() -> None:
    args = run_args("lab", "casemate-lab-1", "casemate-node:bookworm-0123456789ab")
    pairs = list(zip(args[2:-1:2], args[3:-1:2], strict=True))
    assert args[:2] == ["run", "--detach"]
    assert pairs == [
        ("--name", "casemate-lab-1"),
        ("--hostname", "casemate-lab-1"),
        ("--network", "casemate-lab"),
        ("--label", "io.casemate.lab=lab"),
        ("--label", "io.casemate.lab.profile=docker"),
        ("--cap-add", "ALL"),
        ("--cap-drop", "SYS_RESOURCE"),
        ("--security-opt", "seccomp=unconfined"),
        ("--security-opt", "apparmor=unconfined"),
        ("--security-opt", "systempaths=unconfined"),
        ("--device-cgroup-rule", "a *:* rwm"),
        ("--cgroupns", "private"),
        ("--tmpfs", "/run"),
        ("--tmpfs", "/run/lock"),
        ("--tmpfs", "/tmp"),
        ("--volume", "/var/lib/docker"),
    ]
    assert args[-1] == "casemate-node:bookworm-0123456789ab"
    assert "--privileged" not in args  # this kind of host refuses it


def test_run_flags_of_a_k8s_node_differ_only_by_the_profile_label() -> None:
    docker = run_args("lab", "casemate-lab-1", "img:1")
    k8s = run_args("lab", "casemate-lab-1", "img:1", "k8s")
    assert [a for a in docker if a != "io.casemate.lab.profile=docker"] == [
        a for a in k8s if a != "io.casemate.lab.profile=k8s"
    ]
    assert k8s[k8s.index("io.casemate.lab.profile=k8s") - 1] == "--label"


def test_the_lab_network_reaches_nothing_beyond_the_machine() -> None:
    """Nodes get no default route: the host baseline turns on apt's daily timers, and a node
    whose timer fired would fetch from the Debian mirror in the middle of a test."""
    args = network_create("lab")
    assert args[:2] == ["network", "create"] and "--internal" in args
    assert args[-1] == network_name("lab")


def test_names() -> None:
    assert network_name("lab") == "casemate-lab"
    assert node_names("dev", 3) == ["casemate-dev-1", "casemate-dev-2", "casemate-dev-3"]
    names = ["casemate-lab-10", "casemate-lab-2", "casemate-lab-1"]
    assert sorted(names, key=node_order) == ["casemate-lab-1", "casemate-lab-2", "casemate-lab-10"]


def test_plan_keeps_replaces_and_trims() -> None:
    wanted = node_names("lab", 3)
    found = {
        "casemate-lab-1": Found(running=True, image_id="sha256:new"),
        "casemate-lab-2": Found(running=True, image_id="sha256:old"),
        "casemate-lab-3": Found(running=False, image_id="sha256:new"),
        "casemate-lab-4": Found(running=True, image_id="sha256:new"),
    }
    plan = plan_nodes(wanted, found, "sha256:new")
    assert plan.keep == ("casemate-lab-1",)
    assert plan.remove == ("casemate-lab-2", "casemate-lab-3", "casemate-lab-4")
    assert plan.start == ("casemate-lab-2", "casemate-lab-3")


def test_plan_of_a_running_lab_is_empty() -> None:
    wanted = node_names("lab", 2)
    found = {n: Found(running=True, image_id="sha256:x") for n in wanted}
    plan = plan_nodes(wanted, found, "sha256:x")
    assert (plan.keep, plan.remove, plan.start) == (tuple(wanted), (), ())


def test_plan_replaces_nodes_of_another_profile() -> None:
    wanted = node_names("lab", 2)
    found = {
        "casemate-lab-1": Found(running=True, image_id="sha256:x", profile="k8s"),
        "casemate-lab-2": Found(running=True, image_id="sha256:x"),  # no label: docker
    }
    plan = plan_nodes(wanted, found, "sha256:x", "k8s")
    assert (plan.keep, plan.remove, plan.start) == (
        ("casemate-lab-1",),
        ("casemate-lab-2",),
        ("casemate-lab-2",),
    )
    back = plan_nodes(wanted, found, "sha256:x")
    assert (back.keep, back.remove) == (("casemate-lab-2",), ("casemate-lab-1",))


def test_plan_shrinks_a_lab() -> None:
    found = {n: Found(running=True, image_id="sha256:x") for n in node_names("lab", 2)}
    plan = plan_nodes(node_names("lab", 1), found, "sha256:x")
    assert (plan.keep, plan.remove, plan.start) == (("casemate-lab-1",), ("casemate-lab-2",), ())


@pytest.mark.parametrize(
    ("output", "health"),
    [
        ("up running\n", "ready"),
        ("up degraded\n", "ready"),  # auditd cannot start in a container
        ("down starting\n", "starting"),
        ("down initializing\n", "starting"),
        ("up starting\n", "starting"),
        ("down unknown\n", "starting"),  # before systemd answers at all
        ("down degraded\n", "dockerd not answering"),
        ("up maintenance\n", "systemd maintenance"),
        ("up stopping\n", "systemd stopping"),
        ("", "no answer from the node"),
        ("OCI runtime exec failed\n", "no answer from the node"),
    ],
)
def test_health(output: str, health: str) -> None:
    assert health_of(output) == health


def test_failed_units_only_when_short() -> None:
    assert failed_units("auditd.service loaded failed failed Security Auditing\n") == (
        "auditd.service"
    )
    assert failed_units("") == ""
    many = "".join(f"unit-number-{i}.service loaded failed failed x\n" for i in range(20))
    assert failed_units(many) == ""


# --- inventory ---------------------------------------------------------------------------------


def test_inventory() -> None:
    text = inventory_text("lab", node_names("lab", 2))
    assert text.splitlines()[0] == "# written by casemate lab up; do not edit"
    assert "        casemate-lab-1: {ansible_host: casemate-lab-1}\n" in text
    assert "ansible_connection: docker        # the short name on purpose" in text
    assert yaml.safe_load(text) == {
        "all": {
            "children": {
                "docker_hosts": {
                    "hosts": {
                        "casemate-lab-1": {"ansible_host": "casemate-lab-1"},
                        "casemate-lab-2": {"ansible_host": "casemate-lab-2"},
                    }
                }
            },
            "vars": {
                "ansible_connection": "docker",
                "ansible_python_interpreter": "/usr/bin/python3",
                "ansible_become": False,
                "ansible_timeout": 60,
                "casemate_lab": "lab",
                "gvisor_runsc_args": ["--network=none"],
                "host_baseline_aide_rules": ["!/usr/", "!/var/", "!/opt/"],
            },
        }
    }


def test_k8s_inventory() -> None:
    text = inventory_text("kl", node_names("kl", 2), "k8s")
    doc = yaml.safe_load(text)
    hosts = {
        "casemate-kl-1": {"ansible_host": "casemate-kl-1"},
        "casemate-kl-2": {"ansible_host": "casemate-kl-2"},
    }
    # every node is a single-node cluster: control plane, worker and etcd member at once
    assert doc["all"]["children"] == {
        "k8s_control_plane": {"hosts": hosts},
        "k8s_workers": {"hosts": hosts},
        "etcd": {"hosts": hosts},
    }
    assert doc["all"]["vars"] == yaml.safe_load(inventory_text("kl", ["x"]))["all"]["vars"]
    assert "docker_hosts" not in text


def test_docker_inventory_is_the_default() -> None:
    nodes = node_names("lab", 2)
    assert inventory_text("lab", nodes) == inventory_text("lab", nodes, "docker")
    assert PROFILE_GROUPS == {
        "docker": ("docker_hosts",),
        "k8s": ("k8s_control_plane", "k8s_workers", "etcd"),
    }


# --- input checks and the docker CLI -----------------------------------------------------------


@pytest.mark.parametrize("profile", ["", "K8s", "kubernetes", "docker "])
def test_bad_profile(profile: str, tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as caught:
        lab_up("lab", 1, tmp_path, print, docker="/nonexistent/docker", profile=profile)
    assert str(caught.value) == f"--profile must be one of docker, k8s, not {profile!r}"


def test_bad_profile_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no docker at all: it must not be reached
    with pytest.raises(SystemExit) as done:
        cli.main(["--state-dir", str(tmp_path), "lab", "up", "--profile", "k9s"])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert err == "casemate: error: --profile must be one of docker, k8s, not 'k9s'\n"


@pytest.mark.parametrize("name", ["", "Lab", "1lab", "-lab", "la_b", "lab\n", "a" * 22, "lab lab"])
def test_bad_lab_name(name: str, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="lab name"):
        lab_up(name, 1, tmp_path, print, docker="/nonexistent/docker")
    with pytest.raises(BadInputError, match="lab name"):
        lab_status(name, tmp_path, docker="/nonexistent/docker")
    with pytest.raises(BadInputError, match="lab name"):
        lab_down(name, tmp_path, print, docker="/nonexistent/docker")


@pytest.mark.parametrize("nodes", [0, -1, 21])
def test_bad_node_count(nodes: int, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="--nodes must be between 1 and 20"):
        lab_up("lab", nodes, tmp_path, print, docker="/nonexistent/docker")


@pytest.mark.parametrize("name", ["a", "lab", "dev-2", "a" * 21])
def test_good_lab_names_reach_docker(name: str, tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblemError, match="not found"):
        lab_up(name, 20, tmp_path, print, docker="/nonexistent/docker")


def test_no_daemon(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblemError) as caught:
        lab_status("lab", tmp_path, docker="false")
    assert str(caught.value) == "docker daemon not reachable: start dockerd (see README)"


@pytest.fixture
def empty_docker(tmp_path: Path) -> tuple[str, Path]:
    """A `docker` that knows no containers and no networks, and logs its arguments."""
    log = tmp_path / "calls"
    script = tmp_path / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$1" in\n'
        "  version) echo 20.10.24 ;;\n"
        "  ps) ;;\n"
        "  network) exit 1 ;;\n"
        '  *) echo "unexpected call" >&2; exit 1 ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    return str(script), log


def test_down_without_a_lab_is_quiet(empty_docker: tuple[str, Path], tmp_path: Path) -> None:
    docker, log = empty_docker
    state = tmp_path / "state"
    stale = state / "lab" / "dev" / "inventory.yml"
    stale.parent.mkdir(parents=True)
    stale.write_text("# stale\n")
    said: list[str] = []
    lab_down("dev", state, said.append, docker=docker)
    lab_down("dev", state, said.append, docker=docker)
    assert not stale.exists()
    assert said == ["lab dev has no nodes", "lab dev has no nodes"]
    calls = log.read_text().splitlines()
    assert "ps -aq --filter label=io.casemate.lab=dev" in calls
    assert not [c for c in calls if c.startswith(("rm", "network rm"))]


def test_status_of_no_lab(empty_docker: tuple[str, Path], tmp_path: Path) -> None:
    docker, _ = empty_docker
    assert lab_status("dev", tmp_path, docker=docker) == LabStatus(
        name="dev", image=None, network="casemate-dev", nodes=(), inventory=None
    )


def test_status_types_are_frozen() -> None:
    node = LabNode("casemate-lab-1", "172.18.0.2", "running", "ready")
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.health = "x"  # type: ignore[misc]


def test_status_probes_each_node_as_its_profile(tmp_path: Path) -> None:
    """A k8s node is probed for containerd and etcd (its docker is masked), a node without a
    profile label (from before profiles) as a docker node."""
    inspect = [
        {
            "Name": f"/casemate-dev-{i}",
            "Config": {"Image": "img:1", "Labels": labels},
            "State": {"Running": True, "Status": "running"},
            "NetworkSettings": {"Networks": {"casemate-dev": {"IPAddress": f"172.30.0.{i}"}}},
        }
        for i, labels in ((1, {"io.casemate.lab.profile": "k8s"}), (2, {}))
    ]
    (tmp_path / "inspect.json").write_text(json.dumps(inspect))
    script = tmp_path / "docker"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  version) echo 20.10.24 ;;\n"
        "  ps) echo a b ;;\n"
        f"  inspect) cat {tmp_path / 'inspect.json'} ;;\n"
        '  exec) case "$*" in *"ctr version"*) echo "up up degraded" ;; *) echo "down degraded" ;; esac ;;\n'
        "  *) exit 1 ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    status = lab_status("dev", tmp_path, docker=str(script))
    assert [(n.name, n.profile, n.health) for n in status.nodes] == [
        ("casemate-dev-1", "k8s", "ready"),
        ("casemate-dev-2", "docker", "dockerd not answering"),
    ]
    assert status.profile is None  # mixed
