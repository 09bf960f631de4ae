#!/usr/bin/python
"""Is casemate's probe image in the local Docker daemon, and in which recipe version (read-only)."""

DOCUMENTATION = r"""
module: docker_probe_facts
short_description: Look for casemate's probe image in the local Docker daemon (read-only)
options:
  image: {description: the probe image's name, type: str, required: true}
"""

RETURN = r"""
docker: {description: whether a docker client is installed, type: bool}
version: {description: the image's io.casemate.probe label, or empty when the image is missing, type: str}
busybox: {description: path of a static busybox, or empty, type: str}
packages_dry_run: {description: whether the package manager can dry-run here (apt needs python3-apt), type: bool}
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import packages_dry_run
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        packages_dry_run,
    )


def main():
    module = AnsibleModule(
        argument_spec={"image": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    docker = shutil.which("docker") is not None
    version = ""
    if docker:
        rc, out, _ = module.run_command(
            [
                "docker",
                "image",
                "inspect",
                "--format",
                '{{index .Config.Labels "io.casemate.probe"}}',
                module.params["image"],
            ]
        )
        version = out.strip() if rc == 0 and out.strip() != "<no value>" else ""
    module.exit_json(
        changed=False,
        docker=docker,
        version=version,
        busybox=next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), ""),
        packages_dry_run=packages_dry_run(),
    )


if __name__ == "__main__":
    main()
