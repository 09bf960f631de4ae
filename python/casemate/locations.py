"""Where casemate finds its Ansible content and keeps its state."""

from __future__ import annotations

import os
from pathlib import Path

from casemate.errors import EnvironmentProblemError

_PACKAGE_DIR = Path(__file__).resolve().parent


def content_root() -> Path:
    """The directory that holds `playbooks/` and `roles/`.

    A wheel carries them in `casemate/content`; a source checkout has them at the top of the
    repository, two levels above this package (`python/casemate`).
    """
    override = os.environ.get("CASEMATE_CONTENT")
    candidates = [Path(override)] if override else []
    candidates += [_PACKAGE_DIR / "content", _PACKAGE_DIR.parent.parent]
    for candidate in candidates:
        if (candidate / "playbooks" / "harden.yml").is_file():
            return candidate
    raise EnvironmentProblemError(
        "cannot find casemate's playbooks and roles (set CASEMATE_CONTENT to the directory "
        "holding playbooks/ and roles/)"
    )


def state_dir() -> Path:
    """Run records and lab state: `$CASEMATE_STATE_DIR`, else `./.casemate`."""
    return Path(os.environ.get("CASEMATE_STATE_DIR", ".casemate")).resolve()


def package_file(*parts: str) -> Path:
    """A data file shipped inside the package (catalog YAML, schemas, lab recipe)."""
    return _PACKAGE_DIR.joinpath(*parts)
