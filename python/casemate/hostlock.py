"""The host lock: a harden run holds a lock ON each host it changes, so that two runs never work on
one node at once, from one controller or from two.

The lock is a file, `/run/casemate/lock`, holding the run id, the controller's hostname and pid,
the start time and the expiry (host clock). Taking it costs one round trip per host, which is also
the reachability check before the play (probe/reach.py): probe/lock.py travels inside the command,
decides under flock(2) on the lock's directory, and answers in one JSON line. A lock whose expiry
passed (its run was killed; a running holder renews it, see `Renewal`) is taken over; /run is a
tmpfs, so a reboot frees it too. Taking it needs root: the command runs as the connecting user
when that is root, else under `sudo -n` (as verify's probe, no password prompt).
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import socket
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from casemate.inventory import Inventory
from casemate.locations import package_file
from casemate.probe import reach
from casemate.probe.transport import interpreter_of

LOCK_DIR = "/run/casemate"
DEFAULT_TTL = 900  # seconds: a killed run's lock frees its hosts within 15 minutes
RENEW_EVERY = DEFAULT_TTL // 3  # a running holder renews well before its lock expires
REACHED = "casemate-lock-reached"  # printed first: the connection worked, whatever follows
_REQUEST_MARKER = "REQUEST = {}"


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a host's lock, as its record says."""

    run_id: str
    controller: str
    started: datetime
    expires: datetime
    pid: int | None = None
    kind: str = ""
    unreadable: bool = False  # the file is not a casemate record: held until mtime + TTL

    def expired(self, now: datetime) -> bool:
        return self.expires <= now

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "controller": self.controller,
            "pid": self.pid,
            "kind": self.kind,
            "started": self.started.isoformat(),
            "expires": self.expires.isoformat(),
        }
        if self.unreadable:
            out["unreadable"] = True
        return out


def _moment(text: object) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"not a time: {text!r}")  # noqa: TRY004 - a bad answer, as strptime's
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    return moment.replace(tzinfo=UTC)


def parse_holder(raw: object) -> Holder:
    """A lock record as the host script answers it. ValueError when it is not one."""
    if not isinstance(raw, Mapping):
        raise ValueError("a lock record is a mapping")  # noqa: TRY004 - one error for a bad answer
    run_id, controller = raw.get("run_id"), raw.get("controller")
    if not isinstance(run_id, str) or not run_id or not isinstance(controller, str):
        raise ValueError("a lock record names its run and controller")
    pid = raw.get("pid")
    return Holder(
        run_id=run_id,
        controller=controller,
        started=_moment(raw.get("started")),
        expires=_moment(raw.get("expires")),
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        kind=str(raw.get("kind") or ""),
        unreadable=bool(raw.get("unreadable", False)),
    )


@dataclass(frozen=True, slots=True)
class Acquired:
    """What asking every host for its lock came to."""

    held: tuple[str, ...] = ()  # locked by this run (check mode: free, not locked)
    busy: Mapping[str, Holder] = field(default_factory=dict)  # another live run holds them
    unreachable: Mapping[str, str] = field(default_factory=dict)  # the connection failed
    failed: Mapping[str, str] = field(default_factory=dict)  # reached, but no lock: why
    unsupported: tuple[str, ...] = ()  # a connection casemate cannot open: left to Ansible
    took_over: Mapping[str, Holder] = field(default_factory=dict)  # expired locks replaced


def request_source(request: Mapping[str, Any]) -> str:
    script = package_file("probe", "lock.py").read_text(encoding="utf-8")
    if script.count(_REQUEST_MARKER) != 1:
        raise RuntimeError("the lock script must hold its REQUEST marker once")
    return script.replace(_REQUEST_MARKER, f"REQUEST = {json.dumps(dict(request))}", 1)


def lock_command(request: Mapping[str, Any], interpreter: str = "python3") -> str:
    """One shell command: the compressed script inside it; root as is, anyone else through
    `sudo -n` (a peek reads only, as whoever connects)."""
    packed = base64.b64encode(zlib.compress(request_source(request).encode(), 9)).decode()
    boot = f"import base64,zlib;exec(zlib.decompress(base64.b64decode('{packed}')))"
    run = f"{shlex.quote(interpreter)} -c {shlex.quote(boot)}"
    if request["action"] != "peek":
        run = f'if [ "$(id -u)" -eq 0 ]; then {run}; else sudo -n {run}; fi'
    return f"echo {REACHED}; {run}"


