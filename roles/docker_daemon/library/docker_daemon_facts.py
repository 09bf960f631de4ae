#!/usr/bin/python
"""Read dockerd's configuration file and the running daemon's command line in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: docker_daemon_facts
short_description: Read daemon.json and the running dockerd command line (read-only)
description:
  - Returns the parsed daemon.json, the command line of the service's main process (asked of
    systemd, never looked up by process name), and which of the given daemon.json keys the
    command line already sets as flags.
  - Fails with one line when daemon.json is not a valid JSON object, so nothing is changed.
options:
  path: {description: daemon.json path, type: path, required: true}
  service: {description: systemd unit of the daemon, type: str, default: docker}
  keys: {description: daemon.json keys to look for among the flags, type: list, elements: str, default: []}
  flag_names:
    description:
      - daemon.json key -> the dockerd flags that set it, where they are not simply --KEY or, for
        a plural key, --KEY without its final s.
    type: dict
    default: {}
"""

RETURN = r"""
config: {description: parsed daemon.json ({} when absent or empty), type: dict}
exists: {description: whether daemon.json exists, type: bool}
argv: {description: dockerd command line ([] when not running), type: list}
flag_values: {description: key -> values the flags give it, for the keys set by flags, type: dict}
flag_args: {description: key -> the flags as written on the command line, type: dict}
active: {description: whether the service is active, type: bool}
installed: {description: whether systemd knows the service (its unit is loaded), type: bool}
selinux_host: {description: whether the host is of the RHEL family (SELinux's home), type: bool}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule


def systemd_props(module, unit, props):
    rc, out, _ = module.run_command(["systemctl", "show", unit, "-p", ",".join(props)])
    if rc != 0:
        return {}
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def main_argv(module, service):
    props = systemd_props(module, service, ["MainPID", "ActiveState", "LoadState"])
    pid = props.get("MainPID", "0")
    argv = []
    if pid.isdigit() and pid != "0":
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                argv = [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]
        except OSError:
            argv = []
    return argv, props.get("ActiveState") == "active", props.get("LoadState") == "loaded"


def parse_flags(argv):
    """(flag, value, as written) for every flag: --name=v, --name v, --name, -Hv, -H v, -H=v."""
    found = []
    args = argv[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            continue
        if arg.startswith("--"):
            name, eq, value = arg.partition("=")
        elif len(arg) > 2:
            name, value, eq = arg[:2], arg[2:].lstrip("="), "="
        else:
            name, value, eq = arg, "", ""
        written = arg
        if not eq:
            if i < len(args) and not args[i].startswith("-"):
                value, written = args[i], arg + " " + args[i]
                i += 1
            else:
                value = "true"
        found.append((name, value, written))
    return found


def names_for(key, overrides):
    if key in overrides:
        return list(overrides[key])
    names = ["--" + key]
    if key.endswith("s"):
        names.append("--" + key[:-1])
    return names


def os_family():
    release = {}
    try:
        with open("/etc/os-release") as handle:
            for line in handle:
                name, _, value = line.strip().partition("=")
                release[name] = value.strip('"')
    except OSError:
        pass
    return set((release.get("ID", "") + " " + release.get("ID_LIKE", "")).split())


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "service": {"type": "str", "default": "docker"},
            "keys": {"type": "list", "elements": "str", "default": []},
            "flag_names": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    config, exists = {}, os.path.exists(path)
    if exists:
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError as exc:
            module.fail_json(msg="cannot read %s: %s; refusing to change it" % (path, exc.strerror))
        if text.strip():
            try:
                config = json.loads(text)
            except ValueError as exc:
                module.fail_json(msg="%s is not valid JSON (%s); refusing to change it" % (path, exc))
            if not isinstance(config, dict):
                module.fail_json(
                    msg="%s holds a JSON %s, not an object; refusing to change it"
                    % (path, type(config).__name__)
                )
    argv, active, installed = main_argv(module, module.params["service"])
    flags = parse_flags(argv)
    values, written = {}, {}
    for key in module.params["keys"]:
        names = names_for(key, module.params["flag_names"])
        hits = [(value, text) for name, value, text in flags if name in names]
        if hits:
            values[key] = [value for value, _ in hits]
            written[key] = [text for _, text in hits]
    module.exit_json(
        changed=False,
        config=config,
        exists=exists,
        argv=argv,
        active=active,
        installed=installed,
        selinux_host=bool({"rhel", "fedora", "centos"} & os_family()),
        flag_values=values,
        flag_args=written,
    )


if __name__ == "__main__":
    main()
