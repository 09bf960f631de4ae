"""The loaded catalog kept in the state directory (catalog/cache.py): used while the catalog files
and the code that parses them are the same, loaded afresh when any catalog file changes, and read
only from the user's own private file."""

from __future__ import annotations

import dataclasses
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from casemate.catalog.cache import _Pickler, cache_key, cached_catalog
from casemate.catalog.loader import Catalog, default_catalog_dir, load_catalog
from casemate.checks import builtin_kinds
from casemate.errors import CatalogError

KINDS = builtin_kinds()


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "catalog"
    shutil.copytree(default_catalog_dir(), copy, ignore=shutil.ignore_patterns("*.py"))
    return copy


def shown(catalog: Catalog) -> list[tuple[object, ...]]:
    """Everything an entry is and asks for (kinds are stateless: compared by their type)."""
    return [
        (e.control, e.benchmark, e.source, e.id_prefix)
        + ((type(e.check.kind), e.check.params.model_dump(), e.check.probes()) if e.check else ())
        for e in catalog.entries
    ]


def kept_file(cache: Path) -> Path:
    (kept,) = cache.glob("catalog-*.pickle")
    return kept


def plant(cache: Path, catalog: Catalog) -> None:
    """Replace the kept copy with `catalog` (of the same digest): what the next load returns
    shows whether the kept copy was used."""
    kept = kept_file(cache)
    with kept.open("wb") as handle:
        _Pickler(handle, KINDS).dump(catalog)
    kept.chmod(0o600)


def fewer(catalog: Catalog) -> Catalog:
    return dataclasses.replace(catalog, entries=catalog.entries[:3])


def test_the_kept_catalog_is_the_loaded_one(catalog_dir: Path, tmp_path: Path) -> None:
    fresh = cached_catalog(catalog_dir, KINDS, tmp_path / "cache")
    again = cached_catalog(catalog_dir, KINDS, tmp_path / "cache")
    assert shown(again) == shown(fresh) == shown(load_catalog(catalog_dir, KINDS))
    assert again.digest == fresh.digest
    assert {id(e.check.kind) for e in again.entries if e.check} <= {id(k) for k in KINDS.values()}
    kept = kept_file(tmp_path / "cache")
    assert (kept.stat().st_mode & 0o777, kept.parent.stat().st_mode & 0o777) == (0o600, 0o700)


def test_the_kept_catalog_is_used_while_nothing_changed(catalog_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    full = cached_catalog(catalog_dir, KINDS, cache)
    plant(cache, fewer(full))
    assert len(cached_catalog(catalog_dir, KINDS, cache).entries) == 3


def test_a_changed_catalog_file_is_loaded_afresh(catalog_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    full = cached_catalog(catalog_dir, KINDS, cache)
    plant(cache, fewer(full))
    docker = catalog_dir / "docker.yml"
    old = "title: Stop containers on the default bridge from talking to each other"
    assert old in docker.read_text()
    docker.write_text(docker.read_text().replace(old, f"{old} (edited)"))
    got = cached_catalog(catalog_dir, KINDS, cache)
    assert len(got.entries) == len(full.entries)
    entry = got.get("cis_docker_2_2")
    assert entry is not None and entry.control.title.endswith("(edited)")
    assert got.digest != full.digest
    kept_file(cache)  # one copy kept: the old one is dropped


def test_a_broken_catalog_is_an_error_whatever_was_kept(catalog_dir: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cached_catalog(catalog_dir, KINDS, cache)
    docker = catalog_dir / "docker.yml"
    docker.write_text(docker.read_text().replace("level: 1", "level: 7", 1))
    with pytest.raises(CatalogError, match="level"):
        cached_catalog(catalog_dir, KINDS, cache)


def test_other_check_kinds_do_not_share_a_kept_catalog(catalog_dir: Path) -> None:
    files = [(p.name, p.read_bytes()) for p in sorted(catalog_dir.glob("*.yml"))]
    fewer_kinds = {k: v for k, v in KINDS.items() if k != "file_mode"}
    assert cache_key(files, KINDS) != cache_key(files, fewer_kinds)
    edited = [(n, raw + b"\n# edited\n" if n == "host.yml" else raw) for n, raw in files]
    assert cache_key(files, KINDS) != cache_key(edited, KINDS)


def forge_owner(kept: Path) -> None:
    os.chown(kept, 65534, 65534)


def forge_mode(kept: Path) -> None:
    kept.chmod(0o666)


def forge_dir(kept: Path) -> None:
    kept.parent.chmod(0o777)


def forge_link(kept: Path) -> None:
    target = kept.parent.parent / "elsewhere.pickle"
    kept.rename(target)
    kept.symlink_to(target)


def forge_corrupt(kept: Path) -> None:
    kept.write_bytes(b"not a pickle")


def forge_other(kept: Path) -> None:
    kept.write_bytes(pickle.dumps({"entries": []}))


@pytest.mark.parametrize(
    "forge",
    [forge_owner, forge_mode, forge_dir, forge_link, forge_corrupt, forge_other],
    ids=lambda f: f.__name__,
)
def test_a_kept_catalog_that_is_not_the_users_own_is_not_read(
    catalog_dir: Path, tmp_path: Path, forge: object
) -> None:
    cache = tmp_path / "cache"
    full = cached_catalog(catalog_dir, KINDS, cache)
    plant(cache, fewer(full))
    assert callable(forge)
    forge(kept_file(cache))
    assert len(cached_catalog(catalog_dir, KINDS, cache).entries) == len(full.entries)


def test_catalog_list_from_a_kept_catalog_validates_nothing(tmp_path: Path) -> None:
    # the kept copy holds validated entries: no pydantic validator is even built
    script = """
import sys
from casemate import cli
from casemate.catalog.model import CatalogFile
from casemate.checks.file_mode import FileModeParams
try:
    cli.main(["--state-dir", sys.argv[1], "catalog", "list"])
except SystemExit as done:
    assert done.code in (0, None), done.code
print("BUILT:", CatalogFile.__pydantic_complete__, FileModeParams.__pydantic_complete__)
"""
    run = [sys.executable, "-c", script, str(tmp_path / "state")]
    first = subprocess.run(run, capture_output=True, text=True, check=True)
    assert "BUILT: True True" in first.stdout
    second = subprocess.run(run, capture_output=True, text=True, check=True)
    assert "BUILT: False False" in second.stdout
    assert second.stdout.split("BUILT:")[0] == first.stdout.split("BUILT:")[0]
