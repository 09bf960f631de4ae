#!/usr/bin/python
"""Find runsc, its containerd shim and containerd's config, and whether the running containerd has
loaded that config (read-only)."""

DOCUMENTATION = r"""
module: gvisor_facts
short_description: Find runsc, its containerd shim and containerd's config (read-only)
options:
  runsc_path: {description: where runsc should be, type: path, required: true}
  containerd_config: {description: containerd's config file, type: path, required: true}
  containerd_service: {description: containerd's systemd unit, type: str, default: containerd}
"""

RETURN = r"""
runsc_version: {description: first line of runsc --version, or empty when runsc is missing, type: str}
shim: {description: path of containerd-shim-runsc-v1, or empty, type: str}
containerd_config_exists: {description: whether containerd's config file exists, type: bool}
containerd_runsc: {description: runtime_type and BinaryName of containerd's runsc runtime, or empty strings, type: dict}
containerd_runtimes: {description: names of the CRI runtimes the config defines, type: list}
containerd_default_runtime: {description: "the CRI's default_runtime_name (runc when unset)", type: str}
containerd_loaded: {description: "{loaded, why, pid}: whether the running containerd started after its config was last written (None: not running)", type: dict}
containerd_cri: {description: "status of containerd's CRI plugin (ctr plugins ls: ok, error, skip) or empty when unknown", type: str}
packages_dry_run: {description: whether the package manager can dry-run here (apt needs python3-apt), type: bool}
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        config_loaded,
        packages_dry_run,
    )
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        config_loaded,
        packages_dry_run,
    )

CRI = 'plugins."io.containerd.grpc.v1.cri".containerd'
SECTION = "[" + CRI + ".runtimes.runsc"
RUNTIMES = "[" + CRI + ".runtimes."


def containerd_config(path):
    """What casemate needs of containerd's config, read line by line (the tables casemate writes
    are flat, and this also works where python has no tomllib): the runsc runtime's runtime_type
    and BinaryName, the names of every CRI runtime table, and default_runtime_name."""
    found = {"runtime_type": "", "BinaryName": ""}
    runtimes, default, table = [], "runc", ""
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError:
        lines = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            table = line
            if table.startswith(RUNTIMES) and table.endswith("]"):
                name = table[len(RUNTIMES) : -1]
                if "." not in name and name not in runtimes:
                    runtimes.append(name)
            continue
        key, eq, value = line.partition("=")
        if not eq:
            continue
        key, value = key.strip(), value.strip().strip('"')
        if table == SECTION + "]" and key == "runtime_type":
            found["runtime_type"] = value
        if table == SECTION + ".options]" and key == "BinaryName":
            found["BinaryName"] = value
        if table == "[" + CRI + "]" and key == "default_runtime_name":
            default = value
    return {"runsc": found, "runtimes": runtimes, "default": default}


def containerd_runsc(path):
    """runtime_type and BinaryName of the runsc runtime."""
    return containerd_config(path)["runsc"]


def cri_status(text):
    """The status column of the CRI plugin in `ctr plugins ls`, or '' when it is not listed."""
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 4 and words[0] == "io.containerd.grpc.v1" and words[1] == "cri":
            return words[-1]
    return ""


def main():
    module = AnsibleModule(
        argument_spec={
            "runsc_path": {"type": "path", "required": True},
            "containerd_config": {"type": "path", "required": True},
            "containerd_service": {"type": "str", "default": "containerd"},
        },
        supports_check_mode=True,
    )
    p = module.params
    version = ""
    if os.access(p["runsc_path"], os.X_OK):
        rc, out, _ = module.run_command([p["runsc_path"], "--version"])
        version = out.splitlines()[0] if rc == 0 and out else ""
    # apt can only dry-run with python3-apt; other package managers always can
    dry_run = packages_dry_run()
    exists = os.path.exists(p["containerd_config"])
    config = containerd_config(p["containerd_config"])
    # containerd reads its config only when it starts: its main process's start against the file's
    # last write is exact (an interrupted run may have written the file and never restarted it)
    loaded = config_loaded(module, p["containerd_service"], [p["containerd_config"]])
    cri = ""
    if loaded["loaded"] is not None and shutil.which("ctr"):
        rc, out, _ = module.run_command(["ctr", "plugins", "ls"])
        cri = cri_status(out) if rc == 0 else ""
    module.exit_json(
        changed=False,
        runsc_version=version,
        shim=shutil.which("containerd-shim-runsc-v1") or "",
        containerd_config_exists=exists,
        containerd_runsc=config["runsc"],
        containerd_runtimes=config["runtimes"],
        containerd_default_runtime=config["default"],
        containerd_loaded=loaded,
        containerd_cri=cri,
        packages_dry_run=dry_run,
    )


if __name__ == "__main__":
    main()
