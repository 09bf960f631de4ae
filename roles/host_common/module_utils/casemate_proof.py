"""casemate's container proofs, kept on the host until something they depend on changes. A sibling
of casemate_host.py (read its docstring): stdlib only, python3 >= 3.6, carried by the probe.

A proof is a read-only command that starts a throw-away container to show that confinement is in
force (seccomp's profile applied, runsc really the kernel, syscalls denied). It costs a container
start (0.3-1 s), so what a proof observed is kept, root-only, in PROOF_DIR, under a key made of
everything its answer depends on (proof_key): the boot, the running dockerd and containerd (pid and
start time: a restart changes them), the files that configure them (daemon.json and the seccomp
profile it names, containerd's config; digest, size, inode and change time: a write changes the
change time, and a reload reads the file, so a daemon reloaded with another configuration always
left a different file behind), the binaries a container start runs (docker, dockerd, containerd,
its shims, runc, runsc and every runtime daemon.json registers; their inode, size and change
time), the package database, the image store's tag list, the kernel's AppArmor policy, the
environment the docker client reads, and the files the catalog names for that proof. What `docker
info` reports of runtimes and security options is the running daemon's configuration: the same
process with the same files answers the same.

Rules: a kept proof is reused only when its key equals the key read now, field by field, and its
file and directories are root's and nobody else's (0700 directories, 0600 file, no symlink); it is
kept only when the command held (exit 0, nothing on stderr, its output matching what the control
expects), and a proof that ran and did not hold drops the kept one, so a failing proof runs every
time and a fix shows at once; when the key changed while
the proof ran, it is not kept. Cannot tell (the cache unreadable, corrupt, forged, not root's, or
this process not root): the proof runs. Every answer says whether it was kept (`cached`), when it
was observed (`proved_at`) and, when it ran, why (`why`)."""

import contextlib
import hashlib
import json
import os
import re
import stat
import time

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import flag_value, processes, run_command
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        flag_value,
        processes,
        run_command,
    )

PROOF_DIR = "/var/cache/casemate/proofs"
PROOF_VERSION = 1
DIGEST_LIMIT = 1024 * 1024  # files up to this size are digested; larger ones (binaries): stat only
PROOF_BINARIES = (
    "docker",
    "dockerd",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v2",
    "containerd-shim-runsc-v1",
    "runc",
    "runsc",
)
BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
PACKAGE_DBS = ("/var/lib/dpkg/status", "/var/lib/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages")
APPARMOR_FILES = (
    "/sys/module/apparmor/parameters/enabled",
    "/sys/kernel/security/apparmor/profiles",
    "/sys/kernel/security/apparmor/revision",
)


def _at(root, path):
    """`path` (absolute, on the host) under `root` (the tests' stand-in for /)."""
    return os.path.join(root, path.lstrip("/")) if root != "/" else path


