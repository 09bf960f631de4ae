#!/usr/bin/python
"""Find runsc, its containerd shim and containerd's config (read-only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: gvisor_facts
short_description: Find runsc, its containerd shim and containerd's config (read-only)
options:
  runsc_path: {description: where runsc should be, type: path, required: true}
  containerd_config: {description: containerd's config file, type: path, required: true}
"""

RETURN = r"""
runsc_version: {description: first line of runsc --version, or empty when runsc is missing, type: str}
shim: {description: path of containerd-shim-runsc-v1, or empty, type: str}
containerd_config_exists: {description: whether containerd's config file exists, type: bool}
containerd_runsc: {description: runtime_type and BinaryName of containerd's runsc runtime, or empty strings, type: dict}
packages_dry_run: {description: whether the package manager can dry-run here (apt needs python3-apt), type: bool}
"""

import importlib.util
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

SECTION = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runsc'


def containerd_runsc(path):
    """runtime_type and BinaryName of the runsc runtime, read line by line (the tables casemate
    writes are flat, and this also works where python has no tomllib)."""
    found = {"runtime_type": "", "BinaryName": ""}
    table = ""
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return found
    for raw in lines:
        line = raw.strip()
        if line.startswith("["):
            table = line
            continue
        key, eq, value = line.partition("=")
        if not eq:
            continue
        if table == SECTION + "]" and key.strip() == "runtime_type":
            found["runtime_type"] = value.strip().strip('"')
        if table == SECTION + ".options]" and key.strip() == "BinaryName":
            found["BinaryName"] = value.strip().strip('"')
    return found


def main():
    module = AnsibleModule(
        argument_spec={
            "runsc_path": {"type": "path", "required": True},
            "containerd_config": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    version = ""
    if os.access(module.params["runsc_path"], os.X_OK):
        rc, out, _ = module.run_command([module.params["runsc_path"], "--version"])
        version = out.splitlines()[0] if rc == 0 and out else ""
    # apt can only dry-run with python3-apt; other package managers always can
    dry_run = not shutil.which("apt-get") or importlib.util.find_spec("apt") is not None
    module.exit_json(
        changed=False,
        runsc_version=version,
        shim=shutil.which("containerd-shim-runsc-v1") or "",
        containerd_config_exists=os.path.exists(module.params["containerd_config"]),
        containerd_runsc=containerd_runsc(module.params["containerd_config"]),
        packages_dry_run=dry_run,
    )


if __name__ == "__main__":
    main()
