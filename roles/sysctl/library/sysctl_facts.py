#!/usr/bin/python
"""Read the kernel parameters casemate manages and work out the sysctl.d file and the live writes
(read-only: it changes nothing)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: sysctl_facts
short_description: Read kernel parameters and plan casemate's sysctl.d file (read-only)
options:
  wanted: {description: the keys of the controls selected in this run, type: list, elements: str, required: true}
  settings: {description: key -> hardened value for every host, type: dict, required: true}
  engine_settings: {description: key -> value where a container engine is present, type: dict, required: true}
  no_engine_settings: {description: key -> value where none is, type: dict, required: true}
  accepted: {description: key -> running values kept as they are (as strict or stricter), type: dict, required: true}
  cni_owned: {description: keys left to the CNI plugin where a kubelet is present, type: list, elements: str, required: true}
  engines: {description: commands whose presence on PATH marks a container engine host, type: list, elements: str, required: true}
  machine_wide: {description: key prefixes that belong to the whole machine inside a container, type: list, elements: str, required: true}
  path: {description: casemate's sysctl.d file, type: path, required: true}
"""

RETURN = r"""
container: {description: the container technology this host runs in, or empty, type: str}
engines: {description: the engine commands found on this host, type: list}
current: {description: key -> running value, or null where the kernel has no such key, type: dict}
content: {description: the sysctl.d file casemate wants, type: str}
existing: {description: the file's current content, or empty, type: str}
apply: {description: key=value writes the running kernel needs, type: list}
notes: {description: what is not managed here and why, one line each, type: list}
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule

SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def read_key(name):
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as handle:
            return " ".join(handle.read().split())
    except OSError:
        return None


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
            "left to the CNI plugin (a kubelet is present): %s" % ", ".join(sorted(skipped["cni"]))
        )
    if skipped["absent"]:
        notes.append("not on this kernel: %s" % ", ".join(sorted(skipped["absent"])))
    if stricter:
        notes.append("kept at the stricter running value: %s" % ", ".join(sorted(stricter)))
    return header, notes


def plan(params, container, engines, current, existing):
    """(content, apply, notes): pure, so it can be tested without a host."""
    values = dict(params["settings"])
    values.update(params["engine_settings"] if engines else params["no_engine_settings"])
    kubelet = "kubelet" in engines
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


def detect_container(module):
    rc, out, _ = module.run_command(["systemd-detect-virt", "--container"])
    return out.strip() if rc == 0 and out.strip() != "none" else ""


def main():
    module = AnsibleModule(
        argument_spec={
            "wanted": {"type": "list", "elements": "str", "required": True},
            "settings": {"type": "dict", "required": True},
            "engine_settings": {"type": "dict", "required": True},
            "no_engine_settings": {"type": "dict", "required": True},
            "accepted": {"type": "dict", "required": True},
            "cni_owned": {"type": "list", "elements": "str", "required": True},
            "engines": {"type": "list", "elements": "str", "required": True},
            "machine_wide": {"type": "list", "elements": "str", "required": True},
            "path": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    container = detect_container(module)
    engines = [e for e in p["engines"] if shutil.which(e, path=SEARCH_PATH)]
    try:
        with open(p["path"]) as handle:
            existing = handle.read()
    except OSError:
        existing = ""
    keys = set(p["wanted"]) | set(parse_file(existing))
    current = {k: read_key(k) for k in sorted(keys)}
    content, apply, notes = plan(p, container, engines, current, existing)
    module.exit_json(
        changed=False,
        container=container,
        engines=engines,
        current=current,
        content=content,
        existing=existing,
        exists=os.path.exists(p["path"]),
        apply=apply,
        notes=notes,
    )


if __name__ == "__main__":
    main()