def file_state(path, root="/"):
    """What tells one version of a file from another: {'exists': False}, {'error': ...}, or its
    inode, size, change and modification times (ns), and, up to DIGEST_LIMIT, its sha256."""
    real = _at(root, path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return {"exists": False}
    except OSError as exc:
        return {"error": exc.strerror or str(exc)}
    state = {
        "exists": True,
        "dev": st.st_dev,
        "ino": st.st_ino,
        "mode": st.st_mode,
        "uid": st.st_uid,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
    }
    if stat.S_ISREG(st.st_mode) and st.st_size <= DIGEST_LIMIT:
        try:
            with open(real, "rb") as handle:
                state["sha256"] = hashlib.sha256(handle.read()).hexdigest()
        except OSError as exc:
            state["sha256"] = "unreadable: %s" % (exc.strerror or exc)
    return state


def content_state(path, root="/"):
    """The sha256 of a kernel interface's text (/sys files have no useful times), or None."""
    try:
        with open(_at(root, path), "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def daemon_state(name, root="/"):
    """The oldest process called `name` in our PID namespace: {pid, start, argv}, else None."""
    found = processes(name, proc=_at(root, "/proc"))
    if not found:
        return None
    start, pid, argv = found[0]
    return {"pid": pid, "start": start, "argv": argv}


def _json_file(path, root):
    try:
        with open(_at(root, path)) as handle:
            doc = json.load(handle)
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def proof_binaries(names, root="/", dirs=BIN_DIRS):
    """Where each of `names` is installed: every match in `dirs`, so a second copy earlier on
    some PATH is seen too ({name: [path, ...]})."""
    found = {}
    for name in names:
        if "/" in name:
            found[name] = [name]
            continue
        found[name] = [
            os.path.join(d, name) for d in dirs if os.path.isfile(_at(root, os.path.join(d, name)))
        ]
    return found


def proof_key(files=(), root="/", environ=None):
    """Everything a container proof's answer depends on (see the module's docstring), as plain
    data: two keys are equal only when none of it changed."""
    environ = os.environ if environ is None else environ
    dockerd = daemon_state("dockerd", root)
    argv = dockerd["argv"] if dockerd else []
    config_path = flag_value(argv, "--config-file") or "/etc/docker/daemon.json"
    config = _json_file(config_path, root)
    seccomp = flag_value(argv, "--seccomp-profile") or config.get("seccomp-profile")
    data_root = flag_value(argv, "--data-root") or config.get("data-root") or "/var/lib/docker"
    runtimes = config.get("runtimes") if isinstance(config.get("runtimes"), dict) else {}
    runtime_paths = sorted(
        str(r.get("path") or name) for name, r in runtimes.items() if isinstance(r, dict)
    )
    binaries = proof_binaries(list(PROOF_BINARIES) + runtime_paths, root)
    watched = {config_path, "/etc/containerd/config.toml"}
    if isinstance(seccomp, str) and seccomp.startswith("/"):
        watched.add(seccomp)
    repositories = os.path.join(str(data_root), "image")
    try:
        drivers = sorted(os.listdir(_at(root, repositories)))
    except OSError:
        drivers = []
    watched.update(os.path.join(repositories, d, "repositories.json") for d in drivers)
    watched.update(PACKAGE_DBS)
    watched.update(files)
    return {
        "version": PROOF_VERSION,
        "boot": content_state("/proc/sys/kernel/random/boot_id", root),
        "kernel": os.uname()[2],
        "dockerd": dockerd,
        "containerd": daemon_state("containerd", root),
        "binaries": {path: file_state(path, root) for paths in binaries.values() for path in paths},
        "missing_binaries": sorted(name for name, paths in binaries.items() if not paths),
        "files": {path: file_state(path, root) for path in sorted(watched)},
        "apparmor": {path: content_state(path, root) for path in APPARMOR_FILES},
        "environment": dict(
            [(k, v) for k, v in sorted(environ.items()) if k.startswith("DOCKER_")]
            + [("PATH", environ.get("PATH", ""))]
        ),
    }


def record_name(command, files, keep):
    """The file a proof is kept in: named after the proof itself (command, files, expectation)."""
    text = json.dumps([command, sorted(files), keep], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest() + ".json"


def _private(st, kind):
    """True when a directory or file is root's alone: owned by root, of the kind asked for (no
    symlink), nobody else may write it and, for the cache's own, read it."""
    if st.st_uid != 0:
        return False
    if kind == "dir" and not stat.S_ISDIR(st.st_mode):
        return False
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        return False
    return stat.S_IMODE(st.st_mode) & 0o077 == 0


def trusted_dir(directory, root="/"):
    """Why the proof directory cannot be trusted, or None: it and the casemate directory above it
    must be root's 0700 directories (not links), and every directory above those root's and
    writable by nobody else."""
    real = _at(root, directory)
    own = [real, os.path.dirname(real)]
    for path in own:
        try:
            st = os.lstat(path)
        except OSError as exc:
            return "%s: %s" % (path, exc.strerror or exc)
        if not _private(st, "dir"):
            return "%s is not root's private directory" % path
    above = os.path.dirname(own[-1])
    while True:
        try:
            st = os.stat(above)
        except OSError as exc:
            return "%s: %s" % (above, exc.strerror or exc)
        if st.st_uid != 0 or stat.S_IMODE(st.st_mode) & 0o022:
            return "%s may be written by others than root" % above
        parent = os.path.dirname(above)
        if parent == above or (root != "/" and len(above) <= len(root.rstrip("/"))):
            return None
        above = parent


def read_record(path):
    """(the kept proof, None) or (None, why it cannot be used)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None, "no kept proof"
    except OSError as exc:
        return None, "the kept proof cannot be opened: %s" % (exc.strerror or exc)
    with os.fdopen(fd, "rb") as handle:
        if not _private(os.fstat(handle.fileno()), "file"):
            return None, "the kept proof is not root's private file"
        try:
            record = json.loads(handle.read(4 * 1024 * 1024).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None, "the kept proof is corrupt"
    if not isinstance(record, dict) or not isinstance(record.get("result"), dict):
        return None, "the kept proof is corrupt"
    return record, None


def changed_parts(old, new):
    """Which parts of a proof's key differ (their names, in order), [] when none."""
    if not isinstance(old, dict):
        return ["the whole key"]
    return [part for part in sorted(set(old) | set(new)) if old.get(part) != new.get(part)]


def held(result, keep):
    """Whether a command's answer may be kept: it worked, said nothing on stderr, and its output
    is what the control expects (the regex `keep`)."""
    if result.get("error") or result.get("rc") != 0 or str(result.get("stderr", "")).strip():
        return False
    return bool(keep) and re.search(keep, str(result.get("stdout", "")).strip()) is not None


def write_record(directory, name, record, root="/"):
    """Keep a proof: root's 0700 directories, a 0600 file written whole then renamed into place.
    Returns why it could not be kept, or None."""
    real = _at(root, directory)
    try:
        for path in (os.path.dirname(real), real):
            if not os.path.isdir(path):
                os.makedirs(path, 0o700)
                os.chmod(path, 0o700)
        why = trusted_dir(directory, root)
        if why:
            return why
        target = os.path.join(real, name)
        temp = "%s.%d.tmp" % (target, os.getpid())
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, sort_keys=True)
        os.rename(temp, target)
    except OSError as exc:
        return "cannot keep the proof: %s" % (exc.strerror or exc)
    return None


def drop_record(directory, path, root="/"):
    """Forget a kept proof that no longer holds (in root's own directory only)."""
    if os.path.isdir(_at(root, directory)) and trusted_dir(directory, root) is None:
        with contextlib.suppress(OSError):
            os.unlink(path)


def prove(command, files=(), keep="", **options):
    """The answer of a container proof ({rc, stdout, stderr} as a command's) and `cached`,
    `proved_at` and, when it ran, `why`: the kept one when nothing it depends on changed,
    else the command run now (and kept when it held). `options`: fresh (run it anew), and for
    tests root, directory, run (a command runner), euid, now (the time) and environ."""
    fresh = options.get("fresh", False)
    root = options.get("root", "/")
    directory = options.get("directory", PROOF_DIR)
    run = options.get("run") or (lambda cmd: run_command(cmd, shell=True))
    euid = options.get("euid", os.geteuid())
    now = options.get("now")
    environ = options.get("environ")
    key = proof_key(files, root, environ)
    name = record_name(command, list(files), keep)
    path = os.path.join(_at(root, directory), name)
    if fresh:
        why = "fresh proofs were asked for"
    elif euid != 0:
        why = "not root: proofs are kept only by root"
    else:
        why = "no kept proof"
        if os.path.isdir(_at(root, directory)):
            why = trusted_dir(directory, root)
        record = None
        if why is None:
            record, why = read_record(path)
        if record is not None:
            changed = changed_parts(record.get("key"), key)
            if not changed and record.get("command") == command:
                result = dict(record["result"])
                result.update(cached=True, proved_at=record.get("proved_at", ""))
                return result
            why = "changed since the kept proof: %s" % ", ".join(changed or ["the command"])
    began = time.time() if now is None else now
    result = run(command)
    result.pop("error", None)
    result = {k: result.get(k) for k in ("rc", "stdout", "stderr")}
    proved_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began))
    answer = dict(result, cached=False, proved_at=proved_at, why=why)
    if euid == 0 and not held(result, keep):
        drop_record(directory, path, root)
    elif euid == 0 and proof_key(files, root, environ) == key:
        record = {"command": command, "files": sorted(files), "keep": keep, "key": key,
                  "result": result, "proved_at": proved_at}  # fmt: skip
        unkept = write_record(directory, name, record, root)
        if unkept:
            answer["unkept"] = unkept
    return answer
