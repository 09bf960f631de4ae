"""The roles' Ansible modules import their shared code as ansible.module_utils.NAME; Ansible ships
it to the host from the role's module_utils/. Unit tests load those modules straight from their
files, so the shared code is put where the import finds it first."""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pexpect
import pytest

from casemate.locations import content_root

if TYPE_CHECKING:  # the fixtures below import their helpers when used (test_ansible_marker.py
    # runs this file on its own, without the package around it)
    from .history_runs import Answering
    from .pg import Server

# casemate_host first: the other readers import it
for path in sorted(
    (content_root() / "roles").glob("*/module_utils/*.py"),
    key=lambda p: (p.stem != "casemate_host", p.stem),
):
    name = f"ansible.module_utils.{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


ANSIBLE_COMMANDS = ("ansible", "ansible-playbook", "ansible-inventory", "ansible-vault")


@pytest.fixture(autouse=True)
def ansible_only_where_marked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """A unit test that starts one of Ansible's commands must say so (`@pytest.mark.ansible`):
    those are the slow ones, run as a group (`make unit`). ansible-runner starts them through
    pexpect (playbooks) or subprocess (inventory); tests start them directly. The start is refused
    and the test fails at teardown, even where the code under test turns the refusal into its own
    error."""
    if request.node.get_closest_marker("ansible") is not None:
        yield
        return
    started: list[str] = []
    popen = subprocess.Popen.__init__
    spawn = pexpect.spawn.__init__

    def refuse(args: Any) -> None:
        argv = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
        name = Path(str(argv[0])).name if argv else ""
        if name in ANSIBLE_COMMANDS:
            started.append(name)
            raise AssertionError(f"{name} started by a test not marked pytest.mark.ansible")

    def guarded_popen(self: Any, args: Any, *rest: Any, **kw: Any) -> None:
        refuse(args)
        popen(self, args, *rest, **kw)

    def guarded_spawn(self: Any, command: Any, args: Any = (), *rest: Any, **kw: Any) -> None:
        refuse([command])
        spawn(self, command, args, *rest, **kw)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded_popen)
    monkeypatch.setattr(pexpect.spawn, "__init__", guarded_spawn)
    yield
    assert not started, f"{request.node.nodeid} starts {started[0]}: mark it pytest.mark.ansible"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """A real PostgreSQL server for this test session (tests/unit/pg.py)."""
    from .pg import server

    with server() as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty history store's URL: SQLite in a temporary directory, or a new database on
    the session's PostgreSQL server. Store tests run against both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.sqlite3'}"
    running: Server = request.getfixturevalue("postgres")
    return running.url(running.new_database())


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """verify and harden through the CLI, with hosts that answer from a recorded probe answer and
    a playbook that is not run; the list says which hosts were touched."""
    import casemate.verify
    from casemate.inventory import Inventory
    from casemate.runner import HostStats, PlaybookOutcome

    from .history_runs import Answering, site
    from .locks import every_host_free

    touched: list[str] = []

    def answering(inventory: Inventory, host: str) -> Answering:
        touched.append(host)
        return Answering()

    def played(**kwargs: Any) -> PlaybookOutcome:
        touched.extend(kwargs["hosts"])
        stats = {h: HostStats(ok=5, changed=2) for h in kwargs["hosts"]}
        return PlaybookOutcome("successful", 0, stats)

    monkeypatch.setattr("casemate.runner.resolve_inventory", lambda path, state: site())
    real = casemate.verify.run_verify
    monkeypatch.setattr(
        "casemate.verify.run_verify", functools.partial(real, transport_for=answering)
    )
    monkeypatch.setattr("casemate.harden.run_playbook", played)
    monkeypatch.setattr("casemate.probe.transport.host_transport", answering)
    monkeypatch.setattr("casemate.hostlock.acquire", every_host_free)  # the lock: test_host_lock
    monkeypatch.setattr("casemate.hostlock.release", lambda *a, **k: {})
    monkeypatch.delenv("CASEMATE_DB", raising=False)
    return touched
