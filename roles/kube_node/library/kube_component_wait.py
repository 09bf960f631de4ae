#!/usr/bin/python
"""Wait until a control plane component runs again with the new flags and answers healthy."""

DOCUMENTATION = r"""
module: kube_component_wait
short_description: Wait for a restarted component to carry the new flags and answer its health URL
description:
  - After a static pod manifest changed, the kubelet (or whatever runs the component) replaces the
    process. This waits, on the node, until a process of that name other than the previous one
    runs, carries every wanted flag and none of the removed ones, and its health URL answers 200.
  - Fails with a one-line account of what it last saw when the timeout passes. Read-only.
options:
  name: {description: "component name (basename of argv[0])", type: str, required: true}
  unit:
    description: "the component's systemd unit: its process is then the unit's MainPID while the unit is active, not any process called name (in whatever PID namespace)"
    type: str
    default: ""
  hint: {description: the expected command line (picks among several processes), type: list, elements: str, default: []}
  previous: {description: "{pid, start} of the process before the change ({} when none ran)", type: dict, default: {}}
  present: {description: "items (--name=value or --name) the new command line must contain", type: list, elements: str, default: []}
  absent: {description: flag names the new command line must not contain, type: list, elements: str, default: []}
  health_url: {description: URL that must answer 200 (TLS is not verified; it is the node's own component), type: str, default: ""}
  timeout: {description: seconds to wait, type: int, default: 120}
"""

RETURN = r"""
pid: {description: the new process id, type: int}
argv: {description: its command line, type: list}
"""

import ssl
import time
from urllib.error import HTTPError, URLError
from urllib.request import urlopen

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.kube_process import pick, processes_named, unit_process, unit_state
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.kube_process import (
        pick,
        processes_named,
        unit_process,
        unit_state,
    )


def health(url):
    if not url:
        return 200, ""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urlopen(url, timeout=5, context=context) as answer:
            return answer.getcode(), ""
    except HTTPError as exc:
        return exc.code, str(exc)
    except (URLError, OSError, ValueError) as exc:
        return 0, str(getattr(exc, "reason", exc))


def missing(argv, present, absent):
    items = set(argv[1:])
    names = {a.split("=", 1)[0] for a in argv[1:]}
    lacking = [p for p in present if p not in items]
    extra = [a for a in absent if a in names]
    return lacking, extra


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "unit": {"type": "str", "default": ""},
            "hint": {"type": "list", "elements": "str", "default": []},
            "previous": {"type": "dict", "default": {}},
            "present": {"type": "list", "elements": "str", "default": []},
            "absent": {"type": "list", "elements": "str", "default": []},
            "health_url": {"type": "str", "default": ""},
            "timeout": {"type": "int", "default": 120},
        },
        supports_check_mode=True,
    )
    p = module.params
    old = (int(p["previous"].get("pid") or 0), int(p["previous"].get("start") or 0))
    deadline = time.time() + p["timeout"]
    seen = "no %s process" % p["name"]
    healthy = 0  # consecutive healthy answers of the same process: one lucky answer is not enough
    last_pid = 0
    while True:
        if p["unit"]:
            found = unit_process(unit_state(module.run_command, p["unit"]))
            candidates = [found] if found else []
        else:
            candidates = processes_named(p["name"])
        proc = pick([c for c in candidates if (c["pid"], c["start"]) != old], p["hint"])
        if proc is None or proc["pid"] != last_pid:
            healthy = 0
        if proc is not None:
            last_pid = proc["pid"]
            lacking, extra = missing(proc["argv"], p["present"], p["absent"])
            if lacking or extra:
                seen = "pid %d runs with %s" % (
                    proc["pid"],
                    "; ".join(x for x in ("missing: " + ", ".join(lacking) if lacking else "",
                                          "still: " + ", ".join(extra) if extra else "") if x))  # fmt: skip
            else:
                code, why = health(p["health_url"])
                healthy = healthy + 1 if code == 200 else 0
                if healthy >= 2:
                    module.exit_json(changed=False, pid=proc["pid"], argv=proc["argv"])
                seen = "pid %d carries the new flags; %s answers %s" % (
                    proc["pid"], p["health_url"] or "(no health URL)", code or why)  # fmt: skip
        if time.time() >= deadline:
            module.fail_json(
                msg="%s did not come back healthy within %ds: %s" % (p["name"], p["timeout"], seen)
            )
        time.sleep(1)


if __name__ == "__main__":
    main()
