"""Find a Kubernetes component's process on the node (shared by kube_node_facts and
kube_component_wait; standard library only, python3 >= 3.6)."""

# Runs on the node with its python3 like the modules in library/: no pathlib idioms, % formatting.

from __future__ import annotations

import os


def start_time(pid, proc="/proc"):
    """The process start time in clock ticks since boot (0 when unknown): with the pid it tells a
    restarted process from the old one even if the pid comes round again."""
    try:
        with open("%s/%s/stat" % (proc, pid)) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return 0


def argv_of(pid, proc="/proc"):
    """A process's command line ([] when it is gone or unreadable)."""
    try:
        with open("%s/%s/cmdline" % (proc, pid), "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def processes_named(name, proc="/proc"):
    """Every process whose argv[0] basename is `name`, in any PID namespace (static pods run in
    containers). Not for a component systemd runs: see unit_process."""
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        argv = argv_of(entry, proc)
        if argv and os.path.basename(argv[0]) == name:
            found.append({"pid": int(entry), "start": start_time(entry, proc), "argv": argv})
    return found


def unit_process(unit, proc="/proc"):
    """The main process of a systemd unit ({active_state, main_pid} as kube_node_facts reads them),
    or None when the unit is not active. Only the unit decides: a process of the same name in some
    container's PID namespace (a pod running kind, say) is not this host's service."""
    pid = int(unit.get("main_pid") or 0)
    if unit.get("active_state") not in ("active", "reloading") or pid <= 0:
        return None
    argv = argv_of(pid, proc)
    if not argv:
        return None
    return {"pid": pid, "start": start_time(pid, proc), "argv": argv}


def unit_state(run_command, name):
    """{active_state, main_pid} of a systemd unit, through AnsibleModule.run_command."""
    rc, out, _ = run_command(["systemctl", "show", name, "-p", "ActiveState,MainPID"])
    found = {"active_state": "", "main_pid": 0}
    if rc != 0:
        return found
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key == "ActiveState":
            found["active_state"] = value
        elif key == "MainPID":
            found["main_pid"] = int(value) if value.isdigit() else 0
    return found


def pick(candidates, hint):
    """The process sharing most flag names with the expected command line, the newest on a tie."""
    wanted = {a.split("=", 1)[0] for a in (hint or [])[1:]}

    def score(proc):
        names = {a.split("=", 1)[0] for a in proc["argv"][1:]}
        return (len(wanted & names), proc["start"])

    return max(candidates, key=score) if candidates else None
