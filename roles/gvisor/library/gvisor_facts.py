#!/usr/bin/python
"""Find runsc, its containerd shim and containerd's config, and whether the running containerd has
loaded that config, and decide every control of the gvisor role the run selects (read-only): the
role's one read. A compliant host gets act false and skips the role's steps as one include."""

DOCUMENTATION = r"""
module: gvisor_facts
short_description: Find runsc, its containerd shim and containerd's config (read-only)
options:
  runsc_path: {description: where runsc should be, type: path, required: true}
  containerd_config: {description: containerd's config file, type: path, required: true}
  containerd_service: {description: containerd's systemd unit, type: str, default: containerd}
  install: {description: "cm_rt_1_1: install the package when runsc is missing", type: bool, default: true}
  package: {description: "cm_rt_1_1: the package that provides runsc", type: str, default: runsc}
  manifests_dir: {description: "cm_rt_1_5: where the RuntimeClass manifest goes (empty: nowhere)", type: str, default: ""}
  manifest: {description: "cm_rt_1_5: the RuntimeClass manifest's content", type: str, default: ""}
  run_tags: {description: "the run's --tags (ansible_run_tags): the controls selected", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
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
selected: {description: "the role's controls the run selects", type: list}
install: {description: "cm_rt_1_1: run the package step", type: bool}
install_notice: {description: "cm_rt_1_1: what a check run says instead of installing, or empty", type: str}
containerd: {description: "cm_rt_1_3: {apply, write, running, settings}: take the containerd steps, write its config (the ini settings), restart it", type: dict}
manifest: {description: "cm_rt_1_5: {dir, file}: make the manifests directory, write the RuntimeClass manifest", type: dict}
act: {description: whether any step is to run (false on a compliant host), type: bool}
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        config_loaded,
        packages_dry_run,
        written_as,
    )
    from ansible.module_utils.casemate_selection import selected_controls
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        config_loaded,
        packages_dry_run,
        written_as,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
    )

CONTROLS = ["cm_rt_1_1", "cm_rt_1_3", "cm_rt_1_5"]
MANIFEST_NAME = "runtimeclass-gvisor.yaml"

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


def containerd_plan(found, runsc_path):
    """{apply, write, running, settings}: containerd's runsc runtime as `found` (the read) shows it.
    With gVisor's own shim the runtime type is io.containerd.runsc.v1; without it containerd's runc
    shim drives runsc as its binary. The default runtime (runc) is written too where the config
    lacks it (a config that names any runtime replaces containerd's built-in list). containerd
    reads its config only when it starts: it is restarted when the file is written, and also when
    the file was written after the running containerd started (loaded False; None: not running)."""
    section = CRI + ".runtimes.runsc"
    runtime_type = "io.containerd.runsc.v1" if found["shim"] else "io.containerd.runc.v2"
    settings = [{"section": section, "option": "runtime_type", "value": '"%s"' % runtime_type}]
    if not found["shim"]:
        settings.append(
            {"section": section + ".options", "option": "BinaryName", "value": '"%s"' % runsc_path}
        )
    no_runc = (
        found["containerd_default_runtime"] == "runc" and "runc" not in found["containerd_runtimes"]
    )
    if no_runc:
        settings.append(
            {
                "section": CRI + ".runtimes.runc",
                "option": "runtime_type",
                "value": '"io.containerd.runc.v2"',
            }
        )
    runsc = found["containerd_runsc"]
    write = (
        runsc["runtime_type"] != runtime_type
        or (not found["shim"] and runsc["BinaryName"] != runsc_path)
        or no_runc
    )
    loaded = found["containerd_loaded"]["loaded"]
    exists = found["containerd_config_exists"]
    return {
        "apply": bool(exists and (write or loaded is False)),
        "write": bool(exists and write),
        "running": loaded is not None,
        "settings": settings if exists else [],
    }


def decide(found, params, selected, check_mode):
    """What the run's steps are to do on a host `found` shows (pure): install, install_notice,
    containerd, manifest, act. `params`: runsc_path, install, package, manifests_dir and
    manifest_state ({dir, file}: whether each is already as the role writes it)."""
    missing = params["install"] and "cm_rt_1_1" in selected and not found["runsc_version"]
    dry_run = found["packages_dry_run"]
    install = bool(missing and (not check_mode or dry_run))
    notice = ""
    if missing and check_mode and not dry_run:
        notice = (
            "check mode: would install %s (apt cannot dry-run here without python3-apt)"
            % (params["package"])
        )
    containerd = containerd_plan(found, params["runsc_path"])
    if "cm_rt_1_3" not in selected:
        containerd = dict(containerd, apply=False, write=False)
    state = params["manifest_state"]
    manifest = {"dir": False, "file": False}
    if "cm_rt_1_5" in selected and params["manifests_dir"]:
        manifest = {"dir": not state["dir"], "file": not state["file"]}
    act = install or bool(notice) or containerd["apply"] or manifest["dir"] or manifest["file"]
    return {
        "install": install,
        "install_notice": notice,
        "containerd": containerd,
        "manifest": manifest,
        "act": act,
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "runsc_path": {"type": "path", "required": True},
            "containerd_config": {"type": "path", "required": True},
            "containerd_service": {"type": "str", "default": "containerd"},
            "install": {"type": "bool", "default": True},
            "package": {"type": "str", "default": "runsc"},
            "manifests_dir": {"type": "str", "default": ""},
            "manifest": {"type": "str", "default": ""},
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
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
    found = {
        "runsc_version": version,
        "shim": shutil.which("containerd-shim-runsc-v1") or "",
        "containerd_config_exists": exists,
        "containerd_runsc": config["runsc"],
        "containerd_runtimes": config["runtimes"],
        "containerd_default_runtime": config["default"],
        "containerd_loaded": loaded,
        "containerd_cri": cri,
        "packages_dry_run": dry_run,
    }
    selected = selected_controls(CONTROLS, p["run_tags"], p["skip_tags"])
    directory = p["manifests_dir"]
    state = {
        "dir": bool(directory) and written_as(directory, None, 0o755, kind="directory"),
        "file": bool(directory)
        and written_as(os.path.join(directory, MANIFEST_NAME), p["manifest"], 0o644),
    }
    settings = dict(p, runsc_path=p["runsc_path"], manifest_state=state)
    decided = decide(found, settings, selected, module.check_mode)
    found.update(decided)
    module.exit_json(changed=False, selected=selected, **found)


if __name__ == "__main__":
    main()
