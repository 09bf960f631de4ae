#!/usr/bin/python
"""Read what the Kubernetes roles need to know about a node, in one call (read-only)."""

DOCUMENTATION = r"""
module: kube_node_facts
short_description: Processes, systemd units, sysctls and file modes of a Kubernetes node (read-only)
description:
  - Finds the running process of each named component (by the basename of argv[0], in any PID
    namespace; when several match, the one sharing most flags with the given command line) and of
    each service (the main process of its systemd unit, only while the unit is active), reads systemd unit properties,
    kernel sysctls, whether the host is a container, and which files have mode bits beyond a limit.
  - Standard library only; works with any python3 >= 3.6 on the node.
options:
  processes:
    description: component name -> the command line it is expected to run (a hint to pick among several processes).
    type: dict
    default: {}
  services:
    description: "component name -> its systemd unit: the process is the unit's MainPID while the unit is active, never a same-named process elsewhere (e.g. a kubelet in a pod)."
    type: dict
    default: {}
  units: {description: systemd units to describe, type: list, elements: str, default: []}
  sysctls: {description: sysctl names (dotted) to read, type: list, elements: str, default: []}
  modes:
    description: "list of {id, glob or globs, max}: regular files matching glob (or any of globs, recursive ** allowed) whose mode has bits outside max (octal string)."
    type: list
    elements: dict
    default: []
  owners:
    description: "list of {id, glob or globs, owner, group}: files and directories matching that another user or group owns."
    type: list
    elements: dict
    default: []
  verify:
    description: "list of {cert, ca}: whether openssl verifies cert against ca."
    type: list
    elements: dict
    default: []
  exclude:
    description: files left out of modes and owners (a broken file casemate leaves exactly as it is).
    type: list
    elements: path
    default: []
  present:
    description: "paths whose existence is asked (as stat sees it: a dangling symlink exists); every EnvironmentFile of the described units is asked too."
    type: list
    elements: path
    default: []
  read:
    description: "files read whole, for a role that decides on the controller what its editor would write (casemate_host.exact_text)."
    type: list
    elements: path
    default: []
  directories:
    description: "directory -> mode (octal string): whether each is a directory root:root with exactly that mode, as a file step with state=directory leaves it (casemate_host.written_as)."
    type: dict
    default: {}
  loaded:
    description: "systemd unit -> the config files it reads: whether its running main process has loaded them (started after their last write, or a reload casemate recorded)."
    type: dict
    default: {}
"""

RETURN = r"""
processes: {description: "name -> {running, pid, start, argv}, for processes and services", type: dict}
units: {description: "name -> {load_state, active_state, main_pid, fragment_path, drop_in_paths, environment_files}", type: dict}
sysctls: {description: name -> value (null when unreadable), type: dict}
loose_modes: {description: "list of {id, path, mode, fixed}: files with mode bits beyond their limit and the mode they should get (bits removed, never added)", type: list}
wrong_owners: {description: "list of {id, path, owner, group}: paths owned by someone else, with their current owner and group", type: list}
verified: {description: "list of {cert, ca, ok, reason}", type: list}
container: {description: "the container technology the host runs in, empty when none, 'unknown' when it cannot tell (counted as a container)", type: str}
present: {description: "the paths of present (and the units' environment files) that exist, in that order", type: list}
read: {description: "path -> {exists, text}: text null where the file exists but cannot be read as UTF-8", type: dict}
directories: {description: "directory -> whether it is as a state=directory step root:root with the mode would leave it", type: dict}
loaded: {description: "unit -> {loaded (true, false, or null when the unit is not running), why, pid}", type: dict}
"""

import glob
import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        config_loaded,
        environment_files,
        exact_text,
        parse_show,
        read_container,
        sysctl_value,
        systemctl_show,
        written_as,
    )
    from ansible.module_utils.kube_process import pick, processes_named, unit_process
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        config_loaded,
        environment_files,
        exact_text,
        parse_show,
        read_container,
        sysctl_value,
        systemctl_show,
        written_as,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.kube_process import (
        pick,
        processes_named,
        unit_process,
    )

NOT_RUNNING = {"running": False, "pid": 0, "start": 0, "argv": []}


def find_process(name, hint):
    chosen = pick(processes_named(name), hint)
    if chosen is None:
        return dict(NOT_RUNNING)
    return dict(chosen, running=True)


def service_process(module, unit_name):
    chosen = unit_process(unit(module, unit_name))
    if chosen is None:
        return dict(NOT_RUNNING)
    return dict(chosen, running=True)


