#!/usr/bin/python
"""Documentation and argument spec of the kube_control_plane_decide action (the work happens in
action_plugins/kube_control_plane_decide.py, on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: kube_control_plane_decide
short_description: Read the control plane once and decide every selected kube_control_plane control (read-only)
description:
  - Runs on the controller (action plugin). Reads the node in one kube_node_facts call (the
    manifests and casemate's files whole, the 1.1 modes and owners, the kubelet serving
    certificate, casemate's directories), parses the manifests with kube_manifest's code, decides
    with the kube_control_plane_plan module, and judges with the change steps' own code whether
    any of them would change a file.
  - Fails, before anything changes, on a host where none of the manifests exists, and where the
    plan refuses (restricted anonymous auth next to another authenticator).
options:
  run_tags: {description: "the run's --tags (ansible_run_tags)", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
  components: {description: "apiserver, controller_manager, scheduler -> {path, process, health_path}", type: dict, required: true}
  modes: {description: "kube_node_facts modes: the 1.1 mode limits", type: list, elements: dict, default: []}
  owners: {description: "kube_node_facts owners: what must be root:root", type: list, elements: dict, default: []}
  exclude: {description: "files left out of modes and owners (broken files of other roles)", type: list, elements: path, default: []}
  verify: {description: "kube_node_facts verify: [{cert, ca}] of the kubelet serving certificate", type: list, elements: dict, default: []}
  documents: {description: "authentication, event_rate_limit, admission, audit_policy -> {path, document, header} of casemate's files", type: dict, required: true}
  encryption: {description: "kube_encryption_config's provider, resources and backup_dir", type: dict, required: true}
  settings: {description: "the role's knobs, without the kube_control_plane_ prefix", type: dict, required: true}
"""

RETURN = r"""
reads: {description: "component -> what kube_manifest's read returned (flags, command, probe) or broken; a skipped read where the manifest is missing", type: dict}
node: {description: "the 1.1 modes and owners off (broken manifests left out) and the verified certificate", type: dict}
differs: {description: what the change steps would change (or cannot be judged here), one line each, type: list}
apply: {description: whether the change steps run (differs is not empty), type: bool}
usable: {description: "and every other return value of kube_control_plane_plan", type: dict}
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
            "components": {"type": "dict", "required": True},
            "modes": {"type": "list", "elements": "dict", "default": []},
            "owners": {"type": "list", "elements": "dict", "default": []},
            "exclude": {"type": "list", "elements": "path", "default": []},
            "verify": {"type": "list", "elements": "dict", "default": []},
            "documents": {"type": "dict", "required": True},
            "encryption": {"type": "dict", "required": True},
            "settings": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    module.fail_json(
        msg="kube_control_plane_decide runs as an action plugin on the controller; its action_plugins directory is not on the path"
    )


if __name__ == "__main__":
    main()
