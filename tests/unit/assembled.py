"""The probe as a host runs it (probe/collect.py: probe_script, the host-reader library followed by
probe/remote.py in one namespace), loaded as a module without running it, so tests can call its
collectors and replace what they call (run_command, processes) the way the script resolves them."""

from __future__ import annotations

from types import ModuleType

from casemate.probe.collect import probe_script


def probe_module() -> ModuleType:
    module = ModuleType("casemate_probe_under_test")  # not __main__: main() does not run
    exec(compile(probe_script(), "<casemate probe>", "exec"), module.__dict__)
    return module
