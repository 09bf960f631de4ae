"""The only place casemate calls Ansible (through ansible-runner). Decisions come from runner
status, return codes, stats and events, never from parsing Ansible's printed output."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from casemate import interrupts, inventory_cache
from casemate.errors import InventoryError, RunFailedError
from casemate.inventory import Inventory

# `auto` (the default) runs mitogen_linear wherever mitogen can drive every host of the run, else
# linear, saying why (docs/harden.md: a task costs about a quarter of linear's controller CPU).
STRATEGIES: tuple[str, ...] = ("auto", "linear", "free", "mitogen_linear", "mitogen_free")
# The connections mitogen's strategy takes over, by the short name Ansible resolves them with
# (ansible_mitogen/plugins/connection); a host on any other runs Ansible's own connection plugin,
# which auto does not mix into a mitogen run.
MITOGEN_CONNECTIONS = frozenset(
    {"ssh", "local", "docker", "podman", "buildah", "lxc", "lxd", "incus", "kubectl",
     "machinectl", "setns", "jail"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StrategyChoice:
    name: str  # what ansible-playbook runs with
    why: str = ""  # set when auto fell back to linear: the one line saying why


def choose_strategy(requested: str, connections: Mapping[str, str]) -> StrategyChoice:
    """The strategy a run uses: what was asked, or for `auto` mitogen_linear where mitogen is
    installed and drives every host's connection (host -> ansible_connection), else linear."""
    if requested != "auto":
        return StrategyChoice(requested)
    if importlib.util.find_spec("ansible_mitogen") is None:
        return StrategyChoice("linear", "the mitogen package is not installed")
    other = sorted((h, c) for h, c in connections.items() if c not in MITOGEN_CONNECTIONS)
    if other:
        host, conn = other[0]
        more = f" (and {len(other) - 1} more)" if len(other) > 1 else ""
        return StrategyChoice(
            "linear", f"mitogen does not drive connection '{conn}' of {host}{more}"
        )
    return StrategyChoice("mitogen_linear")


@dataclass(frozen=True, slots=True)
class HostEvent:
    host: str
    task: str
    status: Literal["ok", "changed", "failed", "skipped", "unreachable", "rescued"]
    message: str = ""


@dataclass(frozen=True, slots=True)
class HostStats:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0


@dataclass(frozen=True, slots=True)
class PlaybookOutcome:
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    rc: int
    hosts: dict[str, HostStats]
    messages: dict[str, list[str]] = field(default_factory=dict)  # host -> failure messages
    strategy: str = "linear"
    stats_from: Literal["play", "events", "none"] = "play"  # Ansible's recap, or counted events
    # host -> what casemate's own modules returned as `casemate_record` (merged per host): the
    # change manifest of a harden run, what a rollback restored or refused
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


def _ensure_tools_on_path() -> None:
    """ansible-runner finds ansible-playbook on PATH; make it the one beside this interpreter."""
    here = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if here not in parts:
        os.environ["PATH"] = os.pathsep.join([here, *parts])


def _inventory_error(stderr: str) -> str:
    """The most useful single line of ansible-inventory's complaint."""
    origin = re.search(r"Origin: (\S+?)(?::(\d+))?(?::\d+)?\s*$", stderr, re.M)
    reasons = re.findall(r"<<< caused by >>>\s*\n\s*(.+)", stderr)
    line = f" line {origin.group(2)}" if origin and origin.group(2) else ""
    if reasons:
        return f"{reasons[0].strip().rstrip('.')}{line and ' (' + line.strip() + ')'}"
    errors = re.findall(r"\[ERROR\]: (.+)", stderr)
    if errors:
        return str(errors[0]).strip()
    tail = [x for x in stderr.strip().splitlines() if x.strip()]
    return tail[-1] if tail else "ansible-inventory could not read it"


