"""Resolved inventories kept in the state directory, so that a command does not pay
ansible-inventory's start (about a second) for an inventory it resolved before.

An entry is keyed by the sha256 of everything that can shape what ansible-inventory makes of the
inventory: the inventory file (or every file of an inventory directory), the group_vars/ and
host_vars/ beside it, every ansible.cfg Ansible may read (ANSIBLE_CONFIG, ./ansible.cfg,
~/.ansible.cfg, /etc/ansible/ansible.cfg), every ANSIBLE_* environment variable, and the
ansible-core in use. Change any of them and the key changes: the inventory is resolved again.

Only static inventories are cached: YAML, INI (or TOML) files. Never an executable file (an
inventory script), an inventory plugin's configuration (a YAML file with `plugin:`), a file holding
a vault value, nor an Ansible set up to enable other inventory or vars plugins: what those make can
change without any file changing. A resolved inventory that holds a secret (redact.py's rules
decide) is never stored: the state directory holds no secret; such an inventory is resolved every
time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from casemate import private

VERSION = b"casemate inventory cache 1\0"
VARS_DIRS = ("group_vars", "host_vars")
# Configuration that lets plugins other than the static parsers make the inventory.
_PLUGIN_SETTINGS = (b"enable_plugins", b"vars_plugins")
_PLUGIN_ENV = ("ANSIBLE_INVENTORY_ENABLED", "ANSIBLE_VARS_")
_PLUGIN_CONFIG_SUFFIXES = (".yml", ".yaml", ".config")
_VARS_PLUGIN_DIRS = ("~/.ansible/plugins/vars", "/usr/share/ansible/plugins/vars")
_VAULT = b"$ANSIBLE_VAULT;"


def _visible(root: Path) -> Iterator[Path]:
    """Every file under `root`, sorted, hidden names left out (Ansible skips them too)."""
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(here, name)


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and any(directory.iterdir())


def _static(path: Path, data: bytes) -> bool:
    """Whether ansible-inventory reads `path` as data (not a script, not a plugin's config)."""
    if os.access(path, os.X_OK):
        return False
    if path.suffix.lower() in _PLUGIN_CONFIG_SUFFIXES:
        try:
            doc = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            return False  # ansible-inventory will say what is wrong; nothing is cached
        if isinstance(doc, dict) and "plugin" in doc:
            return False
    return True


def _config_files(environ: Mapping[str, str], cwd: Path) -> list[Path]:
    named = [Path(environ["ANSIBLE_CONFIG"])] if environ.get("ANSIBLE_CONFIG") else []
    home = Path(environ.get("HOME") or Path.home())
    return [*named, cwd / "ansible.cfg", home / ".ansible.cfg", Path("/etc/ansible/ansible.cfg")]


def _ansible_release() -> bytes:
    """ansible-core's release file (its version), found without importing Ansible."""
    spec = importlib.util.find_spec("ansible")
    if spec is None or spec.origin is None:
        return b"no ansible"
    release = Path(spec.origin).parent / "release.py"
    return release.read_bytes() if release.is_file() else b"unknown ansible"


class _Digest:
    def __init__(self) -> None:
        self.sha = hashlib.sha256(VERSION)

    def add(self, label: str, data: bytes) -> None:
        self.sha.update(len(label).to_bytes(8, "big") + label.encode("utf-8", "surrogateescape"))
        self.sha.update(len(data).to_bytes(8, "big") + data)


def key(inventory: Path, environ: Mapping[str, str], cwd: Path | None = None) -> str | None:
    """The cache key of `inventory`, or None when it must be resolved every time."""
    if any(name.startswith(_PLUGIN_ENV) for name in environ) or any(
        _has_files(Path(d).expanduser()) for d in _VARS_PLUGIN_DIRS
    ):
        return None
    digest = _Digest()
    digest.add("ansible", _ansible_release())
    source = inventory.resolve()
    digest.add("inventory", str(source).encode("utf-8", "surrogateescape"))
    if source.is_file():
        sources = [source]
        data_dirs = [source.parent / d for d in VARS_DIRS]
    elif source.is_dir():
        sources = [p for p in _visible(source) if p.relative_to(source).parts[0] not in VARS_DIRS]
        data_dirs = [source / d for d in VARS_DIRS]
    else:
        return None
    for path in sources:
        data = path.read_bytes()
        if _VAULT in data or not _static(path, data):
            return None
        digest.add(f"source {path}", data)
    for directory in data_dirs:
        for path in _visible(directory) if directory.is_dir() else ():
            data = path.read_bytes()
            if _VAULT in data:
                return None
            digest.add(f"vars {path}", data)
    for config in _config_files(environ, cwd or Path.cwd()):
        data = config.read_bytes() if config.is_file() else b""
        if any(s in data for s in _PLUGIN_SETTINGS):
            return None
        digest.add(f"config {config}", data if config.is_file() else b"(absent)")
    for name in sorted(n for n in environ if n.startswith("ANSIBLE_")):
        digest.add(f"env {name}", environ[name].encode("utf-8", "surrogateescape"))
    return digest.sha.hexdigest()


def _path(state: Path, cache_key: str) -> Path:
    return state / "cache" / "inventory" / f"{cache_key}.json"


def load(state: Path, cache_key: str) -> dict[str, Any] | None:
    """The resolved inventory stored under `cache_key`, or None."""
    try:
        raw = json.loads(_path(state, cache_key).read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def store(state: Path, cache_key: str, raw: Mapping[str, Any]) -> None:
    """Keep a resolved inventory (0600, in a 0700 directory). The caller has made sure it holds
    no secret."""
    private.state_dir(state, "cache", "inventory")
    private.write(_path(state, cache_key), json.dumps(raw, sort_keys=True))
