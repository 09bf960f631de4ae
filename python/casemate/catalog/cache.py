"""The loaded catalog kept on disk, so a command need not parse YAML and validate every entry again.

Parsing and validating the catalog costs about as much as all of casemate's imports. What
`load_catalog` makes of a catalog depends only on the catalog files and on the code that parses
them (the models, the check kinds and their parameters) running on one Python: the kept copy is
named after a digest of exactly those (`cache_key`), so a changed catalog file, another casemate
version or an edited check kind finds no copy and loads the catalog afresh. A kept copy is a
pickle, which runs code when loaded: it is read only from a directory and a file the user alone
may write (0700, 0600, theirs, no symlink). Anything odd about a copy (unreadable, corrupt, of
another catalog) means the catalog is loaded afresh; the cache never turns a bad catalog into a
good one, because a catalog that does not load is never kept."""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from casemate import __version__
from casemate.catalog.loader import Catalog, catalog_digest, catalog_files, load_catalog
from casemate.checks.base import CheckKind
from casemate.locations import package_file

# The code that turns catalog files into entries: the models and every check kind.
CODE = ("catalog", "checks")


def code_digest() -> str:
    """sha256 over the source of the packages that parse a catalog (see CODE)."""
    digest = hashlib.sha256()
    for name in CODE:
        for path in sorted(package_file(name).glob("*.py")):
            digest.update(f"{name}/{path.name}".encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cache_key(files: list[tuple[str, bytes]], kinds: Mapping[str, CheckKind[Any]]) -> str:
    """What a kept catalog must have been made from: the catalog files, the parsing code, the
    check kinds bound, casemate's version and the Python that pickled it."""
    parts = [
        __version__,
        sys.version,
        catalog_digest(files),
        code_digest(),
        *sorted(f"{n}={type(k).__module__}.{type(k).__qualname__}" for n, k in kinds.items()),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _own(st: os.stat_result, kind: int) -> bool:
    """Ours alone: our uid, the file type asked for, nobody else may write it."""
    return (
        st.st_uid == os.geteuid()
        and stat.S_IFMT(st.st_mode) == kind
        and stat.S_IMODE(st.st_mode) & 0o022 == 0
    )


class _Pickler(pickle.Pickler):
    """Pickles a check kind (stateless) by its name: a kept catalog is bound to the kinds it is
    loaded with."""

    def __init__(self, handle: Any, kinds: Mapping[str, CheckKind[Any]]) -> None:
        super().__init__(handle, protocol=pickle.HIGHEST_PROTOCOL)
        self._names: dict[type, str] = {type(kind): name for name, kind in kinds.items()}

    def persistent_id(self, obj: Any) -> str | None:
        return self._names.get(type(obj))


class _Unpickler(pickle.Unpickler):
    def __init__(self, handle: Any, kinds: Mapping[str, CheckKind[Any]]) -> None:
        super().__init__(handle)
        self._kinds = kinds

    def persistent_load(self, pid: Any) -> CheckKind[Any]:
        return self._kinds[str(pid)]


def _read(path: Path, digest: str, kinds: Mapping[str, CheckKind[Any]]) -> Catalog | None:
    try:
        if not _own(os.lstat(path.parent), stat.S_IFDIR):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not _own(os.fstat(handle.fileno()), stat.S_IFREG):
            return None
        try:
            kept = _Unpickler(handle, kinds).load()  # our own 0600 file, checked above
        except Exception:  # any broken copy means: load afresh
            return None
    if not isinstance(kept, Catalog) or kept.digest != digest:
        return None
    return kept


def _write(
    directory: Path, path: Path, catalog: Catalog, kinds: Mapping[str, CheckKind[Any]]
) -> None:
    """Keep `catalog` at `path` (written whole, then renamed) and drop older copies; a copy that
    cannot be written is not an error (the next command loads the catalog afresh)."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _own(os.lstat(directory), stat.S_IFDIR):
            return
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            _Pickler(handle, kinds).dump(catalog)
        temp.replace(path)
        for old in directory.glob("catalog-*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        return


def cached_catalog(
    directory: Path | None, kinds: Mapping[str, CheckKind[Any]], cache_dir: Path
) -> Catalog:
    """`load_catalog(directory, kinds)`, from the copy kept in `cache_dir` when it was made from
    the same files and code, else loaded afresh and kept there."""
    files = [(p.name, p.read_bytes()) for p in catalog_files(directory)]
    path = cache_dir / f"catalog-{cache_key(files, kinds)[:40]}.pickle"
    kept = _read(path, catalog_digest(files), kinds)
    if kept is not None:
        return kept
    catalog = load_catalog(directory, kinds)
    if catalog.digest == catalog_digest(files):  # not changed while it was loaded
        _write(cache_dir, path, catalog, kinds)
    return catalog
