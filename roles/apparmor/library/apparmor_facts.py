#!/usr/bin/python
"""What AppArmor this host has: the parser, the kernel's state, the loaded profiles (read-only)."""

DOCUMENTATION = r"""
module: apparmor_facts
short_description: Report AppArmor's parser, kernel state and loaded profiles (read-only)
options:
  profile: {description: the profile casemate manages, type: str, required: true}
"""

RETURN = r"""
debian_family: {description: whether the host is Debian or Ubuntu (AppArmor's home), type: bool}
parser: {description: path of apparmor_parser, or empty, type: str}
container: {description: "the container technology the host runs in, empty when none, 'unknown' when it cannot tell (counted as a container)", type: str}
kernel_enabled: {description: whether the running kernel has AppArmor on, type: bool}
loaded: {description: whether the profile is loaded in the kernel, type: bool}
packages_dry_run: {description: whether the package manager can dry-run here (apt needs python3-apt), type: bool}
"""

import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.casemate_host import (  # the host readers (role host_common)
    os_family,
    os_release,
    packages_dry_run,
    read_container,
    read_text,
)


def main():
    module = AnsibleModule(
        argument_spec={"profile": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    profiles = read_text("/sys/kernel/security/apparmor/profiles") or ""
    module.exit_json(
        changed=False,
        debian_family=bool({"debian", "ubuntu"} & os_family(os_release())),
        parser=shutil.which("apparmor_parser") or "",
        container=read_container(module.run_command),
        kernel_enabled=(read_text("/sys/module/apparmor/parameters/enabled") or "").strip() == "Y",
        loaded=any(
            line.split(" ")[0] == module.params["profile"] for line in profiles.splitlines()
        ),
        packages_dry_run=packages_dry_run(),
    )


if __name__ == "__main__":
    main()
