#!/usr/bin/python
"""Record on the host that a service now runs with its config files as they are: called by a role
right after it confirmed a reload or restart, so that a later run can tell a config that was written
but never loaded (an interrupted run) from one that is in effect."""

DOCUMENTATION = r"""
module: casemate_applied
short_description: Record that a service's running process has loaded its config files
options:
  unit: {description: the systemd unit, type: str, required: true}
  paths: {description: the config files the service reads, type: list, elements: path, required: true}
  directory: {description: where the records are kept, type: path, default: /var/lib/casemate/applied}
"""

RETURN = r"""
record: {description: the unit, its main process (pid, start) and the sha256 of each file, type: dict}
"""

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        APPLIED_DIR,
        record_applied,
    )
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        APPLIED_DIR,
        record_applied,
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "unit": {"type": "str", "required": True},
            "paths": {"type": "list", "elements": "path", "required": True},
            "directory": {"type": "path", "default": APPLIED_DIR},
        },
        supports_check_mode=True,
    )
    p = module.params
    changed, record = record_applied(module, p["unit"], p["paths"], p["directory"])
    module.exit_json(changed=changed, record=record)


if __name__ == "__main__":
    main()
