"""Bring the lab up, show it, take it down: node containers, their network and the inventory."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casemate import private
from casemate.errors import CasemateError, LabError
from casemate.lab.engine import Engine, last_line
from casemate.lab.health import FAILED_UNITS, READY, STARTING, failed_units, probe_for
from casemate.lab.image import ensure_image
from casemate.lab.layout import FACTS_PROBE, RUN, facts_of, layout_script
from casemate.lab.plan import Found, plan_nodes
from casemate.lab.recipe import (
    LAB_LABEL,
    PROFILE_LABEL,
    inventory_text,
    network_create,
    network_name,
    node_names,
    node_order,
    recipe,
    run_args,
    validate_name,
    validate_nodes,
    validate_profile,
)

READY_TIMEOUT = 90.0
POLL_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class LabNode:
    name: str  # container name, e.g. "casemate-lab-1"
    address: str  # its IP on the lab network ("" if not running)
    state: str  # docker's container state: running, exited...
    health: str  # "ready", "starting", or a short reason
    profile: str = "docker"  # what the node is: docker (container host) or k8s (kubeadm node)


@dataclass(frozen=True, slots=True)
class LabStatus:
    name: str  # lab name, e.g. "lab"
    image: str | None  # node image tag in use (None: no nodes, or nodes on different images)
    network: str  # "casemate-lab"
    nodes: tuple[LabNode, ...]
    inventory: Path | None  # the written inventory file, if the lab has nodes
    profile: str | None = None  # the nodes' profile (None: no nodes, or nodes of several)


@dataclass(frozen=True, slots=True)
class _Up:
    """How long a node took: to be ready, and to get its k8s layout (None: docker profile)."""

    ready_s: float
    layout_s: float | None = None
    layout_kept: bool = False


def inventory_path(state: Path, lab: str) -> Path:
    return state / "lab" / lab / "inventory.yml"


def lab_build(
    state: Path,
    progress: Callable[[str], None],
    *,
    release: str = "bookworm",
    rebuild: bool = False,
    docker: str = "docker",
) -> str:
    """Build the node image unless it is cached (or again, with `rebuild`); its tag."""
    r = recipe(release)
    engine = Engine(docker)
    engine.ping()
    return ensure_image(engine, r, state / "lab" / "build", progress, rebuild=rebuild)


def lab_up(
    name: str,
    nodes: int,
    state: Path,
    progress: Callable[[str], None],
    *,
    release: str = "bookworm",
    rebuild: bool = False,
    docker: str = "docker",
    ready_timeout: float = READY_TIMEOUT,
    profile: str = "docker",
) -> LabStatus:
    """Make the lab exactly `nodes` ready nodes of the current image and `profile` and write its
    inventory. A k8s node gets its kubeadm layout (PKI included) once it runs, then etcd.

    Idempotent: nodes already running the current image and profile are kept as they are;
    stopped ones, ones on another image or profile and surplus ones are removed (with their
    volumes) and started afresh."""
    validate_name(name)
    validate_nodes(nodes)
    validate_profile(profile)
    r = recipe(release)
    engine = Engine(docker)
    engine.ping()
    tag = ensure_image(engine, r, state / "lab" / "build", progress, rebuild=rebuild)
    image_id = engine.image_id(tag)
    if image_id is None:
        raise LabError(f"node image {tag} is missing right after it was built")
    net = network_name(name)
    if not engine.network_exists(net):
        engine.must(network_create(name), f"creating network {net}")
    found = {
        _name(c): Found(_running(c), str(c.get("Image", "")), _profile(c))
        for c in _lab(engine, name)
    }
    wanted = node_names(name, nodes)
    plan = plan_nodes(wanted, found, image_id, profile)
    inventory = inventory_path(state, name)
    if plan.remove or plan.start:
        inventory.unlink(missing_ok=True)  # written again once every node is ready
    if plan.remove:
        progress(
            f"removing {', '.join(plan.remove)} (surplus, stopped, on an older image or of"
            " another profile)"
        )
        engine.must(["rm", "--force", "--volumes", *plan.remove], "removing lab nodes")
    if plan.keep:
        progress(f"keeping {', '.join(plan.keep)} (already running {tag}, profile {profile})")
    if plan.start:
        progress(f"starting {', '.join(plan.start)} (profile {profile})")
    _bring_up(
        engine,
        lab=name,
        image=tag,
        profile=profile,
        start=plan.start,
        keep=plan.keep,
        progress=progress,
        timeout=ready_timeout,
    )
    private.state_dir(state, "lab", name)  # the state directory's lab part: 0700, its files 0600
    private.write(inventory, inventory_text(name, wanted, profile))
    return lab_status(name, state, docker=docker)


def lab_status(name: str, state: Path, *, docker: str = "docker") -> LabStatus:
    """The lab's nodes as docker sees them, each with a quick health probe if it runs."""
    validate_name(name)
    engine = Engine(docker)
    engine.ping()
    found = _lab(engine, name)
    running = [c for c in found if _running(c)]
    with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
        probed = pool.map(lambda c: _probe(engine, _name(c), _profile(c)), running)
        healths = dict(zip((_name(c) for c in running), probed, strict=True))
    nodes = tuple(
        LabNode(
            name=_name(c),
            address=_address(c, network_name(name)),
            state=str(c.get("State", {}).get("Status", "unknown")),
            health=healths.get(_name(c), f"not running (exit {_exit_code(c)})"),
            profile=_profile(c),
        )
        for c in found
    )
    images = {str(c.get("Config", {}).get("Image", "")) for c in found}
    profiles = {n.profile for n in nodes}
    inventory = inventory_path(state, name)
    return LabStatus(
        name=name,
        image=images.pop() if len(images) == 1 else None,
        network=network_name(name),
        nodes=nodes,
        inventory=inventory if nodes and inventory.is_file() else None,
        profile=profiles.pop() if len(profiles) == 1 else None,
    )