def resolve_inventory(
    path: Path, state: Path | None = None, environ: Mapping[str, str] | None = None
) -> Inventory:
    """Parse an inventory with ansible-inventory (no host is contacted). With a state directory, a
    static inventory resolved before under the same files, settings and environment is read back
    from its cache instead (inventory_cache.py says what is cached, and what never is)."""
    if not path.exists():
        raise InventoryError(f"inventory {path}: no such file or directory")
    environ = os.environ if environ is None else environ
    cache_key = inventory_cache.key(path, environ) if state is not None else None
    if state is not None and cache_key is not None:
        cached = inventory_cache.load(state, cache_key)
        if cached is not None:
            return Inventory(source=path, raw=cached)
    inventory = Inventory(source=path, raw=_ansible_inventory(path))
    if not inventory.hosts():
        raise InventoryError(f"inventory {path}: it defines no hosts")
    if (
        state is not None
        and cache_key is not None
        and inventory.redacted(inventory.redactor(environ)) == inventory.raw  # holds no secret
        and inventory_cache.key(path, environ) == cache_key  # nothing changed while it ran
    ):
        inventory_cache.store(state, cache_key, inventory.raw)
    return inventory


def _ansible_inventory(path: Path) -> dict[str, Any]:
    """`ansible-inventory --list` of `path`."""
    _ensure_tools_on_path()
    import ansible_runner  # noqa: PLC0415 - commands that touch no host never import Ansible

    try:
        out, err = ansible_runner.get_inventory(
            action="list",
            inventories=[str(path.resolve())],
            response_format="json",
            quiet=True,
            envvars={
                "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
                "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
                "ANSIBLE_DEPRECATION_WARNINGS": "False",
            },
        )
    except Exception as exc:  # ansible-runner raises its own and OS errors alike
        raise InventoryError(f"inventory {path}: {exc}") from None
    if not isinstance(out, dict):
        raise InventoryError(f"inventory {path}: {_inventory_error(str(err or ''))}")
    return out


def _strategy_env(strategy: str) -> dict[str, str]:
    if not strategy.startswith("mitogen"):
        return {"ANSIBLE_STRATEGY": strategy}
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or spec.origin is None:
        raise RunFailedError(f"strategy {strategy} needs the mitogen package (pip install mitogen)")
    plugins = Path(spec.origin).parent / "plugins" / "strategy"
    return {"ANSIBLE_STRATEGY": strategy, "ANSIBLE_STRATEGY_PLUGINS": str(plugins)}


def host_event(raw: Mapping[str, Any]) -> HostEvent | None:
    """The per-host outcome of one task in an ansible-runner event, or None for other events."""
    kinds = {
        "runner_on_ok": "ok",
        "runner_on_failed": "failed",
        "runner_on_unreachable": "unreachable",
        "runner_on_skipped": "skipped",
    }
    status = kinds.get(str(raw.get("event")))
    data = raw.get("event_data") or {}
    host = data.get("host")
    if status is None or not host:
        return None
    res = data.get("res") or {}
    if status == "ok" and res.get("changed"):
        status = "changed"
    message = str(res.get("msg") or res.get("stderr") or "").strip()
    detail = [x for x in str(res.get("module_stderr") or "").splitlines() if x.strip()]
    if detail:  # what the connection said, e.g. "No such container" or an SSH refusal
        message = f"{message}: {detail[-1].strip()}" if message else detail[-1].strip()
    if status == "failed" and data.get("ignore_errors"):
        status = "ok"
    return HostEvent(host=host, task=str(data.get("task", "")), status=status, message=message)  # type: ignore[arg-type]


