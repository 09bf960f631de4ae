#!/usr/bin/python
"""Read dockerd's configuration file and the running daemon's command line in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: docker_daemon_facts
short_description: Read daemon.json and the running dockerd command line (read-only)
description:
  - Returns the parsed daemon.json, the command line of the docker service's main process,
    and which managed keys are already set there as flags.
  - Fails with one line when daemon.json is not a valid JSON object, so nothing is changed.
options:
  path: {description: daemon.json path, type: path, required: true}
  service: {description: systemd unit of the daemon, type: str, default: docker}
  flags: {description: daemon.json key -> list of dockerd flags that set it, type: dict, default: {}}
"""

RETURN = r"""
config: {description: parsed daemon.json ({} when absent or empty), type: dict}
exists: {description: whether daemon.json exists, type: bool}
argv: {description: dockerd command line ([] when not running), type: list}
flag_keys: {description: managed keys already set by a flag, type: list}
flag_values: {description: key -> list of values given by flags, type: dict}
active: {description: whether the service is active, type: bool}
installed: {description: whether systemd knows the service (its unit is loaded), type: bool}
selinux_host: {description: whether the host is of the RHEL family (SELinux's home), type: bool}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule


def main_argv(module, service):
    rc, out, _ = module.run_command(
        ["systemctl", "show", service, "-p", "MainPID,ActiveState,LoadState"]
    )
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line) if rc == 0 else {}
    pid = props.get("MainPID", "0")
    argv = []
    if pid.isdigit() and pid != "0":
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                argv = [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]
        except OSError:
            argv = []
    return argv, props.get("ActiveState") == "active", props.get("LoadState") == "loaded"


def flag_values(argv, names):
    values = []
    args = argv[1:]
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in names:
            values.append(
                value
                if eq
                else (
                    args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("-") else "true"
                )
            )
    return values


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "service": {"type": "str", "default": "docker"},
            "flags": {"type": "dict", "default": {}},
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
            module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror))
        if text.strip():
            try:
                config = json.loads(text)
            except ValueError as exc:
                module.fail_json(
                    msg="%s is not valid JSON (%s); refusing to change it" % (path, exc)
                )
            if not isinstance(config, dict):
                module.fail_json(msg="%s is not a JSON object; refusing to change it" % path)
    argv, active, installed = main_argv(module, module.params["service"])
    release = {}
    try:
        with open("/etc/os-release") as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                release[key] = value.strip('"')
    except OSError:
        pass
    family = set((release.get("ID", "") + " " + release.get("ID_LIKE", "")).split())
    found = {}
    for key, names in module.params["flags"].items():
        values = flag_values(argv, names)
        if values:
            found[key] = values
    module.exit_json(
        changed=False,
        config=config,
        exists=exists,
        argv=argv,
        active=active,
        installed=installed,
        selinux_host=bool({"rhel", "fedora", "centos"} & family),
        flag_keys=sorted(found),
        flag_values=found,
    )


if __name__ == "__main__":
    main()
