"""The collection casemate.hardening is the wheel's roles and playbooks, byte for byte.

Built the way a user builds it: from an installed wheel's content (`casemate collection build`,
with CASEMATE_CONTENT pointing into the unpacked wheel), then read back from the tarball
`ansible-galaxy collection build` wrote."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from casemate import __version__, collection
from casemate.cli import main
from casemate.locations import content_root

ROOT = content_root()
CHECK = ROOT / "scripts" / "check-collection.sh"


@pytest.fixture(scope="module")
def wheel_content(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """casemate/content of the wheel built from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("casemate-*.whl")
    unpacked = out / "unpacked"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(unpacked)
    return unpacked / "casemate" / "content"


@pytest.fixture(scope="module")
def tarball(wheel_content: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("collection")
    saved = os.environ.get("CASEMATE_CONTENT")
    os.environ["CASEMATE_CONTENT"] = str(wheel_content)
    try:
        with pytest.raises(SystemExit) as done:
            main(["collection", "build", "--output", str(out)])
    finally:
        if saved is None:
            del os.environ["CASEMATE_CONTENT"]
        else:
            os.environ["CASEMATE_CONTENT"] = saved
    assert done.value.code == 0
    yield out / collection.tarball_name()


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {
            m.name: tf.extractfile(m).read()  # type: ignore[union-attr]
            for m in tf.getmembers()
            if m.isfile()
        }


def expected(content: Path) -> dict[str, bytes]:
    """What the collection must hold of the wheel: roles/ without the roles' library/,
    module_utils/ and action_plugins/ (those are plugins/modules, plugins/module_utils and
    plugins/action), playbooks/."""
    want: dict[str, bytes] = {}
    for path in sorted(p for p in content.rglob("*") if p.is_file()):
        rel = path.relative_to(content)
        top = rel.parts[0]
        if top == "playbooks":
            want[rel.as_posix()] = path.read_bytes()
        elif top == "roles" and rel.parts[2] == "library":
            want[f"plugins/modules/{path.name}"] = path.read_bytes()
        elif top == "roles" and rel.parts[2] == "module_utils":
            want[f"plugins/module_utils/{path.name}"] = path.read_bytes()
        elif top == "roles" and rel.parts[2] == "action_plugins":
            want[f"plugins/action/{path.name}"] = path.read_bytes()
        elif top == "roles":
            want[rel.as_posix()] = path.read_bytes()
    return want


@pytest.mark.ansible
def test_collection_holds_the_wheels_roles_playbooks_and_modules_byte_for_byte(
    wheel_content: Path, tarball: Path
) -> None:
    got = members(tarball)
    want = expected(wheel_content)
    assert want, "the wheel carries no roles or playbooks"
    assert "playbooks/harden.yml" in want
    assert "plugins/modules/sshd_facts.py" in want
    assert "plugins/module_utils/casemate_host.py" in want
    assert "plugins/action/kube_manifest.py" in want
    missing = sorted(set(want) - set(got))
    assert not missing, f"in the wheel, not in the collection: {missing[:5]}"
    differ = sorted(name for name in want if got[name] != want[name])
    assert not differ, f"different bytes in the collection: {differ[:5]}"
    content = {n for n in got if n.split("/")[0] in ("roles", "playbooks", "plugins")}
    extra = sorted(content - set(want))
    assert not extra, f"in the collection, not in the wheel: {extra[:5]}"


@pytest.mark.ansible
def test_collection_version_is_casemates(tarball: Path) -> None:
    manifest = json.loads(members(tarball)["MANIFEST.json"])
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (
        "casemate",
        "hardening",
        __version__,
    )
    assert tarball.name == f"casemate-hardening-{__version__}.tar.gz"


@pytest.mark.ansible
def test_collection_passes_the_offline_ansible_test_sanity_tests(
    tarball: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(CHECK), "sanity", str(tarball)],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert 'Running sanity test "compile"' in done.stdout + done.stderr


def shared_imports(path: Path) -> tuple[list[tuple[str, list[str]]], list[tuple[str, list[str]]]]:
    """(the role's imports, the collection's fallback imports) of the shared module_utils, as
    (module, names) in order."""
    role: list[tuple[str, list[str]]] = []
    fallback: list[tuple[str, list[str]]] = []
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.Try):
            continue
        for block, into, prefix in (
            (node.body, role, "ansible.module_utils."),
            (node.handlers[0].body if node.handlers else [], fallback, collection.MODULE_UTILS),
        ):
            for stmt in block:
                if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").startswith(prefix):
                    names = [f"{a.name} as {a.asname}" if a.asname else a.name for a in stmt.names]
                    into.append(((stmt.module or "").removeprefix(prefix), names))
    return role, fallback


def test_every_shared_import_falls_back_to_the_same_names_in_the_collection() -> None:
    """A collection's roles get no library/ or module_utils/ of their own: each module imports its
    shared code as ansible.module_utils.NAME (casemate's runs) and, failing that, the same names
    from the collection's plugins/module_utils."""
    files = sorted(ROOT.glob("roles/*/library/*.py")) + sorted(
        ROOT.glob("roles/*/module_utils/*.py")
    )
    local = {p.stem for p in ROOT.glob("roles/*/module_utils/*.py")}
    checked = 0
    for path in files:
        top_level = [
            n.module
            for n in ast.parse(path.read_text()).body
            if isinstance(n, ast.ImportFrom) and n.module
        ]
        bare = [m for m in top_level if m.removeprefix("ansible.module_utils.") in local]
        assert not bare, f"{path}: imports {bare[0]} with no collection fallback"
        role, fallback = shared_imports(path)
        assert role == fallback, f"{path}: the collection's fallback imports other names"
        checked += bool(role)
    assert checked >= 10


@pytest.mark.ansible
def test_ansible_doc_reads_every_module_of_the_installed_collection(
    tarball: Path, tmp_path: Path
) -> None:
    """`ansible-doc casemate.hardening.NAME` for each module: its DOCUMENTATION and RETURN are
    YAML Ansible can read (a description with a bare `: ` or `[` is not)."""
    tree = tmp_path / "ansible_collections" / "casemate" / "hardening"
    tree.mkdir(parents=True)
    with tarfile.open(tarball) as tf:
        tf.extractall(tree, filter="data")
    names = sorted(p.stem for p in (tree / "plugins" / "modules").glob("*.py"))
    assert len(names) >= 14
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "--json", "-t", "module",
         *(f"{collection.FQCN}.{n}" for n in names)],
        capture_output=True, text=True, check=False,
        env=os.environ | {"ANSIBLE_COLLECTIONS_PATH": str(tmp_path), "ANSIBLE_NOCOLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    docs = json.loads(done.stdout)
    unread = [n for n in names if not docs.get(f"{collection.FQCN}.{n}", {}).get("doc")]
    assert not unread, f"ansible-doc cannot read: {unread}; {done.stderr[-1500:]}"
    for name in names:
        assert docs[f"{collection.FQCN}.{name}"]["return"] is not None, name
