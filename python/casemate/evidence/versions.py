"""What a run ran with: casemate, Python, ansible-core, the `ansible` package, ansible-runner and
every collection installed beside Ansible (read from each collection's MANIFEST.json, which is
what `ansible-galaxy collection list` reads too, without starting Ansible)."""

from __future__ import annotations

import importlib.util
import json
import platform
from pathlib import Path
from typing import Any

from casemate import __version__

PACKAGES = ("ansible-core", "ansible", "ansible-runner")


def _package(name: str) -> str | None:
    from importlib import metadata  # noqa: PLC0415 - 15 ms of imports; only a run asks

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def collections() -> dict[str, str]:
    """namespace.name -> version of each collection in the Python environment's
    ansible_collections package."""
    spec = importlib.util.find_spec("ansible_collections")
    found: dict[str, str] = {}
    for root in (spec.submodule_search_locations or []) if spec else []:
        for manifest in sorted(Path(root).glob("*/*/MANIFEST.json")):
            try:
                info: Any = json.loads(manifest.read_text())["collection_info"]
                found.setdefault(f"{info['namespace']}.{info['name']}", str(info["version"]))
            except (OSError, ValueError, KeyError, TypeError):
                found.setdefault(f"{manifest.parent.parent.name}.{manifest.parent.name}", "unknown")
    return dict(sorted(found.items()))


def versions() -> dict[str, Any]:
    return {
        "casemate": __version__,
        "python": platform.python_version(),
        **{name: _package(name) for name in PACKAGES},
        "collections": collections(),
    }
