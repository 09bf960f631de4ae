#!/usr/bin/python
"""Decide, in one call, what every control of the kube_policies role the run selects wants: which
of its files (the policies directory, the Pod Security levels, the default-deny NetworkPolicy
template and per-namespace copies, the RBAC review) differ from what the role writes, whether a
live cluster answers (one `kubectl get --raw=/readyz` with the role's timeout), and so whether the
manifests are applied and RBAC reviewed, and what is said when they are not.
Read-only. The host is read once (`read_host`); `plan()` is pure, so it can be tested without a
host."""

DOCUMENTATION = r"""
module: kube_policies_plan
short_description: Decide the selected kube_policies controls in one call (read-only)
description:
  - A step serving several controls runs as Ansible would run a task tagged with all of them,
    when the run selects one of them (ansible_run_tags) and skips none (ansible_skip_tags).
  - Changes nothing; a compliant host without a live cluster gets apply false and one note.
options:
  run_tags: {description: "the run's --tags (ansible_run_tags)", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
  dir: {description: the policies directory (root:root 0700), type: path, required: true}
  files:
    description: "the files the role writes: [{key, path, sha1 (of the wanted content), mode, item}];
      key is pod_security, networkpolicy_template, networkpolicy (item: its namespace) or rbac_review"
    type: list
    elements: dict
    default: []
  kubectl: {description: the kubectl command, type: str, required: true}
  kubeconfig: {description: the admin kubeconfig, type: path, required: true}
  request_timeout: {description: kubectl's request timeout, type: str, required: true}
  runtimeclass_manifest: {description: the gvisor role's RuntimeClass manifest, type: path, required: true}
  apply: {description: apply the manifests to a live cluster, type: bool, default: true}
  rbac_review: {description: review RBAC on a live cluster, type: bool, default: true}
"""

RETURN = r"""
selected: {description: the controls of the role the run selects, type: list}
dir: {description: whether the directory step changes, type: bool}
writes: {description: "key -> whether that file changes (pod_security, networkpolicy_template, rbac_review)", type: dict}
namespaces: {description: the namespaces whose default-deny NetworkPolicy changes, type: list}
live: {description: whether a live cluster answered, type: bool}
apply_manifests: {description: whether the manifests are applied to it, type: bool}
review: {description: whether RBAC is reviewed on it, type: bool}
runtimeclass: {description: whether the gvisor RuntimeClass manifest exists (it is applied with the others), type: bool}
apply: {description: whether the role's include has anything to do, type: bool}
notes: {description: what is left alone and why, one line each, type: list}
"""

import grp
import hashlib
import os
import pwd
import re
import stat

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import written_as
    from ansible.module_utils.casemate_selection import selected_controls, step_runs
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        written_as,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
        step_runs,
    )

RBAC = tuple("cis_k8s_5_1_%d" % n for n in (1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13))
POD_SECURITY = tuple("cis_k8s_5_2_%d" % n for n in range(1, 13))
NETWORK_POLICY = ("cis_k8s_5_3_2",)
CONTROLS = RBAC + POD_SECURITY + NETWORK_POLICY
# the controls of each step (its tags in tasks/apply.yml)
STEP_IDS = {
    "pod_security": POD_SECURITY,
    "networkpolicy_template": NETWORK_POLICY,
    "networkpolicy": NETWORK_POLICY,
    "rbac_review": RBAC,
}
APPLY_IDS = POD_SECURITY + NETWORK_POLICY


def truncate(text, length=160, end="...", leeway=5):
    """Jinja's truncate filter with its defaults (the former notice was cut with it)."""
    if len(text) <= length + leeway:
        return text
    return text[: length - len(end)].rsplit(" ", 1)[0] + end


def _root_owned(st, mode):
    return (
        st.st_uid == pwd.getpwnam("root").pw_uid
        and st.st_gid == grp.getgrnam("root").gr_gid
        and stat.S_IMODE(st.st_mode) == int(mode, 8)
    )


def file_current(spec):
    """Whether the file is a regular file (not a link: the write step then decides) with the wanted
    content, root:root and the wanted mode."""
    try:
        st = os.lstat(spec["path"])
        if not stat.S_ISREG(st.st_mode) or not _root_owned(st, spec["mode"]):
            return False
        with open(spec["path"], "rb") as handle:
            return hashlib.sha1(handle.read()).hexdigest() == spec["sha1"]
    except (OSError, KeyError):
        return False


