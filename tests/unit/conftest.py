"""The roles' Ansible modules import their shared code as ansible.module_utils.NAME; Ansible ships
it to the host from the role's module_utils/. Unit tests load those modules straight from their
files, so the shared code is put where the import finds it first."""

from __future__ import annotations

import importlib.util
import sys

from casemate.locations import content_root

for path in sorted((content_root() / "roles").glob("*/module_utils/*.py")):
    name = f"ansible.module_utils.{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
