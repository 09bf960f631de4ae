"""What every verify does before it reaches a host is only what it needs: the probe's script is
built without parsing the readers' definitions, and the probes a loaded catalog wants are named
without building any pydantic model (the catalog comes validated from its cache)."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from casemate import readers
from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.checks.targets import FileTarget, target_probe
from casemate.locations import package_file
from casemate.probe import collect
from casemate.readers import LIBRARY, library_path, without_library_imports


def _dropped_whole(source: str) -> str:
    """What without_library_imports gives, from the whole file parsed (the reference)."""
    lines = source.splitlines(keepends=True)
    dropped: set[int] = set()
    for node in ast.parse(source).body:
        if readers._imports_library(node):
            dropped.update(range(node.lineno - 1, node.end_lineno or node.lineno))
    return "".join(line for i, line in enumerate(lines) if i not in dropped)


def _sources() -> list[str]:
    files = [library_path(n) for n in (*LIBRARY, "casemate_selection")]
    return [p.read_text() for p in [*files, package_file("probe", "remote.py")]]


LATE_IMPORT = """import os

def early():
    return 1

from ansible.module_utils.casemate_host import read_container
try:
    from ansible.module_utils.casemate_sshd import host_keys
except ImportError:
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_sshd import host_keys
"""
DEF_IN_A_STRING = '''from ansible.module_utils.casemate_host import read_container
DOC = """
def not_a_definition():
"""
from ansible.module_utils.casemate_sshd import host_keys
'''


@pytest.mark.parametrize("source", [*_sources(), LATE_IMPORT, DEF_IN_A_STRING])
def test_the_probe_script_drops_what_parsing_the_whole_file_drops(source: str) -> None:
    assert without_library_imports(source) == _dropped_whole(source)


def test_late_and_quoted_imports_are_dropped_too() -> None:
    assert "ansible.module_utils" not in without_library_imports(LATE_IMPORT)
    assert "def early" in without_library_imports(LATE_IMPORT)
    kept = without_library_imports(DEF_IN_A_STRING)
    assert "ansible.module_utils" not in kept and "def not_a_definition" in kept


def test_building_the_probe_script_parses_no_definitions(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    whole = ast.parse

    def parse(source: str, *args: object, **kwargs: object) -> ast.Module:
        parsed.append(source)
        return whole(source)

    monkeypatch.setattr(readers.ast, "parse", parse)
    script = collect.probe_script()
    assert "def main():" in script and "def read_container(" in script
    assert parsed, "the library imports are found by parsing"
    assert not [s for s in parsed if "\ndef " in f"\n{s}"], "a definition was parsed"


WANTED = """
import sys
from pathlib import Path
from casemate.catalog.cache import cached_catalog
from casemate.checks import builtin_kinds, targets
from casemate.verify import wanted_probes
catalog = cached_catalog(None, builtin_kinds(), Path(sys.argv[1]))
probes = wanted_probes(catalog.entries)
assert any(p.kind == "ref_stat" for p in probes), "no probe of a file named by a setting"
assert any(p.kind == "manifest_ref_stat" for p in probes), "no probe of a manifest's path"
built = [m.__name__ for m in (targets.Ref, targets.ManifestRef) if m.__pydantic_complete__]
print("BUILT:" + ",".join(built))
"""


def test_the_probes_a_cached_catalog_wants_build_no_pydantic_model(tmp_path: Path) -> None:
    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", WANTED, str(tmp_path / "cache")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()[-1]

    run()  # loads, validates and keeps the catalog
    assert list((tmp_path / "cache").glob("catalog-*.pickle"))
    assert run() == "BUILT:"  # from the kept copy, as a verify finds it


def test_a_file_target_probe_is_its_fields_as_model_dump_gives_them() -> None:
    seen = 0
    for entry in load_catalog(None, builtin_kinds()).entries:
        for part in _params(entry.check):
            if isinstance(part, FileTarget) and (part.ref or part.manifest_ref):
                ref = part.ref or part.manifest_ref
                assert ref is not None
                assert target_probe(part).arg == json.dumps(ref.model_dump(), sort_keys=True)
                seen += 1
    assert seen > 3


def _params(check: object) -> list[BaseModel]:
    """Every parameter model in a bound check (all_of's parts too), found by walking it."""
    found: list[BaseModel] = []
    todo = [check]
    while todo:
        item = todo.pop()
        if isinstance(item, (list, tuple)):
            todo += list(item)
        elif isinstance(item, BaseModel):
            found.append(item)
            todo += [getattr(item, n) for n in type(item).model_fields]
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            todo += [getattr(item, f.name) for f in dataclasses.fields(item)]
    return found