def unit(module, name):
    """What systemd says of a unit (empty values when it cannot tell)."""
    props = [
        "LoadState",
        "ActiveState",
        "MainPID",
        "FragmentPath",
        "DropInPaths",
        "EnvironmentFiles",
    ]
    text, _ = systemctl_show(name, props, module.run_command)
    found = parse_show(text or "")
    pid = found.get("MainPID", "")
    return {
        "load_state": found.get("LoadState", ""),
        "active_state": found.get("ActiveState", ""),
        "main_pid": int(pid) if pid.isdigit() else 0,
        "fragment_path": found.get("FragmentPath", ""),
        "drop_in_paths": found.get("DropInPaths", "").split(),
        "environment_files": environment_files(text or ""),
    }


def paths_of(spec, exclude=()):
    """Every existing path matching the spec's `glob` (a string) or `globs` (a list), but those in
    `exclude`."""
    patterns = spec.get("globs") or []
    if spec.get("glob"):
        patterns = [spec["glob"], *patterns]
    found = set()
    for pattern in patterns:
        found.update(glob.glob(pattern, recursive=True))
    return sorted(found - set(exclude))


def loose_modes(specs, exclude=()):
    found = []
    for spec in specs:
        limit = int(str(spec.get("max", "0644")), 8)
        for path in paths_of(spec, exclude):
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            mode = stat.S_IMODE(st.st_mode)
            if mode & ~limit:
                found.append({"id": spec.get("id", ""), "path": path, "mode": "%04o" % mode,
                              "fixed": "%04o" % (mode & limit)})  # fmt: skip
    return found


def name_of(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def wrong_owners(specs, exclude=()):
    found = []
    for spec in specs:
        for path in paths_of(spec, exclude):
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            owner, group = name_of(pwd.getpwuid, st.st_uid), name_of(grp.getgrgid, st.st_gid)
            if (owner, group) != (spec.get("owner", "root"), spec.get("group", "root")):
                found.append(
                    {"id": spec.get("id", ""), "path": path, "owner": owner, "group": group}
                )
    return found


def verify(module, specs):
    found = []
    for spec in specs:
        cert, ca = spec.get("cert", ""), spec.get("ca", "")
        if not (os.path.isfile(cert) and os.path.isfile(ca)):
            found.append({"cert": cert, "ca": ca, "ok": False, "reason": "missing"})
            continue
        rc, out, err = module.run_command(["openssl", "verify", "-CAfile", ca, cert])
        reason = (err or out).strip().splitlines()[-1:] if rc != 0 else []
        found.append({"cert": cert, "ca": ca, "ok": rc == 0, "reason": " ".join(reason)})
    return found


def main():
    module = AnsibleModule(
        argument_spec={
            "processes": {"type": "dict", "default": {}},
            "services": {"type": "dict", "default": {}},
            "units": {"type": "list", "elements": "str", "default": []},
            "sysctls": {"type": "list", "elements": "str", "default": []},
            "modes": {"type": "list", "elements": "dict", "default": []},
            "owners": {"type": "list", "elements": "dict", "default": []},
            "verify": {"type": "list", "elements": "dict", "default": []},
            "exclude": {"type": "list", "elements": "path", "default": []},
            "loaded": {"type": "dict", "default": {}},
            "present": {"type": "list", "elements": "path", "default": []},
            "read": {"type": "list", "elements": "path", "default": []},
            "directories": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    processes = {n: find_process(n, h) for n, h in p["processes"].items()}
    processes.update({n: service_process(module, u) for n, u in p["services"].items()})
    units = {n: unit(module, n) for n in p["units"]}
    asked = list(p["present"]) + [f for u in units.values() for f in u["environment_files"]]
    module.exit_json(
        changed=False,
        processes=processes,
        units=units,
        present=[f for i, f in enumerate(asked) if f not in asked[:i] and os.path.lexists(f)],
        sysctls={n: sysctl_value(n) for n in p["sysctls"]},
        loose_modes=loose_modes(p["modes"], p["exclude"]),
        wrong_owners=wrong_owners(p["owners"], p["exclude"]),
        verified=verify(module, p["verify"]),
        container=read_container(module.run_command),
        loaded={u: config_loaded(module, u, list(paths)) for u, paths in p["loaded"].items()},
        read={path: exact_text(path) for path in p["read"]},
        directories={
            d: written_as(d, None, int(str(m), 8), "directory") for d, m in p["directories"].items()
        },
    )


if __name__ == "__main__":
    main()
