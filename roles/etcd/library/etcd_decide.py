#!/usr/bin/python
"""Documentation and argument spec of the etcd_decide action (the work happens in
action_plugins/etcd_decide.py, on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: etcd_decide
short_description: Read etcd's manifest once and decide every selected etcd control (read-only)
description:
  - Runs on the controller (action plugin). Reads the manifest whole in one kube_node_facts call,
    parses it with kube_manifest's code, decides with the etcd_plan module, and judges with the
    editor's own code whether the manifest edit would change the file.
  - Fails, before anything changes, on a host without etcd's manifest (etcd_plan refuses it).
options:
  run_tags: {description: "the run's --tags (ansible_run_tags)", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
  settings: {description: "the role's knobs, without the etcd_ prefix", type: dict, required: true}
"""

RETURN = r"""
found: {description: "what kube_manifest's read of the manifest returned (flags, command, probe) or broken", type: dict}
differs: {description: what the change steps would change (or cannot be judged here), one line each, type: list}
apply: {description: whether the change steps run (differs is not empty), type: bool}
usable: {description: "and every other return value of etcd_plan", type: bool}
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
            "settings": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    module.fail_json(
        msg="etcd_decide runs as an action plugin on the controller; its action_plugins directory is not on the path"
    )


if __name__ == "__main__":
    main()
