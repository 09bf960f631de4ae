"""A role's module loaded from its file, as the unit tests call it (no Ansible runs it)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from casemate.locations import content_root


def role_library(role: str, name: str) -> ModuleType:
    """roles/<role>/library/<name>.py, loaded as a module of its own."""
    path = content_root() / "roles" / role / "library" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"casemate_test_{role}_{name}", path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def play_role_locally(
    tmp_path: Path, role: str, role_vars: dict[str, Any], extra: list[str]
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook playing `role` on this machine (local connection, this Python) with
    `role_vars`, in `tmp_path`, with `extra` arguments (--check, --tags, ...)."""
    play = [{"hosts": "localhost", "gather_facts": False, "connection": "local",
             "vars": role_vars, "roles": [role]}]  # fmt: skip
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = os.environ | {
        "ANSIBLE_ROLES_PATH": str(content_root() / "roles"),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
         "-e", f"ansible_python_interpreter={sys.executable}", *extra, "play.yml"],
        cwd=tmp_path, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
