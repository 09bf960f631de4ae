"""Before a play: which hosts can be reached at all. One trivial command per host, all hosts at
once, so that a fleet with dead entries costs one connection attempt each instead of a failed task
per host in every play."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from casemate.errors import BadInputError
from casemate.inventory import Inventory
from casemate.probe.collect import CommandResult, Transport

TransportFor = Callable[[Inventory, str], Transport]
COMMAND = "true"
WORKERS = 64  # connection attempts wait on the network, not on this machine's CPU


def _without_become(inventory: Inventory, hosts: Iterable[str]) -> Inventory:
    """The same inventory with privilege escalation off: reaching a host needs no sudo (and no
    become password)."""
    raw = dict(inventory.raw)
    meta = dict(raw.get("_meta", {}))
    hostvars = {h: dict(v) for h, v in meta.get("hostvars", {}).items()}
    for host in hosts:
        hostvars.setdefault(host, {})["ansible_become"] = False
    meta["hostvars"] = hostvars
    raw["_meta"] = meta
    return Inventory(source=inventory.source, raw=raw)


def _said(stderr: str, stdout: str, rc: int) -> str:
    lines = [x.strip() for x in (stderr or stdout).splitlines() if x.strip()]
    return lines[-1][:300] if lines else f"exit status {rc}"


@dataclass(frozen=True, slots=True)
class Reached:
    """What running one command on a host came to: its result, or why the connection failed
    (`gone`), or `unsupported` (a connection testinfra lacks: left to Ansible)."""

    result: CommandResult | None = None
    gone: str | None = None
    unsupported: bool = False


def run_everywhere(
    inventory: Inventory,
    hosts: list[str],
    command: Callable[[str], str],
    transport_for: TransportFor | None = None,
) -> dict[str, Reached]:
    """`command(host)` run once on every host, all at once, without sudo (a command that needs
    root asks for it itself)."""
    if transport_for is None:
        from casemate.probe.transport import host_transport  # noqa: PLC0415 - testinfra

        transport_for = host_transport
    plain = _without_become(inventory, hosts)

    def attempt(host: str) -> Reached:
        try:
            transport = transport_for(plain, host)
        except BadInputError:
            return Reached(unsupported=True)
        try:
            return Reached(transport.run(command(host)))
        except Exception as exc:  # testinfra backends raise many kinds; all mean "no connection"
            failed: Any = exc.args[0] if exc.args else None
            if hasattr(failed, "stderr") and hasattr(failed, "rc"):  # ssh: the failed command
                why = _said(str(failed.stderr), str(getattr(failed, "stdout", "")), failed.rc)
                return Reached(gone=why)
            return Reached(gone=" ".join(str(exc).split())[:300] or type(exc).__name__)

    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(hosts))) as pool:
        return dict(zip(hosts, pool.map(attempt, hosts), strict=True))


def said(result: CommandResult) -> str:
    """The last line a failed command printed (stderr first)."""
    return _said(result.stderr, result.stdout, result.rc)


def unreachable(
    inventory: Inventory, hosts: list[str], transport_for: TransportFor | None = None
) -> dict[str, str]:
    """host -> what the connection said, for every host on which `true` could not be run. A host
    whose connection casemate cannot open itself (a connection plugin testinfra lacks) is left to
    Ansible: it is not reported here."""
    out: dict[str, str] = {}
    for host, reached in run_everywhere(inventory, hosts, lambda _: COMMAND, transport_for).items():
        if reached.gone is not None:
            out[host] = reached.gone
        elif reached.result is not None and reached.result.rc != 0:
            out[host] = said(reached.result)
    return out
