#!/usr/bin/python
"""Decide, in one call, what every control of kube_control_plane the run selects wants: the flags,
volumes and removals of each component's manifest, the files the API server reads that casemate
writes, the directories they need, the 1.1 modes and owners to narrow, what is left alone and why.
Read-only and pure: it works on what kube_control_plane_decide read (the manifests, the node facts), so
`plan()` can be tested without a host."""

DOCUMENTATION = r"""
module: kube_control_plane_plan
short_description: Decide the selected kube_control_plane controls in one call (read-only)
description:
  - Each control is decided only when the run selects it (its tag, as Ansible records it in
    ansible_run_tags and ansible_skip_tags), so `--tags cis_k8s_1_2_5` changes only that flag.
  - Refuses, before anything changes, kube_control_plane_anonymous_auth=restricted next to --oidc-*
    flags or another --authentication-config.
options:
  run_tags: {description: "the run's --tags (ansible_run_tags)", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
  found:
    description: "component (apiserver, controller_manager, scheduler) -> {exists, path, process, health_path, read}: read is what kube_manifest's read returns (kube_control_plane_decide parses it so)"
    type: dict
    required: true
  node: {description: "the kube_node_facts result (loose_modes, wrong_owners, verified)", type: dict, required: true}
  settings: {description: "the role's knobs, without the kube_control_plane_ prefix", type: dict, required: true}
"""

RETURN = r"""
selected: {description: the controls of the role the run selects, type: list}
usable: {description: "component -> whether its manifest exists and can be edited", type: dict}
broken: {description: "[{component, path, broken, reason}] of the manifests that cannot be edited", type: list}
health_urls: {description: "component -> the URL that must answer healthy after a change (empty: none)", type: dict}
edits: {description: "component -> kube_manifest changes (flags, defaults, merge, prune, remove, volumes; annotations are added from the written files)", type: dict}
writes: {description: "which of casemate's files to write: authentication, event_rate_limit, admission, audit_policy, encryption", type: dict}
encryption_path: {description: the encryption configuration the API server reads (the site's is kept), type: str}
dirs: {description: the root-only directories casemate's files need, type: list}
files: {description: "the 1.1 modes and owners to narrow: [{id, path, mode, fixed} or {id, path, owner, group}]", type: list}
notes: {description: what is left alone and why, one line each, type: list}
"""

import os.path

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_selection import selected_controls
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
    )

COMPONENTS = ("apiserver", "controller_manager", "scheduler")

# every control the role decides, in the order of its steps (section 1.1, 1.2, 3.2, 1.3, 1.4)
FILE_IDS = tuple(
    "cis_k8s_1_1_%d" % n for n in (1, 2, 3, 4, 5, 6, 7, 8, 13, 14, 15, 16, 17, 18, 19, 20, 21)
)
ADMISSION_IDS = ("cis_k8s_1_2_9", *("cis_k8s_5_2_%d" % n for n in range(1, 13)))
AUDIT_IDS = ("cis_k8s_1_2_16", "cis_k8s_3_2_1", "cis_k8s_3_2_2")
CONTROLS = (
    FILE_IDS
    + tuple("cis_k8s_1_2_%d" % n for n in range(1, 31))
    + ("cis_k8s_3_2_1", "cis_k8s_3_2_2")
    + tuple("cis_k8s_5_2_%d" % n for n in range(1, 13))
    + tuple("cis_k8s_1_3_%d" % n for n in range(1, 8))
    + ("cis_k8s_1_4_1", "cis_k8s_1_4_2")
)


class RefusedError(Exception):
    """A preflight refusal: the message says what to change; nothing was changed."""


class _Api:
    """What the API server steps share: the settings, its flags as read, the selection, and what
    they decide (its edit, casemate's files to write, the directories, the notes)."""

    def __init__(self, settings, flags, on, edit):
        self.s, self.flags, self.on, self.edit = settings, flags, on, edit
        self.writes = {
            "authentication": False,
            "event_rate_limit": False,
            "admission": False,
            "audit_policy": False,
            "encryption": False,
        }
        self.dirs, self.notes = [], []