def _answer(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            doc = json.loads(line)
            if isinstance(doc, dict) and doc.get("casemate_lock") == 1:
                answer = doc.get("answer")
                if isinstance(answer, dict):
                    return answer
    raise ValueError("no lock answer")


def _requests(
    inventory: Inventory, action: str, run_id: str, kind: str, ttl: int
) -> tuple[dict[str, Any], Any]:
    request = {
        "action": action,
        "dir": LOCK_DIR,
        "run_id": run_id,
        "controller": socket.gethostname(),
        "pid": os.getpid(),
        "kind": kind,
        "ttl": ttl,
    }
    commands: dict[str, str] = {}

    def command(host: str) -> str:
        interpreter = interpreter_of(inventory.hostvars(host))
        if interpreter not in commands:
            commands[interpreter] = lock_command(request, interpreter)
        return commands[interpreter]

    return request, command


def _ask(
    inventory: Inventory,
    hosts: list[str],
    action: str,
    run_id: str,
    *,
    kind: str,
    ttl: int,
    transport_for: reach.TransportFor | None,
) -> tuple[dict[str, dict[str, Any]], Acquired]:
    """Every host's answer to `action`; the hosts that gave none, sorted into an Acquired."""
    _, command = _requests(inventory, action, run_id, kind, ttl)
    answers: dict[str, dict[str, Any]] = {}
    unreachable: dict[str, str] = {}
    failed: dict[str, str] = {}
    unsupported: list[str] = []
    for host, reached in reach.run_everywhere(inventory, hosts, command, transport_for).items():
        if reached.unsupported:
            unsupported.append(host)
            continue
        if reached.result is None:
            unreachable[host] = reached.gone or "no connection"
            continue
        result = reached.result
        if REACHED not in result.stdout:  # the shell never ran: the connection failed
            unreachable[host] = reach.said(result)
            continue
        try:
            answer = _answer(result.stdout)
        except ValueError:
            failed[host] = f"no answer from the lock script ({reach.said(result)})"
            continue
        if answer.get("state") == "error":
            failed[host] = str(answer.get("error"))
            continue
        answers[host] = answer
    left = Acquired(unreachable=unreachable, failed=failed, unsupported=tuple(unsupported))
    return answers, left


def acquire(
    inventory: Inventory,
    hosts: list[str],
    run_id: str,
    *,
    kind: str = "harden",
    ttl: int = DEFAULT_TTL,
    take: bool = True,
    transport_for: reach.TransportFor | None = None,
) -> Acquired:
    """Take the lock on every host for `run_id` (again: renew it), in one round trip per host.
    With `take=False` (check mode) only look: a host another run holds is still busy."""
    action = "acquire" if take else "peek"
    answers, left = _ask(
        inventory, hosts, action, run_id, kind=kind, ttl=ttl, transport_for=transport_for
    )
    held: list[str] = []
    busy: dict[str, Holder] = {}
    failed = dict(left.failed)
    took_over: dict[str, Holder] = {}
    for host, answer in answers.items():
        try:
            if answer.get("state") in ("held", "free"):
                held.append(host)
                if answer.get("took_over"):
                    took_over[host] = parse_holder(answer["took_over"])
            elif answer.get("state") == "busy":
                busy[host] = parse_holder(answer.get("holder"))
            else:
                failed[host] = f"unexpected lock answer {answer.get('state')!r}"
        except ValueError as exc:
            failed[host] = f"unreadable lock answer: {exc}"
    return Acquired(
        held=tuple(h for h in hosts if h in held),
        busy=busy,
        unreachable=left.unreachable,
        failed=failed,
        unsupported=left.unsupported,
        took_over=took_over,
    )


def release(
    inventory: Inventory,
    hosts: list[str],
    run_id: str,
    *,
    transport_for: reach.TransportFor | None = None,
) -> dict[str, str]:
    """Remove `run_id`'s lock from every host; host -> why not, for each host where it could not
    be (never a lock another run holds: that one is left alone)."""
    if not hosts:
        return {}
    answers, left = _ask(
        inventory, hosts, "release", run_id, kind="", ttl=DEFAULT_TTL, transport_for=transport_for
    )
    out = {**left.unreachable, **left.failed}
    for host, answer in answers.items():
        if answer.get("state") == "not_held":
            holder = answer.get("holder")
            out[host] = (
                f"the lock is held by run {holder.get('run_id')} now"
                if isinstance(holder, dict)
                else "the lock was gone already"
            )
    return out


class Renewal:
    """While a run lasts: renew its locks every `every` seconds (a daemon thread), so a long run
    keeps its hosts while a killed run's locks expire after `ttl`."""

    def __init__(
        self,
        inventory: Inventory,
        hosts: list[str],
        run_id: str,
        *,
        ttl: int = DEFAULT_TTL,
        every: float = RENEW_EVERY,
    ) -> None:
        self._args = (inventory, hosts, run_id, ttl)
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="casemate-lock", daemon=True)

    def _loop(self) -> None:
        inventory, hosts, run_id, ttl = self._args
        while not self._stop.wait(self._every):
            acquire(inventory, hosts, run_id, ttl=ttl)

    def __enter__(self) -> Renewal:
        if self._args[1]:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