def lab_down(
    name: str, state: Path, progress: Callable[[str], None], *, docker: str = "docker"
) -> None:
    """Remove the lab's nodes with their volumes, its network and its inventory; the images stay
    cached. Taking down a lab that does not exist is not an error."""
    validate_name(name)
    engine = Engine(docker)
    engine.ping()
    found = [_name(c) for c in _lab(engine, name)]
    if found:
        progress(f"removing {', '.join(found)}")
        engine.must(["rm", "--force", "--volumes", *found], "removing lab nodes")
    net = network_name(name)
    if engine.network_exists(net):
        engine.must(["network", "rm", net], f"removing network {net}")
    inventory = inventory_path(state, name)
    inventory.unlink(missing_ok=True)
    if inventory.parent.is_dir() and not any(inventory.parent.iterdir()):
        inventory.parent.rmdir()
    progress(f"lab {name} is down" if found else f"lab {name} has no nodes")


# --- bringing nodes up -------------------------------------------------------------------------


def _bring_up(
    engine: Engine,
    *,
    lab: str,
    image: str,
    profile: str,
    start: Sequence[str],
    keep: Sequence[str],
    progress: Callable[[str], None],
    timeout: float,
) -> None:
    """Start `start` and wait for them and `keep` to be ready, all in parallel. Progress is
    reported from this thread only."""
    errors: list[CasemateError] = []
    with ThreadPoolExecutor(max_workers=max(1, len(start) + len(keep))) as pool:
        futures: dict[Future[_Up], str] = {
            pool.submit(
                _start_node, engine, n, lab=lab, image=image, profile=profile, timeout=timeout
            ): n
            for n in start
        }
        futures |= {
            pool.submit(_keep_node, engine, n, lab=lab, profile=profile, timeout=timeout): n
            for n in keep
        }
        for future in as_completed(futures):
            node = futures[future]
            try:
                up = future.result()
            except CasemateError as e:
                errors.append(e)
                continue
            layout = ""
            if up.layout_s is not None and not up.layout_kept:
                layout = f"; kubeadm layout and etcd {up.layout_s:.1f} s"
            progress(f"node {node} ready ({up.ready_s:.1f} s{layout})")
    if errors:
        more = f" ({len(errors) - 1} more node(s) failed too)" if len(errors) > 1 else ""
        raise LabError(f"{errors[0]}{more}")


def _start_node(
    engine: Engine, node: str, *, lab: str, image: str, profile: str, timeout: float
) -> _Up:
    began = time.monotonic()
    engine.must(run_args(lab, node, image, profile), f"starting node {node}")
    return _prepare(engine, node, lab=lab, profile=profile, began=began, timeout=timeout)


