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
  run_tags: {description: "the run's --tags (ansible_run_tags): the controls selected", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
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
selected: {description: "the role's controls the run selects", type: list}
install: {description: "cm_rt_3_1: run the package step", type: bool}
profile: {description: "cm_rt_3_2 cm_rt_3_3: take the write-and-load steps", type: bool}
notes: {description: "what the role leaves alone here and why, one line each (printed when the role has something to do)", type: list}
act: {description: "whether the change steps are to run (false on a compliant host)", type: bool}
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
        same_content,
    )
    from ansible.module_utils.casemate_selection import selected_controls
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        os_family,
        os_release,
        package_state,
        packages_dry_run,
        read_container,
        read_text,
        same_content,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
    )

CONTROLS = ["cm_rt_3_1", "cm_rt_3_2", "cm_rt_3_3"]


def missing_packages(names, state):
    """The packages `state` (package_state) does not show installed; one it cannot tell about
    counts as missing, so that the package module decides."""
    return [n for n in names if not state(n).get("installed")]


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


def decide(found, selected, check_mode):
    """{install, profile, notes, act} for a host `found` shows (pure). A host that is not Debian
    or Ubuntu only gets the note that AppArmor is left alone; one where AppArmor cannot be loaded
    (a container, a kernel without it) gets the profile written and syntax-checked, and the note
    why it is not loaded."""
    notes = []
    if not found["debian_family"]:
        notes.append(
            "not a Debian or Ubuntu host: AppArmor is left alone (RHEL-family hosts use SELinux)"
        )
        return {"install": False, "profile": False, "notes": notes, "act": True}
    install = (
        "cm_rt_3_1" in selected
        and bool(found["missing_packages"])
        and (not check_mode or found["packages_dry_run"])
    )
    loadable = found["kernel_enabled"] and not found["container"]
    profile = bool({"cm_rt_3_2", "cm_rt_3_3"} & set(selected)) and (
        not found["profile_current"] or (not found["loaded"] and loadable)
    )
    if "cm_rt_3_3" in selected and not loadable:
        notes.append(
            "the profile is installed and syntax-checked but not loaded: "
            + (
                "this host is a %s container and AppArmor belongs to the machine"
                % found["container"]
                if found["container"]
                else "the running kernel has no AppArmor"
            )
        )
    return {"install": install, "profile": profile, "notes": notes, "act": install or profile}


def main():
    module = AnsibleModule(
        argument_spec={
            "profile": {"type": "str", "required": True},
            "packages": {"type": "list", "elements": "str", "default": []},
            "profile_path": {"type": "path"},
            "profile_content": {"type": "str"},
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    profiles = read_text("/sys/kernel/security/apparmor/profiles") or ""
    same = same_content(p["profile_path"], p["profile_content"])
    found = {
        "debian_family": bool({"debian", "ubuntu"} & os_family(os_release())),
        "parser": shutil.which("apparmor_parser") or "",
        "container": read_container(module.run_command),
        "kernel_enabled": (read_text("/sys/module/apparmor/parameters/enabled") or "").strip()
        == "Y",
        "loaded": any(
            line.split(" ")[0] == module.params["profile"] for line in profiles.splitlines()
        ),
        "packages_dry_run": packages_dry_run(),
        "missing_packages": missing_packages(
            p["packages"], lambda name: package_state(name, module.run_command)
        ),
        "profile_same": same,
        "profile_current": same and written_as_the_role_writes(p["profile_path"]),
    }
    selected = selected_controls(CONTROLS, p["run_tags"], p["skip_tags"])
    found.update(decide(found, selected, module.check_mode))
    module.exit_json(changed=False, selected=selected, **found)


if __name__ == "__main__":
    main()
