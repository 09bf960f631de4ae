"""verify judges its hosts in threads: a host reader file being loaded by one thread is never
handed half-loaded to another (seen on two lab nodes as `module 'casemate._readers.casemate_host'
has no attribute 'flag_values'`)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from typing import Any

import pytest

from casemate import readers

KEY = "casemate._readers.casemate_host"


def test_a_reader_file_loading_in_one_thread_is_not_handed_half_loaded_to_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, KEY, raising=False)
    started = threading.Event()
    real = importlib.util.spec_from_file_location

    def slow_spec(name: str, path: Any) -> Any:
        spec = real(name, path)
        assert spec is not None and spec.loader is not None
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            started.set()
            threading.Event().wait(1)  # still loading while the other thread asks for it
            run(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    monkeypatch.setattr(importlib.util, "spec_from_file_location", slow_spec)
    first = threading.Thread(target=readers.library_module, args=("casemate_host",))
    first.start()
    started.wait()
    try:
        assert readers.flag_values(["dockerd", "--icc=false"], ["--icc"], "str") == ["false"]
    finally:
        first.join()
        monkeypatch.delitem(sys.modules, KEY, raising=False)


SCRIPT = """
import threading
from casemate import readers

barrier = threading.Barrier(32)
failed = []

def judge():
    barrier.wait()
    try:
        readers.flag_values(["dockerd", "--icc=false"], ["--icc"], "bool")
        readers.sshd_comma_lists()
        readers.audit_watches("-w /etc/passwd -p wa -k identity")
    except Exception as exc:
        failed.append(repr(exc))

threads = [threading.Thread(target=judge) for _ in range(32)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("FAILED:", len(failed), failed[:1])
"""


@pytest.mark.parametrize("attempt", range(5))
def test_readers_first_used_from_many_threads_are_whole(attempt: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    assert "FAILED: 0 []" in done.stdout, (attempt, done.stdout)


def test_threads_that_ask_at_once_run_each_library_file_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Eight hosts' threads ask for the engine's reader at the same moment (verify's first use of
    casemate_engine, which imports from casemate_host): each file runs once, not once a thread."""
    for name in ("casemate_engine", "casemate_host"):
        monkeypatch.delitem(sys.modules, f"casemate._readers.{name}", raising=False)
    ran: list[str] = []
    real = readers._load

    def counted(name: str, key: str) -> Any:
        ran.append(name)
        threading.Event().wait(0.1)  # a slow load: every other thread has asked by now
        return real(name, key)

    monkeypatch.setattr(readers, "_load", counted)
    barrier = threading.Barrier(8)
    got: list[Any] = []

    def ask() -> None:
        barrier.wait()
        got.append(readers.library_module("casemate_engine"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ran) == ["casemate_engine", "casemate_host"]
    assert len(got) == 8 and all(m is got[0] for m in got)
    assert got[0].find_command is readers.library_module("casemate_host").find_command
