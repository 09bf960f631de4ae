"""Find a Kubernetes component's process on the node (shared by kube_node_facts and
kube_component_wait; standard library only, python3 >= 3.6)."""

# Runs on the node with its python3 like the modules in library/: no pathlib idioms, % formatting.
# ruff: noqa: PTH119, PTH123, PTH208, UP031

from __future__ import annotations

import os


def start_time(pid):
    """The process start time in clock ticks since boot (0 when unknown): with the pid it tells a
    restarted process from the old one even if the pid comes round again."""
    try:
        with open("/proc/%s/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return 0


def processes_named(name):
    """Every process whose argv[0] basename is `name`, in any PID namespace."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                raw = handle.read()
        except OSError:
            continue
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
        if argv and os.path.basename(argv[0]) == name:
            found.append({"pid": int(entry), "start": start_time(entry), "argv": argv})
    return found


def pick(candidates, hint):
    """The process sharing most flag names with the expected command line, the newest on a tie."""
    wanted = {a.split("=", 1)[0] for a in (hint or [])[1:]}

    def score(proc):
        names = {a.split("=", 1)[0] for a in proc["argv"][1:]}
        return (len(wanted & names), proc["start"])

    return max(candidates, key=score) if candidates else None
