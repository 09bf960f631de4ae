#!/usr/bin/python
"""Read the kernel parameters casemate manages and work out the sysctl.d file and the live writes
(read-only: it changes nothing). The role's one read: it also decides which keys the run selects
(the controls of its tags) and refuses an unsupported system or a plan that would write a
machine-wide parameter inside a container, before anything changes."""

DOCUMENTATION = r"""
module: sysctl_facts
short_description: Read kernel parameters and plan casemate's sysctl.d file (read-only)
options:
  controls: {description: "control id -> the keys it manages", type: dict, required: true}
  run_tags: {description: "the run's --tags (ansible_run_tags): the controls selected", type: list, elements: str, default: [all]}
  skip_tags: {description: "the run's --skip-tags (ansible_skip_tags)", type: list, elements: str, default: []}
  supported_os: {description: "os-release ID -> the VERSION_IDs the role supports; others are refused", type: dict, required: true}
  settings: {description: key -> hardened value for every host, type: dict, required: true}
  engine_settings: {description: key -> value where a container engine is present, type: dict, required: true}
  no_engine_settings: {description: key -> value where none is, type: dict, required: true}
  accepted: {description: key -> running values kept as they are (as strict or stricter), type: dict, required: true}
  cni_owned: {description: keys left to the CNI plugin where a kubelet is present, type: list, elements: str, required: true}
  engines: {description: engine names; a command on engine_path or a running process of one marks an engine host, type: list, elements: str, required: true}
  kubernetes_engines: {description: the engine names that mean Kubernetes runs here (its CNI plugin owns cni_owned), type: list, elements: str, required: true}
  engine_interfaces: {description: network interface patterns an engine creates (docker0), type: list, elements: str, required: true}
  cni_interfaces: {description: network interface patterns a Kubernetes CNI plugin creates (cni0, flannel*), type: list, elements: str, required: true}
  engine_groups: {description: inventory groups whose hosts are engine hosts, type: list, elements: str, required: true}
  kubernetes_groups: {description: inventory groups whose hosts run Kubernetes, type: list, elements: str, required: true}
  group_names: {description: this host's inventory groups, type: list, elements: str, required: true}
  engine_path: {description: where engine commands are looked for (colon separated), type: str, required: true}
  engine_host: {description: auto (decide from the evidence), true or false, type: str, required: true}
  machine_wide: {description: key prefixes that belong to the whole machine inside a container, type: list, elements: str, required: true}
  path: {description: casemate's sysctl.d file, type: path, required: true}
"""

