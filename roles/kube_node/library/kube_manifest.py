#!/usr/bin/python
"""Documentation and argument spec of the kube_manifest action (the work happens in
action_plugins/kube_manifest.py, on the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: kube_manifest
short_description: Change only casemate's settings in a static pod manifest, a component config or a flags file
description:
  - Runs on the controller (action plugin); the file is read over the connection, edited with the
    controller's PyYAML (the node needs no YAML library), validated, backed up into backup_dir
    and written back atomically through the copy action. Supports check mode and --diff.
  - A file that already carries every setting is not rewritten, whatever its formatting.
options:
  path: {description: the file on the node, type: path, required: true}
  format:
    description: pod (static pod manifest), config (a component configuration document) or env (a systemd environment file of flag variables)
    type: str
    choices: [pod, config, env]
    default: pod
  backup_dir: {description: where the previous file is copied before a change; must lie outside the file's directory, type: path, required: true}
  owner: {description: owner of the written file, type: str}
  group: {description: group of the written file, type: str}
  mode: {description: mode of the written file, type: str}
  container: {description: "pod: container to edit (default: the first)", type: str}
  flags: {description: "pod: flag -> value to set (replacing the flag's value; null writes a bare flag)", type: dict, default: {}}
  defaults: {description: "pod: flag -> value set only when the flag is absent", type: dict, default: {}}
  merge: {description: "pod: flag -> items added to its comma-separated list (a key=value item replaces that key)", type: dict, default: {}}
  prune: {description: "pod, env: flag -> items (or keys) removed from its list; an emptied flag goes", type: dict, default: {}}
  remove: {description: "pod, env: flags removed", type: list, elements: str, default: []}
  volumes:
    description: "pod: hostPath volumes with their mounts, each {name, hostPath, mountPath, type, readOnly}; added once"
    type: list
    elements: dict
    default: []
  annotations: {description: "pod: metadata annotations to set (e.g. a checksum of the files the pod reads, so the kubelet restarts it when they change)", type: dict, default: {}}
  settings: {description: "config: keys deep-merged into the document", type: dict, default: {}}
  document: {description: "config: the whole document of a file casemate owns (created when missing, rewritten only when its data differ)", type: dict}
  header: {description: "config with document: comment lines written above it", type: str, default: ""}
  if_broken:
    description: >-
      fail (the default) fails the task when the file cannot be read or edited (it does not parse, is
      no Pod, or the change cannot be made to it); report returns the reason as `broken` instead and
      changes nothing, so the role can skip that one component and go on with the others.
    type: str
    choices: [fail, report]
    default: fail
  remove_keys: {description: "config: dotted keys removed", type: list, elements: str, default: []}
  kind: {description: "config: the kind the document must have", type: str}
  variables: {description: "env: the variables holding flags", type: list, elements: str, default: []}
"""

RETURN = r"""
backup_file: {description: the copy of the previous file (only after a real change), type: str}
previous_mode: {description: the file's mode before (absent when the file did not exist), type: str}
command: {description: "pod: the container's new command", type: list}
previous_command: {description: "pod: the container's command before", type: list}
changed_flags: {description: "pod: flags whose value changed, appeared or went", type: list}
flags: {description: "pod: flag -> value after the change; env: variable -> its flags after the change", type: dict}
expect_present: {description: "pod: the changed flags' items as written (a restarted process must carry them)", type: list}
expect_absent: {description: "pod: the flags removed", type: list}
probe: {description: "pod: scheme, host, port and path of the container's HTTP probe", type: dict}
config: {description: "config: the resulting document", type: dict}
checksum: {description: "config with document: sha256 of the file's text (to annotate the pod that reads it)", type: str}
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "format": {"type": "str", "choices": ["pod", "config", "env"], "default": "pod"},
            "backup_dir": {"type": "path", "required": True},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "mode": {"type": "str"},
            "container": {"type": "str"},
            "flags": {"type": "dict", "default": {}},
            "defaults": {"type": "dict", "default": {}},
            "merge": {"type": "dict", "default": {}},
            "prune": {"type": "dict", "default": {}},
            "remove": {"type": "list", "elements": "str", "default": []},
            "volumes": {"type": "list", "elements": "dict", "default": []},
            "annotations": {"type": "dict", "default": {}},
            "settings": {"type": "dict", "default": {}},
            "document": {"type": "dict"},
            "header": {"type": "str", "default": ""},
            "if_broken": {"type": "str", "choices": ["fail", "report"], "default": "fail"},
            "remove_keys": {"type": "list", "elements": "str", "default": []},
            "kind": {"type": "str"},
            "variables": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    module.fail_json(
        msg="kube_manifest runs as an action plugin on the controller; its action_plugins directory is not on the path"
    )


if __name__ == "__main__":
    main()
