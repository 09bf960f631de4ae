#!/usr/bin/python
"""Decide, in one call, what every control of kube_kubelet the run selects wants: the keys of
config.yaml, the flags of the environment files that would override them, the 4.1 modes and
owners to narrow, whether anything must be written or the kubelet restarted, and what is left
alone and why. Read-only and pure: it works on what the role's Preflight read (config.yaml, the
environment files' flags, the node facts; the kube_kubelet_preflight action reads them and calls
it), so `plan()` can be tested without a host."""

DOCUMENTATION = r"""
module: kube_kubelet_plan
short_description: Decide the selected kube_kubelet controls in one call (read-only)
description:
  - Each control is decided only when the run selects it (its tag, as Ansible records it in
    ansible_run_tags and ansible_skip_tags), so `--tags cis_k8s_4_2_4` changes only readOnlyPort.
  - Changes nothing; a compliant host gets apply false, and the role skips its write steps.
  - Refuses a host without config.yaml (the read found no file) before anything changes.
options:
  run_tags: {description: "the run's --tags (ansible_run_tags)", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
  config: {description: "the kube_manifest read of config.yaml (config, or broken)", type: dict, required: true}
  env: {description: "the kube_manifest reads of the environment files ([{item, flags} or {item, broken}])", type: list, elements: dict, default: []}
  node: {description: "the first kube_node_facts result (processes, sysctls, container)", type: dict, required: true}
  files: {description: "the second kube_node_facts result (loose_modes, wrong_owners, loaded)", type: dict, required: true}
  settings: {description: "the role's knobs, without the kube_kubelet_ prefix", type: dict, required: true}
"""

RETURN = r"""
selected: {description: the controls of the role the run selects, type: list}
broken: {description: "[{component, path, broken, reason}]: the kubelet, when one of its files cannot be read", type: list}
settings: {description: the config.yaml keys to merge in, type: dict}
remove: {description: flags to remove from the environment files, type: list}
prune: {description: "flag -> list items to prune from it in the environment files", type: dict}
files: {description: "the 4.1 modes and owners to narrow: [{id, path, mode, fixed} or {id, path, owner, group}]", type: list}
write: {description: whether config.yaml or an environment file would change, type: bool}
pending: {description: whether the running kubelet started before its files were last written, type: bool}
apply: {description: "whether the role's write steps run at all (files, write, or a restart pending; never when --skip-tags names one of the role's controls)", type: bool}
health_url: {description: "the URL that must answer healthy after a restart (empty: none)", type: str}
notes: {description: what is left alone and why, one line each, type: list}
"""

import copy

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_selection import selected_controls, step_runs
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
        step_runs,
    )

FILE_IDS = tuple("cis_k8s_4_1_%d" % n for n in range(1, 11))
# the config.yaml settings (4.2.7 is checked only; 4.2.9 only explains)
CONFIG_IDS = tuple("cis_k8s_4_2_%d" % n for n in (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14))
CONTROLS = FILE_IDS + tuple(
    "cis_k8s_4_2_%d" % n for n in (1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14)
)

# command-line flags that would override the config.yaml keys of each control (the kubelet lets a
# flag win over its config file); they are removed from the kubelet's environment files
OVERRIDING_FLAGS = {
    "cis_k8s_4_2_1": ["--anonymous-auth"],
    "cis_k8s_4_2_2": ["--authorization-mode"],
    "cis_k8s_4_2_3": ["--client-ca-file"],
    "cis_k8s_4_2_4": ["--read-only-port"],
    "cis_k8s_4_2_5": ["--streaming-connection-idle-timeout"],
    "cis_k8s_4_2_6": ["--make-iptables-util-chains"],
    "cis_k8s_4_2_8": ["--event-qps"],
    "cis_k8s_4_2_10": ["--rotate-certificates"],
    "cis_k8s_4_2_11": ["--rotate-server-certificates"],
    "cis_k8s_4_2_12": ["--tls-cipher-suites"],
    "cis_k8s_4_2_13": ["--pod-max-pids"],
    "cis_k8s_4_2_14": ["--seccomp-default"],
    "protect_kernel_defaults": ["--protect-kernel-defaults"],
}

NOTE_4_2_9 = (
    "tlsCertFile and tlsPrivateKeyFile are not set: with serverTLSBootstrap (4.2.11) the kubelet"
    " gets a serving certificate signed by the cluster CA and renews it, which a static file would"
    " switch off. Approve the kubelet-serving CSRs (kubectl get csr) so the kubelet serves one."
)


def _jinja_int(value):
    """Jinja's `int` filter: a number, or 0 where the text is none."""
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return 0


def _text(value):
    """A value as Jinja's `~` and `string` write it."""
    return str(value)


