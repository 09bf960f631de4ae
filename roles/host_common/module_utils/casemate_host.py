"""What the host roles need to know about the host they run on, shared by their modules
(imported as ansible.module_utils.casemate_host): whether it is a container, which OS it runs, and
whether a running service has loaded its config files.

The container detection is the same as casemate's probe (python/casemate/probe/remote.py), which
runs without Ansible and so keeps its own copy; tests/unit/test_host_review.py holds them equal."""

# Runs on the host with its python3 like the modules in library/: no pathlib idioms.

from __future__ import annotations

import hashlib
import json
import os
import time


def classify_container(virt, markers, environ):
    """The container this host runs in, from systemd-detect-virt's (rc, output) or None when it
    cannot run, the marker files that exist, and pid 1's container= value (None when unset or
    unreadable). Any sign of a container wins; with no systemd-detect-virt answer and no sign the
    host is 'unknown', which counts as a container."""
    rc, out = virt if virt is not None else (None, "")
    if rc == 0 and out and out != "none":
        return out
    if "/.dockerenv" in markers:
        return "docker"
    if "/run/.containerenv" in markers:
        return "podman"
    if environ is not None:
        return environ or "container"
    if rc == 1 and out == "none":
        return ""
    return "unknown"


def detect_container(module):
    virt = None
    if module.get_bin_path("systemd-detect-virt"):
        rc, out, _ = module.run_command(["systemd-detect-virt", "--container"])
        virt = (rc, out.strip())
    markers = [m for m in ("/.dockerenv", "/run/.containerenv") if os.path.exists(m)]
    environ = None
    try:
        with open("/proc/1/environ", "rb") as handle:
            for item in handle.read().split(b"\0"):
                if item.startswith(b"container="):
                    environ = item.split(b"=", 1)[1].decode()
    except OSError:
        pass
    return classify_container(virt, markers, environ)


def os_release(path="/etc/os-release"):
    info = {"id": "", "version_id": ""}
    try:
        with open(path) as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                if key in ("ID", "VERSION_ID"):
                    info[key.lower()] = value.strip("\"'")
    except OSError:
        pass
    return info


# --- Has a running service loaded its configuration? ---------------------------------------------
# A role that writes a service's config and then dies (killed, interrupted) before the restart
# leaves a correct file and a service still running the old one; the next run must not trust "the
# file is already right". Rule: the service has loaded its files when its main process started
# after every one of them was last written, or when casemate recorded a successful reload of exactly
# this content by this very process (reloads keep the process: sshd, dockerd). Otherwise a restart
# or reload is pending. A stopped service loads nothing until it starts: "cannot tell" is reported
# as None, and the roles leave a stopped service stopped.

APPLIED_DIR = "/var/lib/casemate/applied"
UNIT_PROCESS_PROPS = ["ActiveState", "MainPID", "ExecMainStartTimestampMonotonic"]


def parse_unit_process(text):
    """{'active', 'pid', 'started'} from `systemctl show -p ...` output of UNIT_PROCESS_PROPS;
    `started` is the main process's start on CLOCK_MONOTONIC, in microseconds."""
    props = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        props[key.strip()] = value.strip()
    pid = int(props["MainPID"]) if props.get("MainPID", "").isdigit() else 0
    started = props.get("ExecMainStartTimestampMonotonic", "")
    return {
        "active": props.get("ActiveState") in ("active", "reloading") and pid > 0,
        "pid": pid,
        "started": int(started) if started.isdigit() else 0,
    }


def unit_process(module, unit):
    """The unit's main process (see parse_unit_process), or None when systemctl cannot tell."""
    argv = ["systemctl", "show", unit]
    for prop in UNIT_PROCESS_PROPS:
        argv += ["-p", prop]
    rc, out, _ = module.run_command(argv)
    return parse_unit_process(out) if rc == 0 else None


def file_digest(path):
    """{'exists', 'sha256', 'mtime'} of a file (mtime in wall-clock seconds)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return {"exists": False, "sha256": "", "mtime": 0.0}
    return {"exists": True, "sha256": hashlib.sha256(data).hexdigest(), "mtime": mtime}


def applied_record_path(unit, directory=APPLIED_DIR):
    return os.path.join(directory, unit.replace("/", "_") + ".json")


def read_applied(unit, directory=APPLIED_DIR):
    """casemate's record of the last successful apply of `unit`'s config, or None."""
    try:
        with open(applied_record_path(unit, directory)) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def judge_loaded(process, files, record, clock_offset):
    """(loaded, why): True when the running process has loaded `files` ({path: file_digest}), False
    when a restart or reload is pending, None when the service is not running. `clock_offset` is
    wall-clock minus monotonic time, in seconds (to compare mtimes with the process start)."""
    if process is None:
        return None, "systemd cannot tell whether the service runs"
    if not process["active"]:
        return None, "the service is not running"
    present = {p: f for p, f in files.items() if f["exists"]}
    newest = max(present, key=lambda p: present[p]["mtime"], default=None)
    if newest is None:
        return True, "none of its config files exists"
    written = (present[newest]["mtime"] - clock_offset) * 1000000
    if process["started"] > written:
        return True, "its main process started after its config was last written"
    if (
        record is not None
        and record.get("pid") == process["pid"]
        and record.get("started") == process["started"]
        and record.get("files") == {p: f["sha256"] for p, f in files.items()}
    ):
        return True, "casemate recorded a reload of this config by the running process"
    return False, (
        "its main process (pid %s) started before %s was last written, and no reload of that "
        "content is recorded" % (process["pid"], newest)
    )


def config_loaded(module, unit, paths, directory=APPLIED_DIR):
    """Whether `unit`'s running main process has loaded `paths`: {'loaded': True|False|None,
    'why': str, 'pid': int}. The reader every role that restarts a service decides by."""
    process = unit_process(module, unit)
    files = {p: file_digest(p) for p in paths}
    offset = time.time() - time.monotonic()
    loaded, why = judge_loaded(process, files, read_applied(unit, directory), offset)
    return {"loaded": loaded, "why": why, "pid": (process or {}).get("pid", 0)}


def record_applied(module, unit, paths, directory=APPLIED_DIR):
    """Record that `unit`'s running main process now runs with `paths` as they are (after a
    confirmed reload or restart). Returns (changed, record)."""
    process = unit_process(module, unit) or {"pid": 0, "started": 0}
    record = {
        "unit": unit,
        "pid": process["pid"],
        "started": process["started"],
        "files": {p: file_digest(p)["sha256"] for p in paths},
    }
    if read_applied(unit, directory) == record:
        return False, record
    if not module.check_mode:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        target = applied_record_path(unit, directory)
        temp = target + ".tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, sort_keys=True)
        os.rename(temp, target)
    return True, record
