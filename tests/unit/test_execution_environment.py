"""execution-environment.yml makes a build context that installs the collection and casemate.

`ansible-builder create` only writes the context (no image is built: there is no registry here),
so it runs offline: the checked-in definition, with a collection tarball and a wheel in dist/
beside it, as `make ee` lays them out."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from casemate import __version__, collection
from casemate.locations import content_root

ROOT = content_root()
BUILDER = Path(sys.executable).parent / "ansible-builder"


def test_execution_environment_is_ansible_builder_v3_with_casemates_ansible_range() -> None:
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    pyproject = (ROOT / "pyproject.toml").read_text()
    for dep in ("ansible_core", "ansible_runner"):
        pinned = ee["dependencies"][dep]["package_pip"]
        assert f'"{pinned}"' in pyproject.replace(" ", ""), f"{pinned}: not casemate's range"


@pytest.mark.ansible
def test_builder_context_installs_the_collection_and_the_casemate_wheel(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    tarball = collection.build(ROOT, dist)
    subprocess.run(  # as `make ee`: pip wheel --no-deps -w dist .
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = dist / f"casemate-{__version__}-py3-none-any.whl"
    shutil.copy(ROOT / "execution-environment.yml", tmp_path)
    context = tmp_path / "context"
    done = subprocess.run(
        [str(BUILDER), "create", "-f", "execution-environment.yml", "-c", str(context),
         "--output-filename", "Containerfile"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No matches" not in done.stdout + done.stderr  # every artifact was found
    copied = context / "_build" / "casemate"
    assert (copied / tarball.name).read_bytes() == tarball.read_bytes()
    assert (copied / wheel.name).read_bytes() == wheel.read_bytes()
    steps = (context / "Containerfile").read_text().splitlines()
    final = steps[steps.index("FROM base AS final") :]
    assert "COPY _build/casemate/ /build/casemate/" in final
    install = [s for s in final if "ansible-galaxy collection install" in s]
    assert install, "the final image never installs the collection"
    assert "/build/casemate/casemate-hardening-*.tar.gz" in install[0]
    assert "--offline" in install[0]
    pip = [s for s in final if "pip install" in s and "/build/casemate/casemate-" in s]
    assert pip, "the final image never installs the casemate wheel"
    assert pip[0].endswith("/build/casemate/casemate-*-py3-none-any.whl")
    assert any(s.startswith("RUN /output/scripts/check_ansible") for s in final)
    assert (context / "_build" / "scripts" / "check_ansible").is_file()