def _empty_edit(flags):
    return {
        "flags": dict(flags or {}),
        "defaults": {},
        "merge": {},
        "prune": {},
        "remove": [],
        "volumes": [],
    }


def _append_rp(old, new):
    """Ansible's list_merge='append_rp': the new items appended, each present one moved last."""
    return [i for i in old if i not in new] + list(new)


def _combine(edit, change):
    """edit with change merged in, as the role's `combine(recursive=true, list_merge='append_rp')`
    did: mappings merged key by key (a key keeps its place), lists appended."""
    for key, value in change.items():
        if isinstance(value, dict):
            for name, item in value.items():
                current = edit[key].get(name)
                if isinstance(item, list) and isinstance(current, list):
                    edit[key][name] = _append_rp(current, item)
                else:
                    edit[key][name] = item
        else:
            edit[key] = _append_rp(edit[key], value)


def _jinja_int(value):
    """Jinja's `int` filter: a number, or 0 where the text is none."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def _or(value, fallback):
    """Jinja's `default(fallback, true)`: the value unless it is missing, empty or null."""
    return value if value else fallback


def health_url(read, health_path):
    probe = (read or {}).get("probe") or {}
    if not probe:
        return ""
    return "%s://%s:%s%s" % (
        probe["scheme"],
        probe["host"],
        probe["port"],
        health_path or probe["path"],
    )


def _apiserver_auth(a):
    """cis_k8s_1_2_1 - cis_k8s_1_2_8: who may talk to the API server."""
    s, flags, on, edit, notes = a.s, a.flags, a.on, a.edit, a.notes
    if on("cis_k8s_1_2_1"):
        if s["anonymous_auth"] == "unchanged":
            notes.append(
                "--anonymous-auth is left alone: kubeadm's liveness, readiness and startup probes "
                "of the API server are anonymous requests to /livez and /readyz, so "
                "--anonymous-auth=false would make the kubelet restart the API server forever. Set "
                'kube_control_plane_anonymous_auth to "restricted" (anonymous only for %s) or '
                '"disabled".' % ", ".join(s["anonymous_paths"])
            )
        elif s["anonymous_auth"] == "restricted":
            own = s["authentication_config_file"]
            if [k for k in flags if k.startswith("--oidc-")] or flags.get(
                "--authentication-config", own
            ) != own:
                raise RefusedError(
                    "kube_control_plane_anonymous_auth=restricted needs --authentication-config, "
                    "which the API server refuses next to --oidc-* flags or another authentication "
                    "file; move those settings into %s first, or keep the setting "
                    '"unchanged".' % own
                )
            _combine(
                edit,
                {
                    "flags": {"--authentication-config": own},
                    "remove": ["--anonymous-auth"],
                    "volumes": [s["config_volume"]],
                },
            )
        elif s["anonymous_auth"] == "disabled":
            _combine(edit, {"flags": {"--anonymous-auth": False}})
    if on("cis_k8s_1_2_2"):
        _combine(edit, {"remove": ["--token-auth-file"]})
    if on("cis_k8s_1_2_3") and s["deny_service_external_ips"]:
        _combine(edit, {"merge": {"--enable-admission-plugins": ["DenyServiceExternalIPs"]}})
    if on("cis_k8s_1_2_4"):
        _combine(
            edit,
            {
                "defaults": {
                    "--kubelet-client-certificate": s["kubelet_client_certificate"],
                    "--kubelet-client-key": s["kubelet_client_key"],
                }
            },
        )


def _apiserver_kubelet_ca(a, node):
    """cis_k8s_1_2_5: verify kubelet serving certificates, and say when they would fail."""
    s, on, edit, notes = a.s, a.on, a.edit, a.notes
    ca = s["kubelet_certificate_authority"]
    if not (on("cis_k8s_1_2_5") and ca):
        return
    _combine(edit, {"defaults": {"--kubelet-certificate-authority": ca}})
    verified = (node.get("verified") or [{}])[0]
    if not verified.get("ok"):
        notes.append(
            "The API server now verifies kubelet serving certificates against %s, but this node's "
            "kubelet serving certificate %s is %s (kubeadm's kubelets serve a self-signed one). "
            "Until every kubelet has one signed by that CA (kube_kubelet sets serverTLSBootstrap; "
            "approve the kubelet-serving CSRs), kubectl logs, exec, port-forward and metrics from "
            "those kubelets fail."
            % (
                ca,
                s["kubelet_serving_cert"],
                "missing" if verified.get("reason") == "missing" else "not signed by it",
            )
        )


