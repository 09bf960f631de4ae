#!/usr/bin/python
"""What AppArmor this host has: the parser, the kernel's state, the loaded profiles (read-only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: apparmor_facts
short_description: Report AppArmor's parser, kernel state and loaded profiles (read-only)
options:
  profile: {description: the profile casemate manages, type: str, required: true}
"""

RETURN = r"""
debian_family: {description: whether the host is Debian or Ubuntu (AppArmor's home), type: bool}
parser: {description: path of apparmor_parser, or empty, type: str}
container: {description: the container technology the host runs in, or empty, type: str}
kernel_enabled: {description: whether the running kernel has AppArmor on, type: bool}
loaded: {description: whether the profile is loaded in the kernel, type: bool}
packages_dry_run: {description: whether the package manager can dry-run here (apt needs python3-apt), type: bool}
"""

import importlib.util
import shutil

from ansible.module_utils.basic import AnsibleModule


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def main():
    module = AnsibleModule(
        argument_spec={"profile": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    release = {}
    for line in read("/etc/os-release").splitlines():
        key, _, value = line.partition("=")
        release[key] = value.strip('"')
    family = (release.get("ID", "") + " " + release.get("ID_LIKE", "")).split()
    rc, out, _ = module.run_command(["systemd-detect-virt", "--container"])
    container = out.strip() if rc == 0 and out.strip() != "none" else ""
    profiles = read("/sys/kernel/security/apparmor/profiles")
    module.exit_json(
        changed=False,
        debian_family=bool({"debian", "ubuntu"} & set(family)),
        parser=shutil.which("apparmor_parser") or "",
        container=container,
        kernel_enabled=read("/sys/module/apparmor/parameters/enabled").strip() == "Y",
        loaded=any(
            line.split(" ")[0] == module.params["profile"] for line in profiles.splitlines()
        ),
        packages_dry_run=not shutil.which("apt-get") or importlib.util.find_spec("apt") is not None,
    )


if __name__ == "__main__":
    main()
