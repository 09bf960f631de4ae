#!/usr/bin/python
"""Resolve the files of CIS Docker section 3, say which owners and modes need to change, and plan
the changes of the controls the run selects (the role's one read; it decides every control)."""

DOCUMENTATION = r"""
module: docker_files_facts
short_description: Find the Docker files of CIS section 3 and compare owners and modes (read-only)
description:
  - Each target names a file by path, glob, systemd unit (its FragmentPath) or a daemon setting
    (the dockerd flag if given, else the daemon.json key). Missing files are left out.
  - Modes are limits ("or stricter"); the wanted mode only removes bits from the current one,
    unless the target asks for an exact mode.
options:
  targets: {description: list of targets (name, one of path/glob/unit/ref, owner, group, max_mode or mode), type: list, elements: dict, required: true}
  config_path: {description: daemon.json, type: path, default: /etc/docker/daemon.json}
  service: {description: systemd unit of dockerd, type: str, default: docker.service}
  socket_unit: {description: socket unit whose settings are compared, type: str, default: docker.socket}
  socket_group: {description: group the socket unit should give the socket, type: str, default: docker}
  socket_max_mode: {description: loosest mode the socket unit may give the socket, type: str, default: "0660"}
  controls: {description: "control id -> the owners or modes it fixes, as TARGET:owner or TARGET:mode", type: dict, default: {}}
  run_tags: {description: "the run's --tags (ansible_run_tags): the controls selected", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
"""

RETURN = r"""
files: {description: one entry per existing file of every target, with current and wanted owner/mode, type: list}
socket_unit: {description: SocketUser, SocketGroup, SocketMode and LoadState of the socket unit, type: dict}
socket_unit_ok: {description: whether the socket unit already creates the socket as wanted (true when not loaded), type: bool}
selected: {description: the controls of `controls` the run selects, type: list}
plan: {description: "changes (the files entries to change, with fix_owner and fix_mode) and previous (path, user, group, mode of each, for the backup)", type: dict}
"""

import glob
import grp
import json
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        argv_of,
        flag_value,
        unit_properties,
    )
    from ansible.module_utils.casemate_selection import selected_controls
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        argv_of,
        flag_value,
        unit_properties,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
    )


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def systemd_props(module, unit, props):
    return unit_properties(unit, props, module.run_command)[0]


def dockerd_argv(module, service):
    pid = systemd_props(module, service, ["MainPID"]).get("MainPID", "0")
    if not pid.isdigit() or pid == "0":
        return []
    return argv_of(pid)


def configured_path(argv, config, key):
    """The path a daemon setting names: its flag on dockerd's command line (the last one given,
    as dockerd reads it and as verify's ref_stat does), else daemon.json's key."""
    return flag_value(argv, "--" + key) or str(config.get(key) or "")


def resolve(module, target, argv, config):
    if target.get("path"):
        return [target["path"]]
    if target.get("glob"):
        return sorted(glob.glob(target["glob"], recursive=True))
    if target.get("unit"):
        frag = systemd_props(module, target["unit"], ["FragmentPath"]).get("FragmentPath", "")
        return [frag] if frag else []
    if target.get("ref"):
        path = configured_path(argv, config, target["ref"])
        return [path] if path else []
    module.fail_json(msg="target %s names no file" % target.get("name"))
    return []


def judge(target, path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if target.get("mode"):
        want_mode = int(str(target["mode"]), 8)
    else:
        want_mode = mode & int(str(target["max_mode"]), 8)
    user, group = _name(pwd.getpwuid, st.st_uid), _name(grp.getgrgid, st.st_gid)
    want_group = target.get("group") or group
    return {
        "target": target["name"],
        "path": path,
        "user": user,
        "group": group,
        "mode": "%04o" % mode,
        "want_owner": target["owner"],
        "want_group": want_group,
        "want_mode": "%04o" % want_mode,
        "owner_ok": user == target["owner"] and group == want_group,
        "mode_ok": mode == want_mode,
    }


def plan(files, controls, selected):
    """The owners and modes to change: those a selected control fixes and the host has wrong."""
    wanted = set()
    for ident in selected:
        wanted.update(controls.get(ident) or [])
    changes, previous = [], []
    for f in files:
        fix_owner = not f["owner_ok"] and f["target"] + ":owner" in wanted
        fix_mode = not f["mode_ok"] and f["target"] + ":mode" in wanted
        if fix_owner or fix_mode:
            changes.append(dict(f, fix_owner=fix_owner, fix_mode=fix_mode))
            previous.append({k: f[k] for k in ("path", "user", "group", "mode")})
    return {"changes": changes, "previous": previous}


def main():
    module = AnsibleModule(
        argument_spec={
            "targets": {"type": "list", "elements": "dict", "required": True},
            "config_path": {"type": "path", "default": "/etc/docker/daemon.json"},
            "service": {"type": "str", "default": "docker.service"},
            "socket_unit": {"type": "str", "default": "docker.socket"},
            "socket_group": {"type": "str", "default": "docker"},
            "socket_max_mode": {"type": "str", "default": "0660"},
            "controls": {"type": "dict", "default": {}},
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    config = {}
    try:
        with open(module.params["config_path"]) as handle:
            text = handle.read()
        config = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    argv = dockerd_argv(module, module.params["service"])
    files = []
    for target in module.params["targets"]:
        for path in resolve(module, target, argv, config):
            found = judge(target, path)
            if found is not None:
                files.append(found)
    socket_unit = systemd_props(
        module,
        module.params["socket_unit"],
        ["SocketUser", "SocketGroup", "SocketMode", "LoadState"],
    )
    ok = True
    if socket_unit.get("LoadState") == "loaded":
        mode = socket_unit.get("SocketMode") or "0666"
        ok = (
            socket_unit.get("SocketUser", "") in ("", "root")
            and socket_unit.get("SocketGroup", "") == module.params["socket_group"]
            and int(mode, 8) & ~int(module.params["socket_max_mode"], 8) == 0
        )
    controls = module.params["controls"]
    selected = selected_controls(
        sorted(controls), module.params["run_tags"], module.params["skip_tags"]
    )
    module.exit_json(
        changed=False,
        files=files,
        socket_unit=socket_unit,
        socket_unit_ok=ok,
        selected=selected,
        plan=plan(files, controls, selected),
    )


if __name__ == "__main__":
    main()