def combine(base, change):
    """Ansible's `combine(recursive=true)`: mappings merged key by key (a key keeps its place)."""
    out = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = combine(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def deep_merge(base, wanted):
    """kube_manifest's merge of settings into config.yaml (order aside): mappings recursively,
    lists and scalars replaced: `combine` of a mapping (anything else counts as empty)."""
    return combine(base if isinstance(base, dict) else {}, wanted)


def _env_flags(env):
    """Every variable's flags of every environment file read, in file order."""
    for read in env:
        for flags in (read.get("flags") or {}).values():
            yield read.get("item", ""), flags or {}


def site_suites(config, env, allowed):
    """4.2.12: the site's suites (config.yaml's, else a --tls-cipher-suites flag's) that are
    allowed, in its order, so a stricter choice is not widened; all allowed when none is left."""
    found = config.get("tlsCipherSuites") or []
    if not found:
        for _, flags in _env_flags(env):
            if flags.get("--tls-cipher-suites"):
                found = flags["--tls-cipher-suites"].split(",")
                break
    if isinstance(found, str):
        found = found.split(",")
    kept = []
    for suite in (str(s).strip() for s in found):
        if suite in allowed and suite not in kept:
            kept.append(suite)
    return kept or list(allowed)


def kernel_mismatch(node, wanted):
    off = []
    sysctls = node.get("sysctls") or {}
    for name, want in wanted.items():
        have = sysctls.get(name, "")
        if _text(have) != _text(want):
            shown = sysctls.get(name) or "unreadable"
            off.append("%s=%s (needs %s)" % (name, shown, want))
    return off


def health_url(config):
    port = config.get("healthzPort", 10248)
    if _jinja_int(port) <= 0:
        return ""
    return "http://%s:%s/healthz" % (config.get("healthzBindAddress") or "127.0.0.1", port)


def _client_ca(config, fallback):
    authn = config.get("authentication") or {}
    x509 = authn.get("x509") or {} if isinstance(authn, dict) else {}
    return (x509.get("clientCAFile") if isinstance(x509, dict) else None) or fallback


def _wanted(config, env, s):
    """[(id, change or None, recursive)] of the 4.2 settings, in the role's step order: None where
    the control keeps the site's value (an event rate >= 0, a positive pod PID limit)."""
    rotate = s["rotate_server_certificates"]
    qps = _jinja_int(config.get("eventRecordQPS", -1)) < 0
    pids = _jinja_int(config.get("podPidsLimit", -1)) <= 0
    return [
        ("cis_k8s_4_2_1", {"authentication": {"anonymous": {"enabled": s["anonymous_auth"]}}}, True),
        ("cis_k8s_4_2_2", {"authorization": {"mode": s["authorization_mode"]}}, True),
        ("cis_k8s_4_2_3", {"authentication": {"x509": {"clientCAFile": _client_ca(config, s["client_ca_file"])}}}, True),
        ("cis_k8s_4_2_4", {"readOnlyPort": s["read_only_port"]}, False),
        ("cis_k8s_4_2_5", {"streamingConnectionIdleTimeout": s["streaming_connection_idle_timeout"]}, False),
        ("cis_k8s_4_2_6", {"makeIPTablesUtilChains": s["make_iptables_util_chains"]}, False),
        ("cis_k8s_4_2_8", {"eventRecordQPS": s["event_record_qps"]} if qps else None, False),
        ("cis_k8s_4_2_10", {"rotateCertificates": s["rotate_certificates"]}, False),
        ("cis_k8s_4_2_11", {"serverTLSBootstrap": rotate, "featureGates": {"RotateKubeletServerCertificate": rotate}}, True),
        ("cis_k8s_4_2_12", {"tlsCipherSuites": site_suites(config, env, s["tls_cipher_suites"])}, False),
        ("cis_k8s_4_2_13", {"podPidsLimit": s["pod_pids_limit"]} if pids else None, False),
        ("cis_k8s_4_2_14", {"seccompDefault": s["seccomp_default"]}, False),
    ]  # fmt: skip


def decide_settings(config, env, node, s, on, group):  # noqa: PLR0917 - the plan's inputs
    """(settings, remove, prune, notes) the selected controls want, in the role's step order."""
    settings = copy.deepcopy(s["extra_settings"] or {})
    remove, prune, notes = [], {}, []
    for ident, change, recursive in _wanted(config, env, s):
        if ident not in on or change is None:
            continue
        settings = combine(settings, change) if recursive else dict(settings, **change)
        remove.extend(OVERRIDING_FLAGS[ident])
        if ident == "cis_k8s_4_2_11":
            prune["--feature-gates"] = ["RotateKubeletServerCertificate"]
    if "cis_k8s_4_2_9" in on and "tlsCertFile" not in config and s["rotate_server_certificates"]:
        notes.insert(0, NOTE_4_2_9)
    if group:  # the steps tagged with every 4.2 setting's id
        notes.extend(_config_notes(config, env, node, s))
        if _protects(node, s):
            settings = dict(settings, protectKernelDefaults=True)
            remove.extend(OVERRIDING_FLAGS["protect_kernel_defaults"])
    return settings, remove, prune, notes


def _protects(node, s):
    """protectKernelDefaults: the kubelet then refuses to start unless the kernel already has its
    values, so "auto" turns it on only where they are all in place, never on a container host."""
    mode = s["protect_kernel_defaults"]
    if mode == "true" or mode is True:
        return True
    wanted = s["kernel_defaults"]
    return mode == "auto" and not kernel_mismatch(node, wanted) and not node.get("container")


def _config_notes(config, env, node, s):
    """What the steps run with any 4.2 setting say: an overridden node name (4.2.7 is checked
    only) and why kernel defaults are not protected."""
    notes = []
    argv = ((node.get("processes") or {}).get("kubelet") or {}).get("argv") or []
    given = [a for a in argv if str(a).startswith("--hostname-override")]
    for path, flags in _env_flags(env):
        if "--hostname-override" in flags:
            given.append("--hostname-override=%s in %s" % (flags["--hostname-override"], path))
    if given:
        notes.append(
            "The kubelet is given --hostname-override (%s): casemate leaves it, because changing a"
            " node's name makes it a new node to the cluster (its certificates and Node object"
            " carry the old one). Rejoin the node without it." % " ".join(given)
        )
    wanted = s["kernel_defaults"]
    mismatch = kernel_mismatch(node, wanted)
    container = node.get("container") or ""
    if s["protect_kernel_defaults"] == "auto" and (mismatch or container):
        if container:
            why = (
                "this host is a %s container, whose kernel settings belong to the machine"
                % container
            )
        else:
            why = "the kubelet would refuse to start, because the kernel has " + ", ".join(mismatch)
        needs = ", ".join("%s=%s" % (k, v) for k, v in wanted.items())
        notes.append(
            "protectKernelDefaults is left %s: %s. Set those sysctls (the sysctl role) on the machine\n"
            "first; the kubelet needs %s."
            % (config.get("protectKernelDefaults", "unset"), why, needs)
        )
    return notes


def env_would_change(env, remove, prune):
    """Whether kube_manifest would edit an environment file: a flag to remove is there, or a flag
    to prune is (it is then handed to kube_manifest, which judges its items itself)."""
    names = set(remove) | set(prune)
    return any(name in flags for _, flags in _env_flags(env) for name in names)


def plan(config_read, env, node, files, s, run_tags, skip_tags):  # noqa: PLR0917 - as Ansible hands them
    selected = selected_controls(list(CONTROLS), run_tags, skip_tags)
    on = set(selected)
    # the write steps are tagged with every 4.2 setting's id, as the notes are
    group = step_runs(CONFIG_IDS, run_tags, skip_tags)
    broken = [r["broken"] for r in [config_read, *env] if r.get("broken")]
    out = {
        "selected": list(selected),
        "broken": [],
        "settings": {},
        "remove": [],
        "prune": {},
        "files": [],
        "write": False,
        "pending": False,
        "apply": False,
        "health_url": "",
        "notes": [],
    }
    if broken:
        reason = "; ".join(broken)
        out["broken"] = [{"component": "kubelet", "path": s["config_path"], "broken": True,
                          "reason": reason}]  # fmt: skip
        return out
    config = config_read.get("config") or {}
    settings, remove, prune, notes = decide_settings(config, env, node, s, on, group)
    found = {}
    for entry in (files.get("loose_modes") or []) + (files.get("wrong_owners") or []):
        found.setdefault(entry.get("id"), []).append(entry)
    out["files"] = [e for ident in FILE_IDS if ident in on for e in found.get(ident, [])]
    remove = list(dict.fromkeys(remove))
    write = group and (
        deep_merge(config, settings) != config or env_would_change(env, remove, prune)
    )
    process = (node.get("processes") or {}).get("kubelet") or {}
    loaded = (files.get("loaded") or {}).get(s["service"]) or {}
    pending = group and loaded.get("loaded") is False and bool(process.get("running"))
    out.update(
        settings=settings,
        remove=remove,
        prune=prune,
        notes=notes,
        write=bool(write),
        pending=pending,
        # the steps run as one include tagged with every control of the role did: selected by
        # one, skipped by none
        apply=bool(out["files"] or write or pending) and step_runs(CONTROLS, run_tags, skip_tags),
        health_url=health_url(config),
    )
    return out


def missing_config(path):
    return (
        "%s does not exist: this role hardens a kubeadm kubelet, which keeps its settings in that"
        " KubeletConfiguration file (set kube_kubelet_config_path if it lives elsewhere)." % path
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
            "config": {"type": "dict", "required": True},
            "env": {"type": "list", "elements": "dict", "default": []},
            "node": {"type": "dict", "required": True},
            "files": {"type": "dict", "required": True},
            "settings": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    if "previous_mode" not in p["config"]:  # kube_manifest read no file
        module.fail_json(msg=missing_config(p["settings"]["config_path"]))
    decided = plan(p["config"], p["env"], p["node"], p["files"], p["settings"], p["run_tags"],
                   p["skip_tags"])  # fmt: skip
    module.exit_json(changed=False, **decided)


if __name__ == "__main__":
    main()
