#!/usr/bin/python
"""Decide, in one call, what every control of the etcd role the run selects wants: the etcd
account and the data directory's mode and owner (1.1.11, 1.1.12), the flags of etcd's manifest
(2.1 - 2.7), the running etcd to watch after a change, and what is left alone and why.
Read-only. The host is read once (`read_host`: the account, the data directory, the two CAs, the
etcd process); `plan()` is pure, so it can be tested without a host."""

DOCUMENTATION = r"""
module: etcd_plan
short_description: Decide the selected etcd controls in one call (read-only)
description:
  - Each control is decided only when the run selects it (its tag, as Ansible records it in
    ansible_run_tags and ansible_skip_tags), so `--tags cis_k8s_2_2` changes only that flag.
  - Changes nothing; a compliant host gets files.apply false and an edit that leaves the manifest
    as it is, and the role skips its write steps.
  - Refuses a host without etcd's manifest before anything changes.
options:
  run_tags: {description: "the run's --tags (ansible_run_tags)", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
  found: {description: "the kube_manifest read of etcd's manifest (flags, command, probe, or broken)", type: dict, required: true}
  settings: {description: "the role's knobs, without the etcd_ prefix", type: dict, required: true}
"""

RETURN = r"""
selected: {description: the controls of the role the run selects, type: list}
broken: {description: "[{component, path, broken, reason}]: etcd, when its manifest cannot be edited", type: list}
usable: {description: whether the manifest can be edited (it parses and is a Pod), type: bool}
data_dir: {description: "the data directory (etcd_data_dir, else the manifest's --data-dir, else /var/lib/etcd)", type: str}
files: {description: "which data directory steps change: group, user, mode, owner; apply when any does", type: dict}
edit: {description: "kube_manifest changes of etcd's manifest: flags, defaults, remove", type: dict}
process: {description: "the running etcd before any change: {running, pid, start, argv}", type: dict}
health_url: {description: "the URL that must answer healthy after a change (empty: none)", type: str}
notes: {description: what is left alone and why, one line each, type: list}
"""

import grp
import hashlib
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_selection import selected_controls
    from ansible.module_utils.kube_process import pick, processes_named
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.kube_process import (
        pick,
        processes_named,
    )

CONTROLS = ("cis_k8s_1_1_11", "cis_k8s_1_1_12", *("cis_k8s_2_%d" % n for n in range(1, 8)))
NOT_RUNNING = {"running": False, "pid": 0, "start": 0, "argv": []}


def data_dir(found, s):
    """etcd_data_dir, else the manifest's --data-dir, else kubeadm's /var/lib/etcd."""
    return s["data_dir"] or ((found.get("flags") or {}).get("--data-dir") or "/var/lib/etcd")