def _keep_node(engine: Engine, node: str, *, lab: str, profile: str, timeout: float) -> _Up:
    return _prepare(engine, node, lab=lab, profile=profile, began=time.monotonic(), timeout=timeout)


def _prepare(
    engine: Engine, node: str, *, lab: str, profile: str, began: float, timeout: float
) -> _Up:
    """A running node made ready: a k8s node gets its layout first (a no-op on a node that has
    it already, so kept nodes stay exactly as they are)."""
    layout_s, kept = None, False
    if profile == "k8s":
        layout_s, kept = _k8s_layout(engine, lab, node, timeout)
    return _Up(_wait_ready(engine, node, profile, began, timeout), layout_s, kept)


def _k8s_layout(engine: Engine, lab: str, node: str, timeout: float) -> tuple[float, bool]:
    """Write the kubeadm layout into `node` and start its etcd: (seconds it took, whether the
    node had it already)."""
    began = time.monotonic()
    address = _address(_inspect(engine, node), network_name(lab))
    facts = engine.sh(node, FACTS_PROBE, timeout=30)
    try:
        n = facts_of(facts.stdout, address)
    except ValueError:
        raise LabError(f"node {node}: cannot read its hostname and address") from None
    script = layout_script(n, int(time.time()))
    done = engine.run(["exec", "-i", node, "sh", "-c", RUN], stdin=script, timeout=timeout)
    if done.returncode != 0:
        why = last_line(done.stderr) or f"exit status {done.returncode}"
        raise LabError(f"kubeadm layout on node {node} failed: {why}")
    return time.monotonic() - began, done.stdout.startswith("kept:")


def _wait_ready(engine: Engine, node: str, profile: str, began: float, timeout: float) -> float:
    """Seconds from `began` until the node is ready; LabError after `timeout` seconds or as soon
    as the container stops."""
    while True:
        health = _probe(engine, node, profile)
        if health == READY:
            return time.monotonic() - began
        if health != STARTING and not _still_running(engine, node):
            logs = engine.run(["logs", "--tail", "5", node], timeout=30)
            said = last_line(logs.stdout + logs.stderr)
            raise LabError(f"node {node} stopped while booting{f': {said}' if said else ''}")
        if time.monotonic() - began > timeout:
            listing = engine.sh(node, FAILED_UNITS, timeout=15).stdout
            units = failed_units(listing)
            tail = f"; failed units: {units}" if units else ""
            raise LabError(
                f"node {node} not ready after {timeout:g} s (last state: {health}){tail}"
            )
        time.sleep(POLL_INTERVAL)


def _probe(engine: Engine, node: str, profile: str) -> str:
    probe, health_of = probe_for(profile)
    try:
        done = engine.sh(node, probe, timeout=15)
    except LabError:
        return "no answer within 15 s"
    return health_of(done.stdout) if done.returncode == 0 else "no answer from the node"


def _still_running(engine: Engine, node: str) -> bool:
    done = engine.run(["inspect", "--format", "{{.State.Running}}", node], timeout=30)
    return done.stdout.strip() == "true"


# --- reading docker inspect --------------------------------------------------------------------


def _lab(engine: Engine, lab: str) -> list[dict[str, Any]]:
    """The lab's containers, in node order."""
    return sorted(engine.containers(f"{LAB_LABEL}={lab}"), key=lambda c: node_order(_name(c)))


def _name(container: dict[str, Any]) -> str:
    return str(container.get("Name", "")).lstrip("/")


def _inspect(engine: Engine, node: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads(engine.must(["inspect", node], f"inspecting {node}"))
    return found[0] if found else {}


def _profile(container: dict[str, Any]) -> str:
    labels = container.get("Config", {}).get("Labels") or {}
    return str(labels.get(PROFILE_LABEL, "docker"))


def _running(container: dict[str, Any]) -> bool:
    return bool(container.get("State", {}).get("Running", False))


def _exit_code(container: dict[str, Any]) -> int:
    return int(container.get("State", {}).get("ExitCode", 0))


def _address(container: dict[str, Any], network: str) -> str:
    networks = container.get("NetworkSettings", {}).get("Networks") or {}
    return str((networks.get(network) or {}).get("IPAddress", ""))
