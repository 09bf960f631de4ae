#!/usr/bin/python
"""What AppArmor this host has: the parser, its packages, the kernel's state, the loaded profiles,
and whether casemate's profile file already holds what the role writes (read-only)."""

DOCUMENTATION = r"""
module: apparmor_facts
short_description: Report AppArmor's parser, kernel state and loaded profiles (read-only)
options:
  profile: {description: the profile casemate manages, type: str, required: true}
  packages: {description: the packages that bring AppArmor and its parser, type: list, elements: str, default: []}
  profile_path: {description: the file of casemate's profile, type: path}
  profile_content: {description: what the role writes there (the rendered template), type: str}
"""

RETURN = r"""
debian_family: {description: whether the host is Debian or Ubuntu (AppArmor's home), type: bool}
parser: {description: path of apparmor_parser, or empty, type: str}
container: {description: "the container technology the host runs in, empty when none, 'unknown' when it cannot tell (counted as a container)", type: str}
kernel_enabled: {description: whether the running kernel has AppArmor on, type: bool}
loaded: {description: whether the profile is loaded in the kernel, type: bool}
packages_dry_run: {description: whether the package manager can dry-run here (apt needs python3-apt), type: bool}
missing_packages: {description: "the packages not installed, or whose state cannot be told (the role installs them)", type: list}
profile_same: {description: whether profile_path holds profile_content byte for byte, type: bool}
profile_current: {description: "whether profile_path holds profile_content and is root:root 0644, as the role writes it", type: bool}
"""

import os
import shutil
import stat

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        os_family,
        os_release,
        package_state,
        packages_dry_run,
        read_container,
        read_text,
    )
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        os_family,
        os_release,
        package_state,
        packages_dry_run,
        read_container,
        read_text,
    )


def missing_packages(names, state):
    """The packages `state` (package_state) does not show installed; one it cannot tell about
    counts as missing, so that the package module decides."""
    return [n for n in names if not state(n).get("installed")]


def same_content(path, content):
    """Whether the file at `path` holds `content` exactly (False when it cannot be read)."""
    if not path or content is None:
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read() == content.encode("utf-8")
    except OSError:
        return False


def written_as_the_role_writes(path):
    """Whether the file at `path` is a regular file owned root:root with mode 0644."""
    try:
        st = os.lstat(path)
    except (OSError, TypeError):
        return False
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_uid == 0
        and st.st_gid == 0
        and stat.S_IMODE(st.st_mode) == 0o644
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "profile": {"type": "str", "required": True},
            "packages": {"type": "list", "elements": "str", "default": []},
            "profile_path": {"type": "path"},
            "profile_content": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p = module.params
    profiles = read_text("/sys/kernel/security/apparmor/profiles") or ""
    same = same_content(p["profile_path"], p["profile_content"])
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
        missing_packages=missing_packages(
            p["packages"], lambda name: package_state(name, module.run_command)
        ),
        profile_same=same,
        profile_current=same and written_as_the_role_writes(p["profile_path"]),
    )


if __name__ == "__main__":
    main()
