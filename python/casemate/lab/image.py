"""Build the node image without a registry: debootstrap a root file system, stream it into
`docker import`, then `docker build` the node image on top. Both images are cached by tag."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from casemate import private
from casemate.errors import EnvironmentProblemError, LabError
from casemate.lab.engine import Engine, last_line
from casemate.lab.recipe import RECIPE_LABEL, Recipe, build_args, debootstrap_args

Progress = Callable[[str], None]


def ensure_image(
    engine: Engine, r: Recipe, build_root: Path, progress: Progress, *, rebuild: bool
) -> str:
    """The node image's tag, built first unless it is cached. `rebuild` builds both images
    again from scratch (fresh debootstrap, no layer cache) under the same tags."""
    old_node = engine.image_id(r.node_tag)
    if old_node is not None and not rebuild:
        progress(f"node image {r.node_tag} is cached")
        return r.node_tag
    old_base = engine.image_id(r.base_tag)
    if old_base is None or rebuild:
        build_base(engine, r, build_root, progress)
    build_node(engine, r, build_root, progress, no_cache=rebuild)
    # A rebuild leaves the old images untagged; drop them unless a node still runs on them.
    current = (engine.image_id(r.node_tag), engine.image_id(r.base_tag))
    for old in (old_node, old_base):
        if old is not None and old not in current:
            engine.run(["image", "rm", old], timeout=120)
    return r.node_tag


def build_base(engine: Engine, r: Recipe, build_root: Path, progress: Progress) -> None:
    if shutil.which("debootstrap") is None:
        raise EnvironmentProblemError(
            "debootstrap not found: apt-get install debootstrap (see README)"
        )
    if os.geteuid() != 0:
        raise EnvironmentProblemError("building the lab's base image needs root (debootstrap)")
    began = time.monotonic()
    progress(f"building base image (debootstrap {r.release}, ~30 s)")
    with _scratch(build_root, "rootfs-", progress) as scratch:
        root = scratch / "root"
        _debootstrap(r.release, root)
        progress(f"importing {r.base_tag}")
        _import(engine, root, r)
    progress(f"base image {r.base_tag} ready ({time.monotonic() - began:.0f} s)")


def build_node(
    engine: Engine, r: Recipe, build_root: Path, progress: Progress, *, no_cache: bool
) -> None:
    began = time.monotonic()
    progress(f"building node image {r.node_tag} (Debian packages, ~30 s)")
    with _scratch(build_root, "context-", progress) as context:
        (context / "Dockerfile").write_text(r.dockerfile, encoding="utf-8")
        entrypoint = context / "entrypoint.sh"
        entrypoint.write_text(r.entrypoint, encoding="utf-8")
        entrypoint.chmod(0o755)  # COPY keeps the mode
        done = engine.run(
            build_args(r, str(context), no_cache=no_cache),
            timeout=1800,
            # The legacy builder: BuildKit needs an entitlement for `--network host`.
            env={"DOCKER_BUILDKIT": "0"},
        )
    if done.returncode != 0:
        log = build_root / f"{r.node_tag.replace(':', '-')}.log"
        private.write(log, done.stdout + done.stderr)
        why = _apt_error(done.stdout + done.stderr) or last_line(done.stderr)
        raise LabError(f"building {r.node_tag} failed: {why} (log: {log})")
    progress(f"node image {r.node_tag} ready ({time.monotonic() - began:.0f} s)")


def _debootstrap(release: str, root: Path) -> None:
    try:
        done = subprocess.run(
            debootstrap_args(release, str(root)),
            check=False,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"debootstrap {release} took longer than 30 minutes") from None
    if done.returncode != 0:
        why = _apt_error(done.stdout + done.stderr) or last_line(done.stderr or done.stdout)
        raise LabError(f"debootstrap {release} failed: {why or f'exit status {done.returncode}'}")


def _import(engine: Engine, root: Path, r: Recipe) -> None:
    """`tar -C ROOT -c . | docker import - BASE_TAG`, streamed through a pipe."""
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as tar_errors:
        tar = subprocess.Popen(
            ["tar", "-C", str(root), "--numeric-owner", "-c", "."],
            stdout=subprocess.PIPE,
            stderr=tar_errors,
        )
        try:
            imported = subprocess.run(
                [
                    *(engine.docker, "import", "--change", f"LABEL {RECIPE_LABEL}={r.base_hash}"),
                    *("-", r.base_tag),
                ],
                stdin=tar.stdout,
                check=False,
                capture_output=True,
                text=True,
                timeout=900,
            )
        except FileNotFoundError:
            raise EnvironmentProblemError(f"{engine.docker!r} not found") from None
        except subprocess.TimeoutExpired:
            raise LabError(f"docker import of {r.base_tag} took longer than 15 minutes") from None
        finally:
            if tar.stdout is not None:
                tar.stdout.close()  # tar gets SIGPIPE if docker import stopped reading
            tar_status = tar.wait()
        tar_errors.seek(0)
        tar_message = last_line(tar_errors.read())
    if imported.returncode != 0:
        raise LabError(f"docker import of {r.base_tag} failed: {last_line(imported.stderr)}")
    if tar_status != 0:
        engine.run(["image", "rm", r.base_tag], timeout=120)  # it holds a partial root
        raise LabError(f"tar of the debootstrap root failed: {tar_message or tar_status}")


def _apt_error(output: str) -> str:
    """The last `E: ...` line apt or debootstrap printed, if any."""
    errors = [line.strip() for line in output.splitlines() if line.startswith("E:")]
    return errors[-1][:300] if errors else ""


@contextmanager
def _scratch(build_root: Path, prefix: str, progress: Progress) -> Iterator[Path]:
    """A fresh directory under `build_root`, removed afterwards even when the build fails."""
    private.make_dir(build_root)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=build_root)).resolve()
    try:
        yield path
    finally:
        _unmount_under(path)  # a failed debootstrap can leave proc/sys mounted in the root
        shutil.rmtree(path, ignore_errors=True)
        if path.exists():
            progress(f"could not remove {path} completely; remove it by hand")


def _unmount_under(path: Path) -> None:
    with Path("/proc/self/mounts").open(encoding="utf-8") as mounts:
        points = [_unescape(line.split()[1]) for line in mounts if len(line.split()) > 1]
    inside = [p for p in points if p == str(path) or p.startswith(f"{path}/")]
    for point in sorted(set(inside), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True, text=True)


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