def trusted_ca(found, s):
    """The CA etcd trusts for client certificates: the manifest's, else the role's."""
    return (found.get("flags") or {}).get("--trusted-ca-file") or s["trusted_ca_file"]


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def _exists(lookup, name):
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def _checksum(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha1(handle.read()).hexdigest()
    except OSError:
        return None


def read_host(found, s):
    """What the plan needs from the host: whether the account exists (as getent sees it), the
    data directory's mode and owner (following a symlink, as the file module does), whether etcd
    trusts the cluster CA itself, and the running etcd."""
    where = data_dir(found, s)
    try:
        st = os.stat(where)
        directory = {
            "exists": True,
            "mode": "%04o" % stat.S_IMODE(st.st_mode),
            "owner": _name(pwd.getpwuid, st.st_uid),
            "group": _name(grp.getgrgid, st.st_gid),
        }
    except OSError:
        directory = {"exists": False}
    ours, cluster = _checksum(trusted_ca(found, s)), _checksum(s["cluster_ca_file"])
    chosen = pick(processes_named(s["process_name"]), found.get("command") or [])
    return {
        "user": _exists(pwd.getpwnam, s["user"]),
        "group": _exists(grp.getgrnam, s["group"]),
        "data_dir": directory,
        "cas_same": ours is not None and ours == cluster,
        "process": dict(chosen, running=True) if chosen else dict(NOT_RUNNING),
    }


def health_url(found, s):
    probe = found.get("probe") or {}
    if not probe:
        return ""
    return "%s://%s:%s%s" % (probe["scheme"], probe["host"], probe["port"], s["health_path"])


def _files(found, host, s, on, *, check_mode, notes):
    """cis_k8s_1_1_11 cis_k8s_1_1_12: which data directory steps change."""
    where = data_dir(found, s)
    d = host["data_dir"]
    mode = on("cis_k8s_1_1_11") and (
        not d["exists"] or int(d["mode"], 8) != int(str(s["data_dir_mode"]), 8)
    )
    owner = False
    if on("cis_k8s_1_1_12"):
        # a dry run cannot chown to an account it has only pretended to create, nor a directory
        # it has only pretended to make; a real run creates both first
        there = d["exists"] or (mode and not check_mode)
        known = not check_mode or (host["user"] and host["group"])
        owner = (
            there
            and known
            and (not d["exists"] or (d["owner"], d["group"]) != (s["user"], s["group"]))
        )
        if check_mode and not host["user"]:
            notes.append(
                "check mode: %s would belong to %s:%s, an account a real run creates first"
                % (where, s["user"], s["group"])
            )
    files = {
        "group": on("cis_k8s_1_1_12") and not host["group"],
        "user": on("cis_k8s_1_1_12") and not host["user"],
        "mode": mode,
        "owner": owner,
    }
    files["apply"] = any(files.values())
    return files


def _edit(found, host, s, on, notes):
    """cis_k8s_2_1 - cis_k8s_2_7: the manifest's flags. File paths are filled in only where the
    manifest has none: a site's own certificate locations stay."""
    flags = found.get("flags") or {}
    edit = {"flags": dict(s["extra_flags"] or {}), "defaults": {}, "remove": []}
    if on("cis_k8s_2_1"):
        edit["defaults"].update({"--cert-file": s["cert_file"], "--key-file": s["key_file"]})
    if on("cis_k8s_2_2"):
        edit["flags"]["--client-cert-auth"] = s["client_cert_auth"]
    if on("cis_k8s_2_3") and "--auto-tls" in flags and flags["--auto-tls"] != "false":
        edit["remove"].append("--auto-tls")
    if on("cis_k8s_2_4"):
        edit["defaults"].update(
            {"--peer-cert-file": s["peer_cert_file"], "--peer-key-file": s["peer_key_file"]}
        )
    if on("cis_k8s_2_5"):
        edit["flags"]["--peer-client-cert-auth"] = s["peer_client_cert_auth"]
        edit["defaults"]["--peer-trusted-ca-file"] = s["peer_trusted_ca_file"]
    if on("cis_k8s_2_6") and "--peer-auto-tls" in flags and flags["--peer-auto-tls"] != "false":
        edit["remove"].append("--peer-auto-tls")
    if on("cis_k8s_2_7"):
        edit["defaults"]["--trusted-ca-file"] = s["trusted_ca_file"]
        if host["cas_same"]:
            notes.append(
                "etcd trusts %s, the same CA as the cluster (%s): every certificate the cluster CA "
                "signs can then reach etcd. Give etcd a CA of its own (kubeadm's "
                "/etc/kubernetes/pki/etcd/ca.crt); casemate does not re-issue certificates."
                % (trusted_ca(found, s), s["cluster_ca_file"])
            )
    return edit


def plan(found, host, settings, selected, check_mode):
    """What the selected controls want, from the manifest as read and the host. Pure. A manifest
    that cannot be edited is left exactly as it is, its data directory too (the manifest names
    it): etcd is recorded as skipped and nothing else is decided."""
    chosen = set(selected)

    def on(*ids):
        return bool(chosen.intersection(ids))

    s = settings
    notes = []
    if "broken" in found:
        return {
            "broken": [
                {
                    "component": s["process_name"],
                    "path": s["manifest_path"],
                    "broken": True,
                    "reason": found["broken"],
                }
            ],
            "usable": False,
            "data_dir": data_dir(found, s),
            "files": {"group": False, "user": False, "mode": False, "owner": False, "apply": False},
            "edit": {"flags": {}, "defaults": {}, "remove": []},
            "process": host["process"],
            "health_url": "",
            "notes": notes,
        }
    files = _files(found, host, s, on, check_mode=check_mode, notes=notes)
    return {
        "broken": [],
        "usable": True,
        "data_dir": data_dir(found, s),
        "files": files,
        "edit": _edit(found, host, s, on, notes),
        "process": host["process"],
        "health_url": health_url(found, s),
        "notes": notes,
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
            "found": {"type": "dict", "required": True},
            "settings": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    s = p["settings"]
    if not os.path.exists(s["manifest_path"]):
        module.fail_json(
            msg="%s does not exist: this role hardens etcd run as a kubeadm static pod (stacked "
            "etcd); set etcd_manifest_path if the manifest lives elsewhere." % s["manifest_path"]
        )
    selected = selected_controls(list(CONTROLS), p["run_tags"], p["skip_tags"])
    host = read_host(p["found"], s)
    decided = plan(p["found"], host, s, selected, module.check_mode)
    module.exit_json(changed=False, selected=selected, **decided)


if __name__ == "__main__":
    main()
