"""What the host roles need to know about the host they run on, shared by their modules
(imported as ansible.module_utils.casemate_host): whether it is a container, and which OS it runs.

The container detection is the same as casemate's probe (python/casemate/probe/remote.py), which
runs without Ansible and so keeps its own copy; tests/unit/test_host_review.py holds them equal."""

# Runs on the host with its python3 like the modules in library/: no pathlib idioms.
# ruff: noqa: PTH110, PTH123

from __future__ import annotations

import os


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
