#!/usr/bin/python
"""Resolve the paths audit rules should watch, and read what audit can do here (read-only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: auditd_rules_facts
short_description: Resolve watched paths and report the audit system's state (read-only)
options:
  targets: {description: name -> one of path, unit (its unit file) or command (on PATH), type: dict, required: true}
  rules_file: {description: the Docker rule file casemate owns, type: path, required: true}
  host_rules_file: {description: the host rule file casemate owns (identity, sudoers, runsc), type: path, required: false}
  loaded_rules: {description: rule lines casemate wants loaded; the answer says which the kernel lacks, type: list, elements: str, required: false}
"""

RETURN = r"""
paths: {description: name -> resolved path, or empty when it does not exist here, type: dict}
container: {description: the container technology the host runs in, or empty, type: str}
auditctl: {description: whether auditctl can talk to the kernel's audit system here, type: bool}
installed: {description: whether auditd's unit is known to systemd, type: bool}
active: {description: whether auditd.service is running, type: bool}
enabled: {description: the kernel audit system's "enabled" flag from auditctl -s (0, 1, or 2 = locked until reboot), or null, type: int}
missing: {description: those of loaded_rules the kernel has not loaded (auditctl -l), type: list}
os: {description: ID and VERSION_ID from /etc/os-release, type: dict}
current: {description: the content of casemate's Docker rule file, or empty, type: str}
host_current: {description: the content of casemate's host rule file, or empty, type: str}
packages_dry_run: {description: whether the package manager can dry-run here (apt needs python3-apt), type: bool}
"""

import importlib.util
import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.casemate_host import (  # shared by the host roles (role host_common)
    classify_container,  # noqa: F401  (what detect_container decides by; the tests read it here)
    detect_container,
    os_release,
)


def resolve(module, target):
    if target.get("path"):
        return target["path"] if os.path.exists(target["path"]) else ""
    if target.get("unit"):
        rc, out, _ = module.run_command(
            ["systemctl", "show", target["unit"], "-p", "FragmentPath", "--value"]
        )
        path = out.strip() if rc == 0 else ""
        return path if path and os.path.exists(path) else ""
    return shutil.which(target.get("command", "")) or ""


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def _norm(path):
    return path.rstrip("/") or "/"


def watches(rules):
    """(path, permissions, key) of every watch rule: `-w PATH [-p PERMS] [-k KEY]` or a syscall
    rule with `-F path=`/`-F dir=` [`-F perm=`] [`-F key=`/`-k`]. No permissions means rwxa, as
    auditctl -l shows it (the same reading as casemate's audit_rule check kind)."""
    found = []
    for raw in rules.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] not in ("-w", "-a", "-A"):
            continue
        path, perms, key = "", "rwxa", ""
        for i, word in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if word == "-w":
                path = nxt
            elif word == "-p":
                perms = nxt
            elif word == "-k":
                key = nxt
            elif word == "-F" and "=" in nxt:
                field, _, value = nxt.partition("=")
                if field in ("path", "dir"):
                    path = value
                elif field == "perm":
                    perms = value
                elif field == "key":
                    key = value
        if path:
            found.append((_norm(path), "".join(sorted(perms)), key))
    return found


def missing_rules(wanted, loaded):
    """The lines of `wanted` whose watch (path, permissions, key) `loaded` (auditctl -l) lacks."""
    have = set(watches(loaded))
    return [line for line in wanted if watches(line) and not set(watches(line)) <= have]


def audit_status(text):
    """The `enabled` flag of `auditctl -s` (2: rules locked until reboot), or None."""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "enabled" and words[1].isdigit():
            return int(words[1])
    return None


def main():
    module = AnsibleModule(
        argument_spec={
            "targets": {"type": "dict", "required": True},
            "rules_file": {"type": "path", "required": True},
            "host_rules_file": {"type": "path", "required": False},
            "loaded_rules": {"type": "list", "elements": "str", "required": False},
        },
        supports_check_mode=True,
    )
    container = detect_container(module)
    auditctl, enabled, missing = False, None, []
    if module.get_bin_path("auditctl"):
        rc, status, _ = module.run_command(["auditctl", "-s"])
        auditctl = rc == 0
        enabled = audit_status(status) if auditctl else None
        if auditctl and module.params["loaded_rules"]:
            rc, loaded, _ = module.run_command(["auditctl", "-l"])
            missing = missing_rules(module.params["loaded_rules"], loaded if rc == 0 else "")
    rc, out, _ = module.run_command(
        ["systemctl", "show", "auditd.service", "-p", "LoadState", "-p", "ActiveState"]
    )
    unit = dict(line.partition("=")[::2] for line in out.splitlines()) if rc == 0 else {}
    current = read(module.params["rules_file"])
    host_current = (
        read(module.params["host_rules_file"]) if module.params["host_rules_file"] else ""
    )
    module.exit_json(
        changed=False,
        paths={name: resolve(module, t) for name, t in module.params["targets"].items()},
        container=container,
        auditctl=auditctl,
        installed=unit.get("LoadState") == "loaded",
        active=unit.get("ActiveState") == "active",
        enabled=enabled,
        missing=missing,
        os=os_release(),
        current=current,
        host_current=host_current,
        packages_dry_run=not shutil.which("apt-get") or importlib.util.find_spec("apt") is not None,
    )


if __name__ == "__main__":
    main()
