#!/usr/bin/python
"""Documentation and argument spec of the kube_kubelet_preflight action (the work happens in
action_plugins/kube_kubelet_preflight.py, on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: kube_kubelet_preflight
short_description: Read the kubelet's host state and decide the selected kube_kubelet controls, in one task (read-only)
description:
  - >-
    Runs on the controller (action plugin). Calls the readers the role's Preflight steps called one
    task each, with the same arguments, in one task. kube_node_facts (unit, process, sysctls,
    container, environment files present); kube_manifest reads of config.yaml and of each
    environment file (if_broken report); kube_node_facts again (the 4.1 modes and owners of the
    files systemd and config.yaml name, whether the kubelet runs its files); then kube_kubelet_plan.
  - Changes nothing. Fails where kube_kubelet_plan refuses (no config.yaml) or a reader fails.
options:
  service: {description: systemd unit of the kubelet, type: str, required: true}
  config_path: {description: the KubeletConfiguration file, type: path, required: true}
  unit_dirs: {description: where the unit's files are searched when systemd does not know it, type: list, elements: path, default: []}
  env_files: {description: the role's environment files (besides the unit's), type: list, elements: path, default: []}
  env_variables: {description: the variables of those files that hold flags, type: list, elements: str, default: []}
  kubeconfig: {description: the kubelet's kubeconfig, type: path, required: true}
  proxy_kubeconfig: {description: kube-proxy's kubeconfig, type: path, required: true}
  client_ca_file: {description: the client CA where config.yaml names none, type: str, required: true}
  backup_dir: {description: the role's backup directory (the readers' argument; nothing is written), type: path, required: true}
  sysctls: {description: the kernel settings protectKernelDefaults needs, type: list, elements: str, default: []}
  settings: {description: "the role's knobs for kube_kubelet_plan (vars/main.yml kube_kubelet_plan_settings)", type: dict, required: true}
  run_tags: {description: "the run's --tags (ansible_run_tags)", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
"""

RETURN = r"""
process: {description: "the kubelet's process {running, pid, start, argv}", type: dict}
env_paths: {description: the environment files that exist, type: list}
apply: {description: "and every other key of kube_kubelet_plan's result (files, write, pending, notes, ...)", type: bool}
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "service": {"type": "str", "required": True},
            "config_path": {"type": "path", "required": True},
            "unit_dirs": {"type": "list", "elements": "path", "default": []},
            "env_files": {"type": "list", "elements": "path", "default": []},
            "env_variables": {"type": "list", "elements": "str", "default": []},
            "kubeconfig": {"type": "path", "required": True},
            "proxy_kubeconfig": {"type": "path", "required": True},
            "client_ca_file": {"type": "str", "required": True},
            "backup_dir": {"type": "path", "required": True},
            "sysctls": {"type": "list", "elements": "str", "default": []},
            "settings": {"type": "dict", "required": True},
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    module.fail_json(
        msg="kube_kubelet_preflight runs as an action plugin on the controller; its action_plugins directory is not on the path"
    )


if __name__ == "__main__":
    main()
