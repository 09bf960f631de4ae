"""Profile immutable turns SSH off. Before any host is touched, each host gets its break-glass
path: a host this run reaches over SSH is refused unless the operator names one (console, serial,
or a Docker or SSM connection); a path casemate can use is proven by running a command over it, and
the proof goes into the run's evidence."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from casemate.catalog.model import Entry, Profile
from casemate.errors import BadInputError
from casemate.inventory import Inventory
from casemate.probe.collect import Transport
from casemate.rundir import now_utc

PATHS = ("console", "serial", "docker", "ssm")
SSH_ROLE = "sshd"
# inventory variable: the connection variables of a host's break-glass path, for hosts this run
# reaches over SSH, e.g. {ansible_connection: community.docker.docker, ansible_host: node-1}
VAR = "casemate_break_glass"
SSH = frozenset(
    {
        "ssh",
        "smart",
        "paramiko",
        "paramiko_ssh",
        "ansible.builtin.ssh",
        "ansible.builtin.paramiko_ssh",
    }
)
KINDS = {
    "docker": frozenset({"docker", "community.docker.docker", "community.docker.docker_api"}),
    "ssm": frozenset({"aws_ssm", "community.aws.aws_ssm", "amazon.aws.aws_ssm"}),
    "local": frozenset({"local", "ansible.builtin.local"}),
}
# what casemate's verifier (testinfra) can run a command over
PROVABLE = frozenset({"docker", "local"})
PROOF_COMMAND = "echo casemate-break-glass; id -un; hostname"

TransportFor = Callable[[Inventory, str], Transport]


@dataclass(frozen=True, slots=True)
class HostPath:
    """How a host stays reachable once SSH is off."""

    host: str
    connection: str  # the run's own connection to the host
    path: str  # console, serial, docker, ssm, local, or another connection's name
    declared: bool  # named by the operator (--break-glass) rather than the run's own connection
    variables: Mapping[str, Any] = field(default_factory=dict)  # overrides for the proof

    @property
    def provable(self) -> bool:
        return self.path in PROVABLE


def connection_of(hostvars: Mapping[str, Any]) -> str:
    return str(hostvars.get("ansible_connection") or "ssh")


def kind_of(connection: str) -> str:
    if connection in SSH:
        return "ssh"
    return next((k for k, names in KINDS.items() if connection in names), connection)


def turns_ssh_off(entries: Iterable[Entry]) -> bool:
    """Whether a selection turns SSH off: it remediates an SSH control of the immutable profile."""
    return any(
        e.control.remediation is not None
        and e.control.remediation.role == SSH_ROLE
        and "standard" not in e.control.profiles
        for e in entries
    )


def assess(
    inventory: Inventory,
    hosts: list[str],
    profile: Profile | str,
    break_glass: str | None,
    ssh_off: bool = True,
) -> list[HostPath]:
    """Every host's break-glass path, or one line of bad input naming each host that has none."""
    if break_glass is not None and break_glass not in PATHS:
        raise BadInputError(f"--break-glass must be one of {', '.join(PATHS)}, not '{break_glass}'")
    if profile != "immutable":
        if break_glass is not None:
            raise BadInputError("--break-glass only means something with --profile immutable")
        return []
    if not ssh_off:
        return []
    paths, refused = [], []
    for host in hosts:
        hostvars = inventory.hostvars(host)
        conn = connection_of(hostvars)
        if kind_of(conn) != "ssh":
            paths.append(HostPath(host, conn, kind_of(conn), declared=False))
        elif break_glass is None:
            refused.append(host)
        elif break_glass in ("console", "serial"):
            paths.append(HostPath(host, conn, break_glass, declared=True))
        else:
            paths.append(
                HostPath(host, conn, break_glass, True, _variables(host, hostvars, break_glass))
            )
    if refused:
        raise BadInputError(
            f"profile immutable turns SSH off, but this run reaches {', '.join(refused)} over SSH; "
            f"name the break-glass path with --break-glass {'|'.join(PATHS)} (nothing was changed)"
        )
    return paths


def _variables(host: str, hostvars: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    found = hostvars.get(VAR)
    example = "community.docker.docker" if path == "docker" else "community.aws.aws_ssm"
    if not isinstance(found, Mapping) or kind_of(str(found.get("ansible_connection", ""))) != path:
        raise BadInputError(
            f"{host}: --break-glass {path} needs the {path} connection in the inventory as {VAR} "
            f"(e.g. {{ansible_connection: {example}, ansible_host: ...}})"
        )
    return dict(found)


def _with(inventory: Inventory, host: str, variables: Mapping[str, Any]) -> Inventory:
    raw = dict(inventory.raw)
    meta = dict(raw.get("_meta", {}))
    hostvars = dict(meta.get("hostvars", {}))
    hostvars[host] = {**hostvars.get(host, {}), **variables}
    meta["hostvars"] = hostvars
    raw["_meta"] = meta
    return Inventory(source=inventory.source, raw=raw)


def prove(
    inventory: Inventory, paths: list[HostPath], transport_for: TransportFor | None = None
) -> dict[str, dict[str, Any]]:
    """Run a command over every break-glass path casemate can use; the record of each host's path
    (with the proof, or why there is none). A path that does not work is bad input: SSH must not go
    off on a host whose way back in is broken."""
    if transport_for is None:
        from casemate.probe.transport import host_transport  # noqa: PLC0415 - testinfra

        transport_for = host_transport
    record: dict[str, dict[str, Any]] = {}
    for p in paths:
        entry: dict[str, Any] = {
            "connection": p.connection,
            "path": p.path,
            "declared_by_operator": p.declared,
            "connection_vars": dict(p.variables),
        }
        if not p.provable:
            entry["proven"] = False
            entry["why"] = (
                f"{p.path} is not a connection casemate can run a command over; taken as declared"
            )
            record[p.host] = entry
            continue
        entry.update(_proof(inventory, p, transport_for))
        if not entry["proven"]:
            raise BadInputError(
                f"{p.host}: the break-glass path ({p.path}) does not work: {entry['why']}; "
                "refusing to turn SSH off (nothing was changed)"
            )
        record[p.host] = entry
    return record


def _proof(inventory: Inventory, p: HostPath, transport_for: TransportFor) -> dict[str, Any]:
    at = now_utc().isoformat()
    try:
        transport = transport_for(_with(inventory, p.host, p.variables), p.host)
        result = transport.run(PROOF_COMMAND)
    except Exception as exc:  # testinfra backends raise many kinds; all mean "no way in"
        return {"proven": False, "at": at, "why": " ".join(str(exc).split())[:300]}
    lines = result.stdout.splitlines()
    proven = result.rc == 0 and bool(lines) and lines[0].strip() == "casemate-break-glass"
    said = " ".join((result.stderr or result.stdout).split())[:300]
    return {
        "proven": proven,
        "at": at,
        "command": PROOF_COMMAND,
        "rc": result.rc,
        "stdout": result.stdout[-500:],
        **({} if proven else {"why": f"exit {result.rc}: {said}" if said else f"exit {result.rc}"}),
    }
