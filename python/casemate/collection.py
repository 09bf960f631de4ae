"""The Ansible collection casemate.hardening, assembled from the content the wheel ships.

One source: the collection is staged from the same `roles/`, `playbooks/` and `collection/` (its
galaxy.yml, meta/runtime.yml and README) that casemate runs from, then built by
`ansible-galaxy collection build`. Ansible runs a collection's roles without their `library/` and
`module_utils/` or `action_plugins/` (only legacy roles get a role's plugin directories), so the
roles' modules go to `plugins/modules`, their module_utils to `plugins/module_utils` and their
action plugins to `plugins/action`, byte for byte; each module
imports its shared code as `ansible.module_utils.NAME` and, failing that, from the collection.
The version is casemate's own (`casemate.__version__`), written into galaxy.yml at build time."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml

from casemate import __version__
from casemate.errors import BadInputError, EnvironmentProblemError

NAMESPACE = "casemate"
NAME = "hardening"
FQCN = f"{NAMESPACE}.{NAME}"
MODULE_UTILS = f"ansible_collections.{NAMESPACE}.{NAME}.plugins.module_utils."
# ansible-test reads tests/sanity/ignore-X.Y.txt for its own ansible-core X.Y only: one file,
# collection/tests/sanity/ignore.txt, goes in for each ansible-core casemate supports (pyproject)
ANSIBLE_CORE = ("2.18", "2.19")
SANITY_IGNORE = "tests/sanity/ignore.txt"
# role-embedded plugin directories: in the collection they are the collection's plugins/
PLUGIN_DIRS = {
    "library": "plugins/modules",
    "module_utils": "plugins/module_utils",
    "action_plugins": "plugins/action",
}
_NOT_SHIPPED = ("__pycache__", ".pyc")


def tarball_name(version: str = __version__) -> str:
    """The file `ansible-galaxy collection build` writes."""
    return f"{NAMESPACE}-{NAME}-{version}.tar.gz"


def _files(top: Path) -> list[Path]:
    return sorted(
        p
        for p in top.rglob("*")
        if p.is_file() and not any(part.endswith(_NOT_SHIPPED) for part in p.parts)
    )


def plan(content: Path) -> dict[str, Path]:
    """Every file of the collection but galaxy.yml: its path in the collection -> the file it is
    a copy of, under `content` (the directory holding roles/, playbooks/ and collection/)."""
    meta = content / "collection"
    if not (meta / "galaxy.yml").is_file():
        raise EnvironmentProblemError(f"{meta / 'galaxy.yml'}: missing (casemate's content)")
    files: dict[str, Path] = {}

    def add(target: str, source: Path) -> None:
        if target in files:  # two roles with a module (or module_utils) of the same name
            raise BadInputError(f"{source} and {files[target]} are both {target} in the collection")
        files[target] = source

    for source in _files(meta):
        name = source.relative_to(meta).as_posix()
        if name == SANITY_IGNORE:
            for core in ANSIBLE_CORE:
                add(f"tests/sanity/ignore-{core}.txt", source)
        elif name not in ("galaxy.yml", "CHANGELOG.md"):  # the changelog: below
            add(name, source)
    # the project's changelog: beside galaxy.yml in the wheel, at the top of a checkout
    changelog = next(
        (p for p in (meta / "CHANGELOG.md", content / "CHANGELOG.md") if p.is_file()), None
    )
    if changelog is not None:
        add("CHANGELOG.md", changelog)
    for source in _files(content / "playbooks"):
        add(source.relative_to(content).as_posix(), source)
    for source in _files(content / "roles"):
        rel = source.relative_to(content / "roles")
        plugins = PLUGIN_DIRS.get(rel.parts[1]) if len(rel.parts) > 2 else None
        if plugins is None:
            add(f"roles/{rel.as_posix()}", source)
        elif len(rel.parts) == 3 and source.suffix == ".py":
            add(f"{plugins}/{source.name}", source)
        else:
            raise BadInputError(f"{source}: the collection takes only .py files in {rel.parts[1]}/")
    return files


def galaxy(content: Path, version: str = __version__) -> str:
    """collection/galaxy.yml with `version: VERSION` added after its name (comments kept)."""
    path = content / "collection" / "galaxy.yml"
    text = path.read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or (data.get("namespace"), data.get("name")) != (NAMESPACE, NAME):
        raise EnvironmentProblemError(f"{path}: not the galaxy.yml of {FQCN}")
    if "version" in data:
        raise EnvironmentProblemError(f"{path}: has a version (the build adds casemate's)")
    lines = text.splitlines(keepends=True)
    at = lines.index(f"name: {NAME}\n") + 1
    return "".join([*lines[:at], f'version: "{version}"\n', *lines[at:]])


def stage(content: Path, into: Path, version: str = __version__) -> Path:
    """The collection's tree in `into` (made, must not exist), ready for `ansible-galaxy
    collection build`."""
    files = plan(content)
    into.mkdir(parents=True)
    (into / "galaxy.yml").write_text(galaxy(content, version))
    for target, source in files.items():
        dest = into / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)
    return into


def build(content: Path, output: Path, version: str = __version__) -> Path:
    """Build the collection tarball into `output` (made if missing); return its path. An existing
    tarball of the same version there is replaced."""
    from casemate.runner import galaxy_collection_build  # noqa: PLC0415 - imports Ansible's runner

    if output.exists() and not output.is_dir():
        raise BadInputError(f"--output {output}: not a directory")
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="casemate-collection-") as tmp:
        staged = stage(content, Path(tmp) / "ansible_collections" / NAMESPACE / NAME, version)
        galaxy_collection_build(staged, output)
    tarball = output / tarball_name(version)
    if not tarball.is_file():
        raise EnvironmentProblemError(f"ansible-galaxy collection build wrote no {tarball}")
    return tarball
