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
"""

RETURN = r"""
paths: {description: name -> resolved path, or empty when it does not exist here, type: dict}
container: {description: the container technology the host runs in, or empty, type: str}
auditctl: {description: whether auditctl can talk to the kernel's audit system here, type: bool}
installed: {description: whether auditd's unit is known to systemd, type: bool}
current: {description: the content of casemate's Docker rule file, or empty, type: str}
host_current: {description: the content of casemate's host rule file, or empty, type: str}
packages_dry_run: {description: whether the package manager can dry-run here (apt needs python3-apt), type: bool}
"""

import importlib.util
import os
import shutil

from ansible.module_utils.basic import AnsibleModule


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


def main():
    module = AnsibleModule(
        argument_spec={
            "targets": {"type": "dict", "required": True},
            "rules_file": {"type": "path", "required": True},
            "host_rules_file": {"type": "path", "required": False},
        },
        supports_check_mode=True,
    )
    rc, out, _ = module.run_command(["systemd-detect-virt", "--container"])
    container = out.strip() if rc == 0 and out.strip() != "none" else ""
    auditctl = bool(shutil.which("auditctl")) and module.run_command(["auditctl", "-s"])[0] == 0
    rc, out, _ = module.run_command(
        ["systemctl", "show", "auditd.service", "-p", "LoadState", "--value"]
    )
    current = read(module.params["rules_file"])
    host_current = (
        read(module.params["host_rules_file"]) if module.params["host_rules_file"] else ""
    )
    module.exit_json(
        changed=False,
        paths={name: resolve(module, t) for name, t in module.params["targets"].items()},
        container=container,
        auditctl=auditctl,
        installed=out.strip() == "loaded",
        current=current,
        host_current=host_current,
        packages_dry_run=not shutil.which("apt-get") or importlib.util.find_spec("apt") is not None,
    )


if __name__ == "__main__":
    main()