RETURN = r"""
container: {description: the container technology this host runs in, or empty, type: str}
engines: {description: the evidence of a container engine on this host, one line each, type: list}
kubernetes: {description: whether Kubernetes runs here (its CNI plugin owns reverse-path filtering), type: bool}
revert: {description: key=value writes that put back the running values apply changes, type: list}
os: {description: ID and VERSION_ID from /etc/os-release, type: dict}
current: {description: key -> running value, or null where the kernel has no such key, type: dict}
content: {description: the sysctl.d file casemate wants, type: str}
existing: {description: the file's current content, or empty, type: str}
apply: {description: key=value writes the running kernel needs, type: list}
notes: {description: what is not managed here and why, one line each, type: list}
selected: {description: the controls of `controls` the run selects, type: list}
wanted: {description: the keys of the selected controls, type: list}
said: {description: "what the engine evidence is and what this host keeps and does not manage, one line each (the apply steps print it)", type: list}
act: {description: "whether the apply steps are to run: keys are selected and the file is not exactly the wanted content, root:root 0644, or the running kernel needs writes (false on a compliant host)", type: bool}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        evidence_of,
        gather_engines,
        os_release,
        read_container,
        sysctl_value,
        written_as,
    )
    from ansible.module_utils.casemate_selection import selected_controls
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        evidence_of,
        gather_engines,
        os_release,
        read_container,
        sysctl_value,
        written_as,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
    )


def parse_file(text):
    """key -> value of a sysctl.d file (comments and blank lines skipped)."""
    found = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        found[key.strip().lstrip("-")] = value.strip()
    return found


def _skip(params, key, container, kubelet, current):
    """Why `key` is not managed here ('machine', 'cni', 'absent'), or None."""
    if container and key.startswith(tuple(params["machine_wide"])):
        return "machine"
    if kubelet and key in params["cni_owned"]:
        return "cni"
    if current.get(key) is None:
        return "absent"
    return None


def _notes(params, found, lines, skipped, stricter):
    container, engines = found
    header = [
        "# written by casemate (sysctl role): kernel parameters for a container host; do not edit"
    ]
    notes = []
    if skipped["machine"]:
        why = (
            "this host is a %s container: kernel.*, fs.* and vm.* belong to the whole machine, and "
            "systemd-sysctl would write them for every container on it" % container
        )
        header.append("# not managed here: %s" % why)
        notes.append(
            "not managed on this host (%s): %s" % (why, ", ".join(sorted(skipped["machine"])))
        )
    kept_on = ["%s=%s" % (k, lines[k]) for k in sorted(params["engine_settings"]) if k in lines]
    if engines and kept_on:
        say = "kept for the container engine (%s): %s" % (", ".join(engines), ", ".join(kept_on))
        header.append("# " + say)
        notes.append(say)
    if skipped["cni"]:
        notes.append(
            "left to the CNI plugin (Kubernetes runs here): %s" % ", ".join(sorted(skipped["cni"]))
        )
    if skipped["absent"]:
        notes.append("not on this kernel: %s" % ", ".join(sorted(skipped["absent"])))
    if stricter:
        notes.append("kept at the stricter running value: %s" % ", ".join(sorted(stricter)))
    return header, notes


def plan(params, container, engines, current, existing, *, kubernetes=None):
    """(content, apply, notes): pure, so it can be tested without a host. `engines` is the
    evidence of a container engine (empty: none); `kubernetes` whether a kubelet or a CNI plugin
    runs here (default: a kubelet among `engines`)."""
    values = dict(params["settings"])
    values.update(params["engine_settings"] if engines else params["no_engine_settings"])
    kubelet = any("kubelet" in e for e in engines) if kubernetes is None else kubernetes
    wanted = list(dict.fromkeys(params["wanted"]))
    kept = parse_file(existing)  # keys of controls not selected in this run stay as they are
    lines, apply, stricter = {}, [], []
    skipped = {"machine": [], "cni": [], "absent": []}
    for key in list(kept) + [k for k in wanted if k not in kept]:
        if key in wanted and key not in values:
            continue  # e.g. bridge keys on a host without an engine
        why = _skip(params, key, container, kubelet, current)
        if why:
            skipped[why].append(key)
            continue
        lines[key] = str(values[key]) if key in wanted else kept[key]
        if key not in wanted or current[key] == lines[key]:
            continue
        if current[key] in [str(v) for v in params["accepted"].get(key, [])]:
            stricter.append("%s=%s" % (key, current[key]))
            continue
        apply.append("%s=%s" % (key, lines[key]))
    header, notes = _notes(params, (container, engines), lines, skipped, stricter)
    body = ["%s = %s" % (k, lines[k]) for k in sorted(lines)]
    return "\n".join(header + body) + "\n", apply, notes


def revert_of(apply, current):
    """The writes that put back what `apply` changes (the running values read before)."""
    keys = [a.partition("=")[0] for a in apply]
    return ["%s=%s" % (k, current[k]) for k in keys if current.get(k) is not None]


def engine_host(params, found):
    """(evidence of a container engine, whether Kubernetes runs here); engine_host true/false
    overrides what the host shows."""
    groups = params["group_names"]
    kube_names = [n for n in params["engines"] if n in params["kubernetes_engines"]]
    kube = evidence_of(
        found, kube_names, params["cni_interfaces"], params["kubernetes_groups"], groups
    )
    every = evidence_of(
        found,
        params["engines"],
        list(params["engine_interfaces"]) + list(params["cni_interfaces"]),
        params["engine_groups"],
        groups,
    )
    forced = str(params["engine_host"]).lower()
    if forced == "true":
        return ["sysctl_engine_host: true", *every], bool(kube)
    if forced == "false":
        return [], False
    return every, bool(kube)


def wanted_keys(controls, selected):
    """The keys of the selected controls, in the order of `controls`, each once."""
    keys = [k for ident in controls if ident in selected for k in controls[ident]]
    return list(dict.fromkeys(keys))


def unsupported(os_found, supported):
    """Why the role refuses this system, or None."""
    ident, version = os_found.get("id", ""), os_found.get("version_id", "")
    if version in [str(v) for v in supported.get(ident, [])]:
        return None
    return "%s %s is not a supported system (sysctl_supported_os: %s): nothing was changed" % (
        ident or "unknown",
        version,
        json.dumps(supported, sort_keys=True),
    )


def machine_wide_in(content, apply, prefixes):
    """The machine-wide keys a plan would write or apply (must be none inside a container)."""
    keys = [a.partition("=")[0] for a in apply]
    for raw in content.splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";")) and "=" in line:
            keys.append(line.partition("=")[0].strip())
    return sorted(k for k in set(keys) if k.startswith(tuple(prefixes)))


def act_of(wanted, file_ok, apply):
    """Whether the apply steps run: some key is selected, and the file is not yet what the role
    writes (content, root:root, 0644) or the running kernel needs writes."""
    return bool(wanted) and (not file_ok or bool(apply))


def said(engines, notes):
    """What the run says about this host: the engine evidence, then the notes."""
    head = "container engine host: " + ", ".join(engines) if engines else None
    return ([head] if head else ["no container engine on this host"]) + list(notes)


def main():
    module = AnsibleModule(
        argument_spec={
            "controls": {"type": "dict", "required": True},
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
            "supported_os": {"type": "dict", "required": True},
            "settings": {"type": "dict", "required": True},
            "engine_settings": {"type": "dict", "required": True},
            "no_engine_settings": {"type": "dict", "required": True},
            "accepted": {"type": "dict", "required": True},
            "cni_owned": {"type": "list", "elements": "str", "required": True},
            "engines": {"type": "list", "elements": "str", "required": True},
            "kubernetes_engines": {"type": "list", "elements": "str", "required": True},
            "engine_interfaces": {"type": "list", "elements": "str", "required": True},
            "cni_interfaces": {"type": "list", "elements": "str", "required": True},
            "engine_groups": {"type": "list", "elements": "str", "required": True},
            "kubernetes_groups": {"type": "list", "elements": "str", "required": True},
            "group_names": {"type": "list", "elements": "str", "required": True},
            "engine_path": {"type": "str", "required": True},
            "engine_host": {"type": "str", "required": True},
            "machine_wide": {"type": "list", "elements": "str", "required": True},
            "path": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    p = dict(module.params)
    found_os = os_release()
    refused = unsupported(found_os, p["supported_os"])
    if refused:
        module.fail_json(msg=refused)
    selected = selected_controls(list(p["controls"]), p["run_tags"], p["skip_tags"])
    p["wanted"] = wanted_keys(p["controls"], selected)
    container = read_container(module.run_command)
    found = gather_engines(
        p["engines"], list(p["engine_interfaces"]) + list(p["cni_interfaces"]), p["engine_path"]
    )
    if found.get("error"):  # never read as "no engine": that would turn forwarding off
        module.fail_json(
            msg="cannot tell whether a container engine runs here: %s" % found["error"]
        )
    engines, kubernetes = engine_host(p, found)
    try:
        with open(p["path"]) as handle:
            existing = handle.read()
    except OSError:
        existing = ""
    keys = set(p["wanted"]) | set(parse_file(existing))
    current = {k: sysctl_value(k) for k in sorted(keys)}
    content, apply, notes = plan(p, container, engines, current, existing, kubernetes=kubernetes)
    stray = machine_wide_in(content, apply, p["machine_wide"]) if container else []
    if stray:
        module.fail_json(
            msg="bug: the plan would set machine-wide parameters inside a %s container: %s"
            % (container, ", ".join(stray))
        )
    file_ok = written_as(p["path"], content, 0o644)
    module.exit_json(
        act=act_of(p["wanted"], file_ok, apply),
        said=said(engines, notes),
        selected=selected,
        wanted=p["wanted"],
        changed=False,
        container=container,
        engines=engines,
        kubernetes=kubernetes,
        revert=revert_of(apply, current),
        os=found_os,
        current=current,
        content=content,
        existing=existing,
        exists=os.path.exists(p["path"]),
        apply=apply,
        notes=notes,
    )


if __name__ == "__main__":
    main()