def ask_cluster(run_command, kubectl, kubeconfig, timeout):
    """{rc, stdout, stderr, msg} of `kubectl get --raw=/readyz` (run with the module's
    run_command), as the command module returns them: trailing newlines dropped; a kubectl that
    cannot start gives its errno and "Error executing command."."""
    argv = [
        kubectl,
        "--kubeconfig=" + kubeconfig,
        "--request-timeout=" + timeout,
        "get",
        "--raw=/readyz",
    ]
    try:
        rc, out, err = run_command(argv, handle_exceptions=False)
    except OSError as exc:  # the command module's words for it
        return {"rc": exc.errno or 2, "stdout": "", "stderr": "", "msg": "Error executing command."}
    return {"rc": rc, "stdout": out.rstrip("\r\n"), "stderr": err.rstrip("\r\n"), "msg": ""}


def read_host(run_command, p, run_tags, skip_tags):
    """What the plan needs from the host: which files are current, whether the kubeconfig and the
    RuntimeClass manifest exist, and the cluster's answer (asked only when a selected step needs
    it and the kubeconfig exists)."""
    kubeconfig = os.path.exists(p["kubeconfig"])
    asked = step_runs(CONTROLS, run_tags, skip_tags) and kubeconfig
    return {
        "dir": written_as(p["dir"], None, 0o700, "directory"),  # what the directory step makes
        "current": [file_current(f) for f in p["files"]],
        "kubeconfig": kubeconfig,
        "runtimeclass": os.path.exists(p["runtimeclass_manifest"]),
        "ready": (
            ask_cluster(run_command, p["kubectl"], p["kubeconfig"], p["request_timeout"])
            if asked
            else None
        ),
    }


def notice(p, host):
    """The former "ready but not applied" notice, word for word."""
    ready = host["ready"]
    reason = ""
    if ready is not None and ready["rc"] != 0:
        reason = ": " + truncate(re.sub(r"\s+", " ", ready["stderr"] or ready["msg"]))
    return (
        "no live cluster answers through %s%s within %s%s. The manifests are ready in %s%s: apply "
        "them with kubectl apply -f %s once the cluster runs; the RBAC review has not run."
        % (
            p["kubeconfig"],
            "" if host["kubeconfig"] else " (missing)",
            p["request_timeout"],
            reason,
            p["dir"],
            " (and %s)" % p["runtimeclass_manifest"] if host["runtimeclass"] else "",
            p["dir"],
        )
    )


def plan(p, host, run_tags, skip_tags):
    """What the selected controls want, from the host as read. Pure."""

    def on(ids):
        return step_runs(ids, run_tags, skip_tags)

    every = on(CONTROLS)
    writes = {"pod_security": False, "networkpolicy_template": False, "rbac_review": False}
    namespaces = []
    for at, spec in enumerate(p["files"]):
        if host["current"][at] or not on(STEP_IDS[spec["key"]]):
            continue
        if spec["key"] == "networkpolicy":
            namespaces.append(spec["item"])
        elif spec["key"] != "rbac_review" or p["rbac_review"]:
            writes[spec["key"]] = True
    ready = host["ready"]
    live = every and ready is not None and ready["rc"] == 0 and ready["stdout"] == "ok"
    decided = {
        "dir": every and not host["dir"],
        "writes": writes,
        "namespaces": namespaces,
        "live": live,
        "apply_manifests": live and p["apply"] and on(APPLY_IDS),
        "review": live and p["rbac_review"] and on(RBAC),
        "runtimeclass": host["runtimeclass"],
        "notes": [notice(p, host)] if every and not live else [],
    }
    decided["apply"] = bool(
        decided["dir"]
        or any(writes.values())
        or namespaces
        or decided["apply_manifests"]
        or decided["review"]
    )
    return decided


def main():
    module = AnsibleModule(
        argument_spec={
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
            "dir": {"type": "path", "required": True},
            "files": {"type": "list", "elements": "dict", "default": []},
            "kubectl": {"type": "str", "required": True},
            "kubeconfig": {"type": "path", "required": True},
            "request_timeout": {"type": "str", "required": True},
            "runtimeclass_manifest": {"type": "path", "required": True},
            "apply": {"type": "bool", "default": True},
            "rbac_review": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    host = read_host(module.run_command, p, p["run_tags"], p["skip_tags"])
    decided = plan(p, host, p["run_tags"], p["skip_tags"])
    module.exit_json(
        changed=False,
        selected=selected_controls(list(CONTROLS), p["run_tags"], p["skip_tags"]),
        **decided,
    )


if __name__ == "__main__":
    main()
