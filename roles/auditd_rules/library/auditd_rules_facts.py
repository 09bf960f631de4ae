#!/usr/bin/python
"""Resolve the paths audit rules should watch, and read what audit can do here (read-only)."""

DOCUMENTATION = r"""
module: auditd_rules_facts
short_description: Resolve watched paths and report the audit system's state (read-only)
options:
  targets: {description: "name -> one of path, unit (its unit file) or command (a binary; with documented: the benchmark's paths for it)", type: dict, required: true}
  rules_file: {description: the Docker rule file casemate owns, type: path, required: true}
  host_rules_file: {description: the host rule file casemate owns (identity, sudoers, runsc), type: path, required: false}
  loaded_rules: {description: rule lines casemate wants loaded; the answer says which the kernel lacks, type: list, elements: str, required: false}
"""

RETURN = r"""
paths: {description: "name -> resolved path, or empty when it does not exist here; for a command, the list of every path to watch (casemate_audit.binary_paths)", type: dict}
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

import os

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_audit import (
        audit_status,
        binary_paths,
        missing_rules,
    )
    from ansible.module_utils.casemate_host import (
        os_release,
        packages_dry_run,
        read_container,
        read_text,
        unit_properties,
    )
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_audit import (
        audit_status,
        binary_paths,
        missing_rules,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        os_release,
        packages_dry_run,
        read_container,
        read_text,
        unit_properties,
    )


def resolve(module, target):
    if target.get("path"):
        return target["path"] if os.path.exists(target["path"]) else ""
    if target.get("unit"):
        props, _ = unit_properties(target["unit"], ["FragmentPath"], module.run_command)
        path = props.get("FragmentPath", "")
        return path if path and os.path.exists(path) else ""
    return binary_paths(target.get("command", ""), target.get("documented") or [])


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
    container = read_container(module.run_command)
    auditctl, enabled, missing = False, None, []
    if module.get_bin_path("auditctl"):
        rc, status, _ = module.run_command(["auditctl", "-s"])
        auditctl = rc == 0
        enabled = audit_status(status) if auditctl else None
        if auditctl and module.params["loaded_rules"]:
            rc, loaded, _ = module.run_command(["auditctl", "-l"])
            missing = missing_rules(module.params["loaded_rules"], loaded if rc == 0 else "")
    unit, _ = unit_properties("auditd.service", ["LoadState", "ActiveState"], module.run_command)
    current = read_text(module.params["rules_file"]) or ""
    host_current = (
        (read_text(module.params["host_rules_file"]) or "")
        if module.params["host_rules_file"]
        else ""
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
        packages_dry_run=packages_dry_run(),
    )


if __name__ == "__main__":
    main()