def _apiserver_admission(a):
    """cis_k8s_1_2_6 - cis_k8s_1_2_15, cis_k8s_5_2_x: authorization and admission."""
    s, flags, on, edit, writes, notes = a.s, a.flags, a.on, a.edit, a.writes, a.notes
    if on("cis_k8s_1_2_6", "cis_k8s_1_2_7", "cis_k8s_1_2_8"):
        _combine(
            edit,
            {
                "merge": {"--authorization-mode": list(s["authorization_modes"])},
                "prune": {"--authorization-mode": ["AlwaysAllow"]},
            },
        )
    if on(*ADMISSION_IDS):
        own = s["admission_config_file"]
        site = flags.get("--admission-control-config-file")
        if _or(site, own) != own:
            notes.append(
                "The API server reads the site's admission configuration %s; casemate leaves it: "
                "it neither enables EventRateLimit (the plugin needs its limits in that file) nor "
                "sets Pod Security defaults." % site
            )
        else:
            writes["admission"] = True
            writes["event_rate_limit"] = bool(s["event_rate_limit"])
            change = {
                "flags": {"--admission-control-config-file": own},
                "merge": {"--enable-admission-plugins": ["EventRateLimit"]}
                if s["event_rate_limit"]
                else {},
                "volumes": [s["config_volume"]],
            }
            _combine(edit, change)
    if on("cis_k8s_1_2_10"):
        _combine(edit, {"prune": {"--enable-admission-plugins": ["AlwaysAdmit"]}})
    if on("cis_k8s_1_2_11") and s["always_pull_images"]:
        _combine(edit, {"merge": {"--enable-admission-plugins": ["AlwaysPullImages"]}})
    if on("cis_k8s_1_2_12"):
        _combine(edit, {"prune": {"--disable-admission-plugins": ["ServiceAccount"]}})
    if on("cis_k8s_1_2_13"):
        _combine(edit, {"prune": {"--disable-admission-plugins": ["NamespaceLifecycle"]}})
    if on("cis_k8s_1_2_14"):
        _combine(edit, {"merge": {"--enable-admission-plugins": ["NodeRestriction"]}})
    if on("cis_k8s_1_2_15"):
        _combine(edit, {"flags": {"--profiling": s["profiling"]}})


def _apiserver_audit_log(a):
    """cis_k8s_1_2_16 - cis_k8s_1_2_19: the audit log (a site's own path and mounts are kept)."""
    s, flags, on, edit, dirs, notes = a.s, a.flags, a.on, a.edit, a.dirs, a.notes
    if on("cis_k8s_1_2_16"):
        own = s["audit_log_path"]
        site = flags.get("--audit-log-path")
        if _or(site, own) != own:
            notes.append(
                "The API server writes its audit log to the site's %s; casemate keeps that path "
                "and its mounts, and neither makes nor mounts %s." % (site, os.path.dirname(own))
            )
        else:
            where = os.path.dirname(own)
            dirs.append(where)
            volume = {
                "name": "casemate-audit-log",
                "hostPath": where,
                "mountPath": where,
                "type": "DirectoryOrCreate",
            }
            _combine(edit, {"flags": {"--audit-log-path": own}, "volumes": [volume]})
    for ident, flag, key in (
        ("cis_k8s_1_2_17", "--audit-log-maxage", "audit_log_maxage"),
        ("cis_k8s_1_2_18", "--audit-log-maxbackup", "audit_log_maxbackup"),
        ("cis_k8s_1_2_19", "--audit-log-maxsize", "audit_log_maxsize"),
    ):
        if on(ident):  # a larger value already set is kept
            _combine(edit, {"flags": {flag: max(_jinja_int(_or(flags.get(flag), 0)), s[key])}})


