"""Find a Kubernetes component's process on the node (shared by kube_node_facts and
kube_component_wait; standard library only, python3 >= 3.6). How a process, a command line and a
unit are read is the host readers' (role host_common: casemate_host.py), as verify reads them."""

# Runs on the node with its python3 like the modules in library/: no pathlib idioms, % formatting.

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        argv_of,
        parse_show,
        processes,
        start_time,
        systemctl_show,
    )
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        argv_of,
        parse_show,
        processes,
        start_time,
        systemctl_show,
    )


def processes_named(name, proc="/proc"):
    """Every process called `name` (casemate_host.processes: its comm or argv[0]'s basename), in
    any PID namespace (static pods run in containers). Not for a component systemd runs: see
    unit_process."""
    return [
        {"pid": pid, "start": start, "argv": argv}
        for start, pid, argv in processes(name, any_ns=True, proc=proc)
        if argv
    ]


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
    """{active_state, main_pid} of a systemd unit, through AnsibleModule.run_command (empty and 0
    when systemd cannot tell)."""
    text, _ = systemctl_show(name, ["ActiveState", "MainPID"], run_command)
    props = parse_show(text or "")
    pid = props.get("MainPID", "")
    return {
        "active_state": props.get("ActiveState", ""),
        "main_pid": int(pid) if pid.isdigit() else 0,
    }


def pick(candidates, hint):
    """The process sharing most flag names with the expected command line, the newest on a tie."""
    wanted = {a.split("=", 1)[0] for a in (hint or [])[1:]}

    def score(proc):
        names = {a.split("=", 1)[0] for a in proc["argv"][1:]}
        return (len(wanted & names), proc["start"])

    return max(candidates, key=score) if candidates else None
