"""A role's module loaded from its file, as the unit tests call it (no Ansible runs it)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from casemate.locations import content_root


def role_library(role: str, name: str) -> ModuleType:
    """roles/<role>/library/<name>.py, loaded as a module of its own."""
    path = content_root() / "roles" / role / "library" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"casemate_test_{role}_{name}", path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded
