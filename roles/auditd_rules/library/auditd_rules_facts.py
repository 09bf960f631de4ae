#!/usr/bin/python
"""Resolve the paths audit rules should watch, and read what audit can do here (read-only). The
role's one read: given the controls (docker_controls, host_controls) it also decides the rule files
of the controls the run selects (their tags, as Ansible records them in ansible_run_tags), says
whether anything is left to do (`act`), and refuses an unsupported system before anything
changes."""

DOCUMENTATION = r"""
module: auditd_rules_facts
short_description: Resolve watched paths and report the audit system's state (read-only)
options:
  targets: {description: "name -> one of path, unit (its unit file) or command (a binary; with documented: the benchmark's paths for it)", type: dict, required: true}
  rules_file: {description: the Docker rule file casemate owns, type: path, required: true}
  host_rules_file: {description: the host rule file casemate owns (identity, sudoers, runsc), type: path, required: false}
  loaded_rules: {description: rule lines casemate wants loaded; the answer says which the kernel lacks, type: list, elements: str, required: false}
  docker_controls: {description: "CIS Docker control id -> the targets it watches (the whole Docker rule file is of the selected ones)", type: dict, required: false}
  host_controls: {description: "host control id -> {targets, key, perms}: its rules (rules of other keys in the host file are kept)", type: dict, required: false}
  key: {description: the key of the Docker rules, type: str, default: docker}
  run_tags: {description: "the run's --tags (ansible_run_tags): the controls selected", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
  supported_os: {description: "os-release ID -> the VERSION_IDs the role supports; others are refused", type: dict, required: false}
"""

RETURN = r"""
paths: {description: "name -> resolved path, or empty when it does not exist here; for a command, the list of every path to watch (casemate_audit.binary_paths)", type: dict}
container: {description: the container technology the host runs in, or empty, type: str}
auditctl: {description: whether auditctl can talk to the kernel's audit system here, type: bool}
installed: {description: whether auditd's unit is known to systemd, type: bool}
active: {description: whether auditd.service is running, type: bool}
enabled: {description: the kernel audit system's "enabled" flag from auditctl -s (0, 1, or 2 = locked until reboot), or null, type: int}
missing: {description: those of loaded_rules the kernel has not loaded (auditctl -l), type: list}
os: {description: ID and VERSION_ID from /etc/os-release, type: dict}
current: {description: the content of casemate's Docker rule file, or empty, type: str}
host_current: {description: the content of casemate's host rule file, or empty, type: str}
packages_dry_run: {description: whether the package manager can dry-run here (apt needs python3-apt), type: bool}
selected: {description: "with the controls: those the run selects", type: list}
content: {description: "with the controls: the Docker rule file casemate wants", type: str}
host_content: {description: "with the controls: the host rule file casemate wants", type: str}
act: {description: "with the controls: whether anything is left to install, write, enable, start or load", type: bool}
"""

import json
import os
import re
import stat

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_audit import (
        audit_status,
        binary_paths,
        missing_rules,
    )
    from ansible.module_utils.casemate_host import (
        os_release,
        packages_dry_run,
        read_container,
        read_text,
        unit_properties,
    )
    from ansible.module_utils.casemate_selection import selected_controls
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_audit import (
        audit_status,
        binary_paths,
        missing_rules,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        os_release,
        packages_dry_run,
        read_container,
        read_text,
        unit_properties,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
    )

DOCKER_HEADER = (
    "# written by casemate: watch rules for Docker (CIS Docker 1.1.3-1.1.18); do not edit\n"
)
HOST_HEADER = (
    "# written by casemate: watch rules for users and groups, sudoers and runsc (casemate host "
    "2.2-2.4); do not edit\n"
)
HOST_IDS = ("cm_host_2_2", "cm_host_2_3", "cm_host_2_4")
RULE_MODE = 0o640


def unsupported(os_found, supported):
    """Why the role refuses this system, or None."""
    ident, version = os_found.get("id", ""), os_found.get("version_id", "")
    if version in supported.get(ident, []):
        return None
    return (
        "%s %s is not a supported system (auditd_rules_supported_os: %s): nothing was changed"
        % (
            ident or "unknown",
            version,
            json.dumps(supported),
        )
    )


def _paths(value):
    """A resolved target as a list of paths (a command has several; a missing one none)."""
    values = value if isinstance(value, list) else [value]
    return [v for v in values if v]


def _sorted_rules(lines):
    """Unique and sorted as Jinja's unique and sort filters do it: ignoring case."""
    seen, out = set(), []
    for line in lines:
        if line.lower() not in seen:
            seen.add(line.lower())
            out.append(line)
    return "".join(line + "\n" for line in sorted(out, key=str.lower))


def docker_rules(paths, controls, selected, key, current=""):
    """The Docker rule file: the watches of the selected controls' paths that exist here. A run
    that selects only some of the Docker controls (--tags, --skip-tags, a waiver) keeps the file's
    other watches as found: every Docker watch shares one key, so a line belongs to a selected
    control by its path. A run of every Docker control writes exactly its own watches."""
    watched = [
        p
        for ident in controls
        if ident in selected
        for name in controls[ident]
        for p in _paths(paths.get(name))
    ]
    kept = []
    if not all(ident in selected for ident in controls):
        mine = set(watched)
        kept = [
            line
            for line in (current or "").splitlines()
            if re.match(r"^-w \S", line) and line.split()[1] not in mine
        ]
    return DOCKER_HEADER + _sorted_rules(kept + ["-w %s -k %s" % (p, key) for p in watched])