def casemate_record(raw: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The host and the `casemate_record` a casemate module returned, from an ansible-runner event
    (a task that succeeded or failed), or None."""
    if raw.get("event") not in ("runner_on_ok", "runner_on_failed"):
        return None
    data = raw.get("event_data") or {}
    found = (data.get("res") or {}).get("casemate_record")
    if not data.get("host") or not isinstance(found, dict) or not found:
        return None
    return str(data["host"]), dict(found)


def tally_events(artifacts: Path) -> dict[str, HostStats]:
    """Per-host counts from the events ansible-runner stored, for a play that never reached its
    recap (casemate was killed while it ran)."""
    seen: dict[str, dict[str, int]] = {}
    for path in sorted(artifacts.glob("*/job_events/*.json")):
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # an event cut off mid-write by the kill
        event = host_event(raw) if isinstance(raw, dict) else None
        if event is not None:
            tally = seen.setdefault(event.host, {})
            for key in _TALLY[event.status]:
                tally[key] = tally.get(key, 0) + 1
    return {host: HostStats(**counts) for host, counts in seen.items()}


def run_playbook(
    *,
    artifacts: Path,
    content: Path,
    playbook: str,
    inventory: Path,
    hosts: list[str],
    tags: list[str],
    extravars: Mapping[str, Any],
    check: bool,
    diff: bool,
    strategy: str,
    forks: int,
    on_event: Callable[[HostEvent], None],
    skip_tags: Sequence[str] = (),
    playbook_file: Path | None = None,
) -> PlaybookOutcome:
    """Run one playbook. Unreachable or failing hosts are reported; the others still finish.
    `skip_tags`: tags whose tasks do not run, `always` ones included (roleset.skipped).
    `playbook_file`: the playbook trimmed for this run (roleset.write_trimmed), played instead of
    `playbook` from the content's playbooks/ (its roles come from the content's roles/ as ever)."""
    _ensure_tools_on_path()
    chosen = strategy
    envvars = {
        "ANSIBLE_ROLES_PATH": str(content / "roles"),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        PLAY_MARKER: str(artifacts),  # every process of this play carries it: end_leftovers
        **_strategy_env(chosen),
    }
    messages: dict[str, list[str]] = {}
    seen: dict[str, dict[str, int]] = {}  # per host, what the events said (when no stats come)
    records: dict[str, dict[str, Any]] = {}

    def handle(raw: Mapping[str, Any]) -> bool:
        returned = casemate_record(raw)
        if returned is not None:
            records.setdefault(returned[0], {}).update(returned[1])
        event = host_event(raw)
        if event is not None:
            if event.status in ("failed", "unreachable") and event.message:
                messages.setdefault(event.host, []).append(f"{event.task}: {event.message}")
            tally = seen.setdefault(event.host, {})
            for key in _TALLY[event.status]:
                tally[key] = tally.get(key, 0) + 1
            on_event(event)
        return True  # keep the event in the artifacts

    import ansible_runner  # noqa: PLC0415 - commands that touch no host never import Ansible

    artifacts.mkdir(mode=0o700, parents=True, exist_ok=True)
    cmdline = " ".join(x for x in ("--check" if check else "", "--diff" if diff else "") if x)
    # ansible-runner's own Ctrl-C and SIGTERM handlers end with the play (interrupts.kept); then,
    # unless it succeeded (also when it raised), what it leaves running is ended (end_leftovers)
    with _ending_leftovers(str(artifacts)) as play, interrupts.kept():
        result = ansible_runner.run(
            private_data_dir=str(artifacts),
            playbook=str(playbook_file or content / "playbooks" / playbook),
            inventory=str(inventory.resolve()),
            limit=",".join(hosts),
            tags=",".join(tags) if tags else None,
            skip_tags=",".join(skip_tags) if skip_tags else None,
            extravars=dict(extravars),
            cmdline=cmdline or None,
            forks=forks,
            envvars=envvars,
            event_handler=handle,
            quiet=True,
            # no env/ files (envvars, extravars, cmdline): nothing is kept that the run does not
            # need; the artifacts ansible-runner must write are redacted afterwards (RunDir.seal)
            suppress_env_files=True,
        )
        play.succeeded = result.status == "successful"
    stats = result.stats
    per_host: dict[str, HostStats] = {}
    for host in hosts:
        if stats is None:  # the play never ended (interrupted, killed): count its events
            per_host[host] = HostStats(**seen.get(host, {}))
            continue
        per_host[host] = HostStats(
            ok=int(stats.get("ok", {}).get(host, 0)),
            changed=int(stats.get("changed", {}).get(host, 0)),
            failed=int(stats.get("failures", {}).get(host, 0)),
            unreachable=int(stats.get("dark", {}).get(host, 0)),
            skipped=int(stats.get("skipped", {}).get(host, 0)),
            rescued=int(stats.get("rescued", {}).get(host, 0)),
        )
    return PlaybookOutcome(
        status=str(result.status),
        rc=int(result.rc or 0),
        hosts=per_host,
        messages=messages,
        strategy=chosen,
        stats_from="events" if stats is None else "play",
        records=records,
    )


# The environment variable every process of one play inherits (its value: the run's artifacts
# directory), by which end_leftovers finds those still alive after the play.
PLAY_MARKER = "CASEMATE_PLAY"
PROC = Path("/proc")


@dataclass(slots=True)
class _Play:
    succeeded: bool = False


@contextmanager
def _ending_leftovers(marker: str) -> Iterator[_Play]:
    """Around one play: unless the play is marked succeeded, end_leftovers(marker) at the end,
    whether the play returned or raised."""
    play = _Play()
    try:
        yield play
    finally:
        if not play.succeeded:
            end_leftovers(marker)


def end_leftovers(marker: str, *, grace: float = 2.0) -> list[int]:
    """End the processes of one play (PLAY_MARKER=`marker` in their environment) still alive
    after ansible-runner ended it; returns their pids. ansible-runner cancels a play (Ctrl-C,
    SIGTERM) by killing ansible-playbook's process group, but Ansible's task workers each start a
    session of their own (`setsid`) and so outlive it: a worker in the middle of a task then
    waits for its answer forever. Each gets SIGTERM, and SIGKILL after `grace` seconds. Read
    from /proc: where there is none, nothing is done."""
    needle = f"\0{PLAY_MARKER}={marker}\0".encode()
    found: list[int] = []
    try:
        entries = [e for e in PROC.iterdir() if e.name.isdigit() and int(e.name) != os.getpid()]
    except OSError:
        return found
    for entry in entries:
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if needle in b"\0" + environ:
            found.append(int(entry.name))
    alive = [pid for pid in found if _signal(pid, signal.SIGTERM)]
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _running(pid)]
    for pid in alive:  # still running just now: never a pid that has ended and been taken again
        _signal(pid, signal.SIGKILL)
    return found


def _signal(pid: int, signum: int) -> bool:
    try:
        os.kill(pid, signum)
    except OSError:  # gone already
        return False
    return True


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie lasts until its new parent reaps it)."""
    try:
        state = (PROC / str(pid) / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != b"Z"


# which counters an event adds to, as Ansible's own recap counts them (a changed task is also ok)
_TALLY: dict[str, tuple[str, ...]] = {
    "ok": ("ok",),
    "changed": ("ok", "changed"),
    "failed": ("failed",),
    "skipped": ("skipped",),
    "unreachable": ("unreachable",),
    "rescued": ("rescued",),
}


def galaxy_collection_build(staged: Path, output: Path) -> None:
    """`ansible-galaxy collection build` of the collection tree `staged` into `output`."""
    _ensure_tools_on_path()
    import ansible_runner  # noqa: PLC0415 - commands that touch no host never import Ansible

    out, err, rc = ansible_runner.run_command(
        executable_cmd="ansible-galaxy",
        cmdline_args=["collection", "build", str(staged), "--output-path", str(output), "--force"],
        input_fd=None,
        output_fd=None,
        error_fd=None,
        quiet=True,
        envvars={"ANSIBLE_NOCOLOR": "True"},
    )
    if rc != 0:
        said = [x.strip() for x in f"{err or ''}\n{out or ''}".splitlines() if x.strip()]
        raise RunFailedError(f"ansible-galaxy collection build failed: {said[0] if said else rc}")
