"""verify judges its hosts in threads: a host reader file being loaded by one thread is never
handed half-loaded to another (seen on two lab nodes as `module 'casemate._readers.casemate_host'
has no attribute 'flag_values'`)."""

from __future__ import annotations

import importlib.util
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