def host_rules(paths, controls, selected, current):
    """The host rule file: the selected controls' rules, and the watches of the file as found
    whose keys none of them owns (a control not selected keeps its rules)."""
    lines, keys = [], []
    for ident, spec in controls.items():
        if ident not in selected:
            continue
        perms = " -p %s" % spec["perms"] if spec.get("perms") else ""
        for name in spec["targets"]:
            lines.extend("-w %s%s -k %s" % (p, perms, spec["key"]) for p in _paths(paths.get(name)))
        keys.append(spec["key"])
    kept = [line for line in (current or "").splitlines() if re.match("^-w ", line)]
    if keys:
        owned = re.compile(" -k (%s)$" % "|".join(re.escape(k) for k in keys))
        kept = [line for line in kept if not owned.search(line)]
    return HOST_HEADER + _sorted_rules(kept + lines)


def needs_write(path, content):
    """Whether copying `content` to `path` root:root 0640 would change anything."""
    try:
        st = os.lstat(path)
    except OSError:
        return True
    if (
        not stat.S_ISREG(st.st_mode)
        or stat.S_IMODE(st.st_mode) != RULE_MODE
        or (st.st_uid, st.st_gid) != (0, 0)
    ):
        return True
    return read_text(path) != content


def act_of(found, unit_file_state, want, selected):
    """Whether the role's steps after this read have anything to do: install auditd, write a rule
    file of the selected controls, enable or start auditd, or load rules the kernel lacks."""
    if not selected:
        return False
    docker = any(i not in HOST_IDS and i != "cm_host_2_1" for i in selected)
    host = any(i in HOST_IDS for i in selected)
    return bool(
        not found["installed"]
        or (docker and want["docker"])
        or (host and want["host"])
        or unit_file_state != "enabled"
        or (not found["container"] and not found["active"])
        or (
            found["auditctl"]
            and found["enabled"] != 2
            and not found["container"]
            and found["missing"]
        )
    )


def resolve(module, target):
    if target.get("path"):
        return target["path"] if os.path.exists(target["path"]) else ""
    if target.get("unit"):
        props, _ = unit_properties(target["unit"], ["FragmentPath"], module.run_command)
        path = props.get("FragmentPath", "")
        return path if path and os.path.exists(path) else ""
    return binary_paths(target.get("command", ""), target.get("documented") or [])


def main():
    module = AnsibleModule(
        argument_spec={
            "targets": {"type": "dict", "required": True},
            "rules_file": {"type": "path", "required": True},
            "host_rules_file": {"type": "path", "required": False},
            "loaded_rules": {"type": "list", "elements": "str", "required": False},
            "docker_controls": {"type": "dict", "required": False},
            "host_controls": {"type": "dict", "required": False},
            "key": {"type": "str", "default": "docker"},
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
            "supported_os": {"type": "dict", "required": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    release = os_release()
    if p["supported_os"] is not None:
        refused = unsupported(release, p["supported_os"])
        if refused:
            module.fail_json(msg=refused)
    paths = {name: resolve(module, t) for name, t in p["targets"].items()}
    plan = None
    if p["docker_controls"] is not None:
        docker, hosts = p["docker_controls"], p["host_controls"] or {}
        selected = selected_controls(
            [*docker, "cm_host_2_1", *hosts], p["run_tags"], p["skip_tags"]
        )
        host_current = (read_text(p["host_rules_file"]) or "") if p["host_rules_file"] else ""
        plan = {
            "selected": selected,
            "content": docker_rules(
                paths, docker, selected, p["key"], read_text(p["rules_file"]) or ""
            ),
            "host_content": host_rules(paths, hosts, selected, host_current),
        }
        p["loaded_rules"] = [
            line
            for line in (plan["content"] + "\n" + plan["host_content"]).split("\n")
            if line.startswith("-")
        ]
    container = read_container(module.run_command)
    auditctl, enabled, missing = False, None, []
    if module.get_bin_path("auditctl"):
        rc, status, _ = module.run_command(["auditctl", "-s"])
        auditctl = rc == 0
        enabled = audit_status(status) if auditctl else None
        if auditctl and module.params["loaded_rules"]:
            rc, loaded, _ = module.run_command(["auditctl", "-l"])
            missing = missing_rules(module.params["loaded_rules"], loaded if rc == 0 else "")
    unit, _ = unit_properties(
        "auditd.service", ["LoadState", "ActiveState", "UnitFileState"], module.run_command
    )
    current = read_text(module.params["rules_file"]) or ""
    host_current = (
        (read_text(module.params["host_rules_file"]) or "")
        if module.params["host_rules_file"]
        else ""
    )
    found = {
        "changed": False,
        "paths": paths,
        "container": container,
        "auditctl": auditctl,
        "installed": unit.get("LoadState") == "loaded",
        "active": unit.get("ActiveState") == "active",
        "enabled": enabled,
        "missing": missing,
        "os": release,
        "current": current,
        "host_current": host_current,
        "packages_dry_run": packages_dry_run(),
    }
    if plan is not None:
        want = {
            "docker": needs_write(p["rules_file"], plan["content"]),
            "host": bool(p["host_rules_file"])
            and needs_write(p["host_rules_file"], plan["host_content"]),
        }
        plan["act"] = act_of(found, unit.get("UnitFileState", ""), want, plan["selected"])
        found.update(plan)
    module.exit_json(**found)


if __name__ == "__main__":
    main()