def _apiserver_tls(a):
    """cis_k8s_1_2_20 - cis_k8s_1_2_30: timeouts, keys, certificates, encryption, ciphers."""
    s, flags, on, edit, writes = a.s, a.flags, a.on, a.edit, a.writes
    if on("cis_k8s_1_2_20"):
        _combine(edit, {"defaults": {"--request-timeout": s["request_timeout"]}})
    if on("cis_k8s_1_2_21"):
        _combine(edit, {"flags": {"--service-account-lookup": s["service_account_lookup"]}})
    for ident, pairs in (
        ("cis_k8s_1_2_22", (("--service-account-key-file", "service_account_key_file"),)),
        (
            "cis_k8s_1_2_23",
            (("--etcd-certfile", "etcd_certfile"), ("--etcd-keyfile", "etcd_keyfile")),
        ),
        (
            "cis_k8s_1_2_24",
            (
                ("--tls-cert-file", "tls_cert_file"),
                ("--tls-private-key-file", "tls_private_key_file"),
            ),
        ),
        ("cis_k8s_1_2_25", (("--client-ca-file", "client_ca_file"),)),
        ("cis_k8s_1_2_26", (("--etcd-cafile", "etcd_cafile"),)),
    ):
        if on(ident):
            _combine(edit, {"defaults": {flag: s[key] for flag, key in pairs}})
    if on("cis_k8s_1_2_27", "cis_k8s_1_2_28"):
        own = s["encryption_config_file"]
        path = _or(flags.get("--encryption-provider-config"), own)
        writes["encryption"] = True
        volume = {
            "name": "casemate-encryption-config",
            "hostPath": os.path.dirname(own),
            "mountPath": os.path.dirname(own),
            "type": "DirectoryOrCreate",
            "readOnly": True,
        }
        change = {"flags": {"--encryption-provider-config": path}}
        change["volumes"] = [volume] if path == own else []
        _combine(edit, change)
    if on("cis_k8s_1_2_29"):  # the site's allowed suites stay, in its order; never widened
        allowed = list(s["tls_cipher_suites"])
        site = []
        for raw in str(_or(flags.get("--tls-cipher-suites"), "")).split(","):
            item = raw.strip()
            if item in allowed and item not in site:
                site.append(item)
        _combine(edit, {"flags": {"--tls-cipher-suites": ",".join(site or allowed)}})
    if on("cis_k8s_1_2_30"):
        change = {
            "flags": {
                "--service-account-extend-token-expiration": s[
                    "service_account_extend_token_expiration"
                ]
            }
        }
        _combine(edit, change)


def _audit_policy(a):
    """cis_k8s_3_2_1 cis_k8s_3_2_2 (and 1.2.16): casemate's audit policy, unless the site has one."""
    s, flags, on, edit, writes, notes = a.s, a.flags, a.on, a.edit, a.writes, a.notes
    if not on(*AUDIT_IDS):
        return
    own = s["audit_policy_file"]
    site = flags.get("--audit-policy-file")
    if _or(site, own) != own:
        notes.append(
            "The API server reads the site's audit policy %s; casemate keeps it and its mounts, "
            "and writes no policy of its own." % site
        )
        return
    writes["audit_policy"] = True
    _combine(edit, {"flags": {"--audit-policy-file": own}, "volumes": [s["config_volume"]]})


def _controller_manager(s, on, edit):
    """cis_k8s_1_3_1 - cis_k8s_1_3_7."""
    if on("cis_k8s_1_3_1"):
        _combine(
            edit, {"defaults": {"--terminated-pod-gc-threshold": s["terminated_pod_gc_threshold"]}}
        )
    if on("cis_k8s_1_3_2"):
        _combine(edit, {"flags": {"--profiling": s["profiling"]}})
    if on("cis_k8s_1_3_3"):
        flag = "--use-service-account-credentials"
        _combine(edit, {"flags": {flag: s["use_service_account_credentials"]}})
    if on("cis_k8s_1_3_4"):
        key = s["service_account_private_key_file"]
        _combine(edit, {"defaults": {"--service-account-private-key-file": key}})
    if on("cis_k8s_1_3_5"):
        _combine(edit, {"defaults": {"--root-ca-file": s["root_ca_file"]}})
    if on("cis_k8s_1_3_6"):
        gate = (
            "RotateKubeletServerCertificate=" + str(s["rotate_kubelet_server_certificate"]).lower()
        )
        _combine(edit, {"merge": {"--feature-gates": [gate]}})
    if on("cis_k8s_1_3_7"):
        _combine(edit, {"flags": {"--bind-address": s["bind_address"]}})


def _scheduler(s, on, edit):
    """cis_k8s_1_4_1 cis_k8s_1_4_2."""
    if on("cis_k8s_1_4_1"):
        _combine(edit, {"flags": {"--profiling": s["profiling"]}})
    if on("cis_k8s_1_4_2"):
        _combine(edit, {"flags": {"--bind-address": s["bind_address"]}})


def components(found):
    """(usable, broken, health_urls) from the Preflight reads."""
    usable, broken, urls = {}, [], {}
    for name in COMPONENTS:
        item = found[name]
        read = item.get("read") or {}
        reason = read.get("broken") or ""
        usable[name] = bool(item.get("exists")) and "broken" not in read
        if reason:
            broken.append(
                {
                    "component": item["process"],
                    "path": item["path"],
                    "broken": True,
                    "reason": reason,
                }
            )
        urls[name] = health_url(read, item.get("health_path"))
    return usable, broken, urls


def plan(found, node, settings, selected):
    """What the selected controls want, from what the Preflight read. Pure. Raises RefusedError."""
    chosen = set(selected)

    def on(*ids):
        return bool(chosen.intersection(ids))

    s = settings
    usable, broken, urls = components(found)
    flags = {n: dict((found[n].get("read") or {}).get("flags") or {}) for n in COMPONENTS}
    edits = {n: _empty_edit(s["%s_extra_flags" % n]) for n in COMPONENTS}
    api = _Api(s, flags["apiserver"], on, edits["apiserver"])
    encryption_path = _or(
        api.flags.get("--encryption-provider-config"), s["encryption_config_file"]
    )
    if usable["apiserver"]:
        _apiserver_auth(api)
        api.writes["authentication"] = on("cis_k8s_1_2_1") and s["anonymous_auth"] == "restricted"
        _apiserver_kubelet_ca(api, node)
        _apiserver_admission(api)
        _apiserver_audit_log(api)
        _apiserver_tls(api)
        _audit_policy(api)
        if api.writes["authentication"] or api.writes["admission"] or api.writes["audit_policy"]:
            api.dirs.insert(0, s["config_dir"])
        if api.writes["encryption"] and encryption_path == s["encryption_config_file"]:
            api.dirs.append(os.path.dirname(s["encryption_config_file"]))
    if usable["controller_manager"]:
        _controller_manager(s, on, edits["controller_manager"])
    if usable["scheduler"]:
        _scheduler(s, on, edits["scheduler"])
    files = [
        item
        for item in list(node.get("loose_modes") or []) + list(node.get("wrong_owners") or [])
        if item.get("id") in chosen
    ]
    files.sort(key=lambda item: FILE_IDS.index(item["id"]) if item["id"] in FILE_IDS else 99)
    return {
        "usable": usable,
        "broken": broken,
        "health_urls": urls,
        "edits": edits,
        "writes": api.writes,
        "encryption_path": encryption_path,
        "dirs": list(dict.fromkeys(api.dirs)),
        "files": files,
        "notes": api.notes,
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
            "found": {"type": "dict", "required": True},
            "node": {"type": "dict", "required": True},
            "settings": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    selected = selected_controls(list(CONTROLS), p["run_tags"], p["skip_tags"])
    try:
        decided = plan(p["found"], p["node"], p["settings"], selected)
    except RefusedError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, selected=selected, **decided)


if __name__ == "__main__":
    main()
