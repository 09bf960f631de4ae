#!/usr/bin/python
"""Read dockerd's configuration file, the running daemon's command line and what that daemon
reports it runs with, in one call, and decide what the role must do about them (read-only): the
daemon.json every control the run selects wants, which keys change, whether dockerd is reloaded or
restarted, and what the run should say."""

DOCUMENTATION = r"""
module: docker_daemon_facts
short_description: Read daemon.json and the running dockerd, and plan how to apply (read-only)
description:
  - Returns the parsed daemon.json, the command line of the docker service's main process,
    and which managed keys are already set there as flags.
  - Tells whether the running daemon has loaded daemon.json as it is now (the shared reader
    config_loaded of role host_common, plus what the daemon's Engine API reports for `docker info`
    and the default bridge, read by casemate_engine as the probe reads them), so
    a run that wrote the file and died before the restart is finished by the next run.
  - Works out which log options stay when the role sets a log driver (each driver accepts its own).
  - Decides every control of the role the run selects (its tags, from ansible_run_tags and
    ansible_skip_tags) in the same call - the merged daemon.json, the keys that change, reload or
    restart, and the notices of the run in one list (plan).
  - Fails with one line when daemon.json is not a valid JSON object, or when systemd does not know
    the service, so nothing is changed.
options:
  path: {description: daemon.json path, type: path, required: true}
  service: {description: systemd unit of the daemon, type: str, default: docker}
  flags: {description: daemon.json key -> list of dockerd flags that set it, type: dict, default: {}}
  reloadable: {description: daemon.json keys dockerd applies on reload (SIGHUP), type: list, elements: str, default: []}
  log_driver: {description: the log driver the role sets (cis_docker_2_13), type: str, default: ''}
  log_opts: {description: the site's own log options for that driver (they win), type: dict, default: {}}
  log_driver_opts: {description: log driver -> the log options it accepts, type: dict, default: {}}
  log_common_opts: {description: the log options dockerd accepts for every driver, type: list, elements: str, default: []}
  backup_dir: {description: where the role keeps its copies of daemon.json, type: path, default: ''}
  settings: {description: "the role's settings (docker_daemon_settings); without them nothing is planned", type: dict, default: {}}
  run_tags: {description: the run's --tags (ansible_run_tags), type: list, elements: str, default: [all]}
  skip_tags: {description: the run's --skip-tags (ansible_skip_tags), type: list, elements: str, default: []}
"""

RETURN = r"""
config: {description: "parsed daemon.json ({} when absent or empty)", type: dict}
exists: {description: whether daemon.json exists, type: bool}
argv: {description: "dockerd command line ([] when not running)", type: list}
flag_keys: {description: managed keys already set by a flag, type: list}
flag_values: {description: key -> list of values given by flags, type: dict}
active: {description: whether the service is active, type: bool}
installed: {description: whether systemd knows the service (its unit is loaded), type: bool}
selinux_host: {description: whether the host is of the RHEL family (SELinux's home), type: bool}
loaded: {description: "config_loaded's answer: loaded (true, false, null when not running), why, pid", type: dict}
differing: {description: "daemon.json keys the running daemon reports other values for: key -> {file, running}", type: dict}
pending: {description: "what daemon.json as found still needs: apply (bool), restart (bool), why", type: dict}
notice: {description: what the run should say about the running daemon, or empty, type: str}
dockerd: {description: the dockerd binary (the running one, else the one on PATH), type: str}
validate: {description: "whether that dockerd validates a configuration file: it accepts --validate and passes {} (Docker 23 and later)", type: bool}
log_opts: {description: "log-opts for log_driver: opts (dict, or null to leave them), remove (bool), dropped (keys), written_for (driver)", type: dict}
previous: {description: "casemate's newest copy of daemon.json in backup_dir when it holds what the running dockerd runs with, or empty", type: str}
now: {description: the host's clock when read (seconds since the epoch), type: int}
unit: {description: the service's full unit name (docker.service), type: str}
stamp: {description: "the host's UTC clock when read, as backups are named (20261205T203000Z)", type: str}
plan: {description: "merged (daemon.json to write), changed_keys, restart (bool), apply (bool), selected (ids), notices (list)", type: dict}
"""

import json
import os
import re
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        argv_of,
        config_loaded,
        file_digest,
        flag_values,
        os_family,
        os_release,
        parse_show,
        parse_unit_process,
        read_applied,
        systemctl_show,
    )
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        argv_of,
        config_loaded,
        file_digest,
        flag_values,
        os_family,
        os_release,
        parse_show,
        parse_unit_process,
        read_applied,
        systemctl_show,
    )

try:
    from ansible.module_utils.casemate_engine import engine_get, engine_socket
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_engine import (
        engine_get,
        engine_socket,
    )

try:
    from ansible.module_utils.casemate_selection import selected_controls
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
    )

# The role's controls, in the order its steps decided them (a unit test holds this to the ids the
# role's tasks are tagged with).
CONTROLS = (
    "cis_docker_2_2",
    "cis_docker_2_3",
    "cis_docker_2_4",
    "cis_docker_2_5",
    "cis_docker_2_7",
    "cis_docker_2_9",
    "cis_docker_2_10",
    "cis_docker_2_11",
    "cis_docker_2_12",
    "cis_docker_2_13",
    "cis_docker_2_14",
    "cis_docker_2_15",
    "cis_docker_2_16",
    "cis_docker_2_17",
    "cm_rt_2_2",
    "cm_rt_3_4",
    "cis_docker_2_18",
    "cm_rt_1_2",
)
TLS_FILES = ("tlscacert", "tlscert", "tlskey")
TLS_KEYS = ("tlsverify", "tlscacert", "tlscert", "tlskey")
DEFAULT_LOG_DRIVER = "json-file"
BRIDGE_ICC = "com.docker.network.bridge.enable_icc"
NO_NEW_PRIVILEGES_REPORTED = 24  # docker info lists name=no-new-privileges from Docker 24 on
BACKUP_NAME = re.compile(r"^daemon\.json\.\d{8}T\d{6}Z$")


def main_process(module, service):
    """(the command line of the service's main process, [] when none; parse_unit_process of it;
    whether systemd has loaded the unit)."""
    props = ["MainPID", "ActiveState", "LoadState", "ExecMainStartTimestampMonotonic"]
    text, _ = systemctl_show(service, props, module.run_command)
    process = parse_unit_process(text or "")
    argv = argv_of(process["pid"]) if process["pid"] else []
    return argv, process, parse_show(text or "").get("LoadState") == "loaded"


def log_opts_for(config, driver, explicit, accepts, common):
    """The log options daemon.json should carry once `driver` is the log driver: a site's own
    options (`explicit`) win; otherwise the options already there were written for the driver
    daemon.json names (json-file when none), and those `driver` does not accept (`accepts`: driver
    -> its options; `common`: those dockerd takes for every driver) are dropped. For a driver
    missing from `accepts`, options are kept only when the driver does not change."""
    old = config.get("log-driver") or DEFAULT_LOG_DRIVER
    answer = {"opts": None, "remove": False, "dropped": [], "written_for": old}
    if explicit:
        answer["opts"] = dict(explicit)
        return answer
    current = config.get("log-opts")
    if not isinstance(current, dict) or not current or driver in ("", "none"):
        return answer
    accepted = accepts.get(driver)
    if accepted is None:
        if driver == old:
            return answer
        accepted = []
    kept = {k: v for k, v in current.items() if k in accepted or k in common}
    dropped = sorted(k for k in current if k not in kept)
    if dropped:
        answer.update(opts=kept or None, remove=not kept, dropped=dropped)
    return answer


def major_version(text):
    """The major version in `dockerd --version` or a ServerVersion ('Docker version 26.1.5+dfsg1,
    build 411e817' -> 26), or 0 when there is none."""
    found = re.search(r"(\d+)\.\d+", text or "")
    return int(found.group(1)) if found else 0


def validates(dockerd, run_command):
    """Whether `dockerd` can check a configuration file before a restart: asked of the binary
    itself (`dockerd --validate --config-file F` on an empty JSON object exits 0), not read from
    its version, which builds without release metadata do not carry ('library-import', 'dev').
    Docker 20.10 refuses the flag; nothing is started either way."""
    if not dockerd:
        return False
    with tempfile.NamedTemporaryFile("w", suffix=".json") as empty:
        empty.write("{}\n")
        empty.flush()
        rc, _, _ = run_command([dockerd, "--validate", "--config-file", empty.name])
    return rc == 0


def _as_bool(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def differing_keys(config, flag_keys, info, bridge, version):
    """The daemon.json keys whose value the running daemon reports differently: key -> {'file',
    'running'}. Only what the daemon shows is compared (`docker info`, the default bridge's options);
    a key given as a flag, or one the daemon does not report, is not judged here."""
    found = {}

    def differs(key, running, want=None):
        if key in config and key not in flag_keys and running is not None:
            file_value = config[key] if want is None else want
            if file_value != running:
                found[key] = {"file": config[key], "running": running}

    if isinstance(bridge, dict) and BRIDGE_ICC in bridge:
        differs("icc", _as_bool(bridge[BRIDGE_ICC]), _as_bool(config.get("icc")))
    if not isinstance(info, dict):
        return found
    differs("live-restore", info.get("LiveRestoreEnabled"), _as_bool(config.get("live-restore")))
    differs("log-driver", info.get("LoggingDriver"))
    differs("experimental", info.get("ExperimentalBuild"), _as_bool(config.get("experimental")))
    differs("default-runtime", info.get("DefaultRuntime"))
    options = info.get("SecurityOptions")
    if isinstance(options, list):
        differs("userns-remap", "name=userns" in options, bool(config.get("userns-remap")))
        if version >= NO_NEW_PRIVILEGES_REPORTED:
            differs(
                "no-new-privileges",
                "name=no-new-privileges" in options,
                _as_bool(config.get("no-new-privileges")),
            )
        profile = config.get("seccomp-profile")
        seccomp = [o for o in options if o.startswith("name=seccomp,")]
        if isinstance(profile, str) and profile.startswith("/") and seccomp:
            differs("seccomp-profile", seccomp[0].partition("profile=")[2])
    runtimes, running = config.get("runtimes"), info.get("Runtimes")
    if isinstance(runtimes, dict) and isinstance(running, dict) and "runtimes" not in flag_keys:
        live = {name: running_runtime(running.get(name)) for name in runtimes}
        if any(not same_runtime(spec, live[name]) for name, spec in runtimes.items()):
            found["runtimes"] = {"file": runtimes, "running": live}
    return found


def same_runtime(spec, live):
    """Whether a runtime the daemon reports (`live`, or None) is the one daemon.json describes:
    the same path and arguments, where daemon.json gives them."""
    if not isinstance(live, dict):
        return False
    if not isinstance(spec, dict):
        return True
    if "path" in spec and live.get("path") != spec["path"]:
        return False
    return "runtimeArgs" not in spec or (live.get("runtimeArgs") or []) == (
        spec["runtimeArgs"] or []
    )


def running_runtime(spec):
    """A runtime as the running daemon reports it, without the status blob newer daemons add
    (None when the daemon does not know it)."""
    if not isinstance(spec, dict):
        return None
    return {k: v for k, v in spec.items() if k in ("path", "runtimeArgs")}


def plan_apply(loaded, differing, recorded, reloadable):
    """What daemon.json as found (before this run changes anything) still needs from the running
    daemon: {'apply', 'restart', 'why'}, and a notice for the run.

    - not running: nothing (a stopped daemon stays stopped; it reads the file when it starts);
    - values the daemon reports differ from the file: apply, by reload when every such key is
      one dockerd reloads and the process has loaded the file otherwise, else by restart; unless
      casemate already restarted this very process with this very content (then a restart would
      change nothing: say so, once per run, and leave it);
    - the file was written after the process started and no reload of that content is recorded:
      which keys are not in effect cannot all be seen, so restart."""
    keys = sorted(differing)
    shown = ", ".join(
        "%s (daemon.json: %s, running: %s)"
        % (k, json.dumps(differing[k]["file"]), json.dumps(differing[k]["running"]))
        for k in keys
    )
    if loaded["loaded"] is None:
        return {"apply": False, "restart": False, "why": loaded["why"]}, ""
    if keys and recorded:
        return (
            {"apply": False, "restart": False, "why": "casemate already applied this daemon.json"},
            "dockerd runs with daemon.json as casemate last applied it (pid %s) but still reports "
            "other values for %s: restarting again would not change that (with live-restore, "
            "containers still running keep the old default bridge settings until they stop)"
            % (loaded["pid"], shown),
        )
    if keys:
        restart = loaded["loaded"] is False or any(k not in reloadable for k in keys)
        why = "the running dockerd (pid %s) reports other values than daemon.json for %s" % (
            loaded["pid"],
            shown,
        )
        return {"apply": True, "restart": restart, "why": why}, ""
    if loaded["loaded"] is False:
        return {
            "apply": True,
            "restart": True,
            "why": "daemon.json is not in effect: %s" % loaded["why"],
        }, ""
    return {"apply": False, "restart": False, "why": loaded["why"]}, ""


def wanted_settings(found, settings, selected):
    """The keys the selected controls want in daemon.json (a site's extra settings first, then
    casemate's, which win), the keys to remove, the log options dropped, and the TLS warning (or
    ''). A key dockerd already gets as a flag is left to the flag: dockerd refuses a directive
    given both ways."""
    config, flags, on = found["config"], set(found["flag_keys"]), set(selected)
    wanted, drop = dict(settings.get("extra_settings") or {}), []

    def simple(control, key, value, *more):
        if control in on and key not in flags and all(more):
            wanted[key] = value

    simple("cis_docker_2_2", "icc", settings["icc"])
    simple("cis_docker_2_3", "log-level", settings["log_level"])
    simple("cis_docker_2_4", "iptables", settings["iptables"])
    simple("cis_docker_2_5", "insecure-registries", settings["insecure_registries"])
    warning = ""
    if "cis_docker_2_7" in on:
        hosts = list((found["flag_values"] or {}).get("hosts") or [])
        hosts += list(config.get("hosts") or [])
        tcp = [h for h in hosts if isinstance(h, str) and h.startswith("tcp://")]
        files = {k: settings["tls_" + k[3:]] or config.get(k, "") for k in TLS_FILES}
        if tcp and all(v != "" for v in files.values()) and not flags & set(TLS_KEYS):
            wanted.update((k, v) for k, v in files.items() if v != "")
            wanted["tlsverify"] = True
        if tcp and "tlsverify" not in wanted:
            warning = (
                "dockerd listens on TCP but the CA, certificate and key are not all known "
                "(daemon.json or docker_daemon_tls_*); TLS verification cannot be turned on and "
                "cis_docker_2_7 stays failing."
            )
    simple("cis_docker_2_9", "userns-remap", settings["userns_remap"], settings["userns_remap"])
    if "cis_docker_2_10" in on:
        drop.append("cgroup-parent")
    if "cis_docker_2_11" in on and "storage-opts" in config:
        opts = config["storage-opts"] or []
        wanted["storage-opts"] = [o for o in opts if not re.match(r"dm\.basesize=", str(o))]
    plugins = settings["authorization_plugins"]
    simple("cis_docker_2_12", "authorization-plugins", plugins, plugins)
    dropped = []
    if "cis_docker_2_13" in on and "log-driver" not in flags:
        opts = found["log_opts"]
        wanted["log-driver"] = settings["log_driver"]
        if opts["opts"]:
            wanted["log-opts"] = opts["opts"]
        if opts["remove"]:
            drop.append("log-opts")
        dropped = list(opts["dropped"])
    simple("cis_docker_2_14", "no-new-privileges", settings["no_new_privileges"])
    simple("cis_docker_2_15", "live-restore", settings["live_restore"])
    simple("cis_docker_2_16", "userland-proxy", settings["userland_proxy"])
    profile = settings["seccomp_profile"]
    if on & {"cis_docker_2_17", "cm_rt_2_2"} and profile and "seccomp-profile" not in flags:
        wanted["seccomp-profile"] = profile
    simple("cm_rt_3_4", "selinux-enabled", settings["selinux_enabled"], found["selinux_host"])
    simple("cis_docker_2_18", "experimental", settings["experimental"])
    if "cm_rt_1_2" in on and settings["runtimes"]:
        runtimes = config.get("runtimes")
        wanted["runtimes"] = dict(runtimes if isinstance(runtimes, dict) else {})
        wanted["runtimes"].update(settings["runtimes"])
    return wanted, drop, dropped, warning


def plan(found, settings, selected, reloadable):
    """What this run does to daemon.json and dockerd, for the `selected` controls: merged (the
    file to write: daemon.json as found, the wanted keys over it, the dropped keys gone),
    changed_keys (in the order the role names them), restart (else reload), apply (whether the
    write-and-apply steps run: something changes, or the running daemon still lacks the file as
    found), and notices (what the run says, in one list)."""
    config, pending = found["config"], found["pending"]
    wanted, drop, dropped, warning = wanted_settings(found, settings, selected)
    merged = dict(config)
    merged.update(wanted)
    merged = {k: v for k, v in merged.items() if k not in drop}
    changed = []
    for key in list(merged) + list(config):
        if key not in changed and merged.get(key) != config.get(key):
            changed.append(key)
    restart = bool(pending["restart"]) or any(k not in reloadable for k in changed)
    apply = bool(selected) and (bool(changed) or bool(pending["apply"]))
    notices = [found["notice"]] if found["notice"] else []
    if warning:
        notices.append(warning)
    managed = set(settings["managed"])
    skipped = [k for k in found["flag_keys"] if k in managed]
    if skipped:
        notices.append(
            "%s set by dockerd flags (%s); casemate leaves them to the flag (dockerd refuses a "
            "setting given twice) and verification judges the flag."
            % (", ".join(skipped), " ".join(found["argv"]))
        )
    if apply and pending["apply"]:
        notices.append(
            "%s: dockerd is %s%s."
            % (
                pending["why"],
                "restarted" if restart else "reloaded",
                " (this run changes %s too)" % ", ".join(changed) if changed else "",
            )
        )
    if apply and dropped:
        kept = found["log_opts"]["opts"]
        notices.append(
            "log-opts %s were written for the %s log driver and %s does not accept them: dropped "
            "from daemon.json (%s); set docker_daemon_log_opts to choose %s's own."
            % (
                ", ".join(dropped),
                found["log_opts"]["written_for"],
                settings["log_driver"],
                "kept: " + ", ".join(kept) if kept else "no log option is left",
                settings["log_driver"],
            )
        )
    return {
        "merged": merged,
        "changed_keys": changed,
        "restart": restart,
        "apply": apply,
        "selected": list(selected),
        "notices": notices,
    }


def latest_backup(directory, process, clock_offset, path, record):
    """casemate's newest copy of daemon.json in `directory` (daemon.json.<UTC stamp>) when it holds
    what the running main process (`process`) runs with: the copy was taken while that process ran
    (its ctime), of a file written before the process started (the copy keeps the file's mtime),
    or of exactly the content casemate recorded a reload of by that process (`record`). Otherwise
    ''. `clock_offset` is wall-clock minus monotonic time, in seconds."""
    try:
        names = sorted(n for n in os.listdir(directory) if BACKUP_NAME.match(n))
    except OSError:
        return ""
    if not names or not process["active"]:
        return ""
    newest = os.path.join(directory, names[-1])
    try:
        found = os.stat(newest)
    except OSError:
        return ""
    taken = (found.st_ctime - clock_offset) * 1000000
    written = (found.st_mtime - clock_offset) * 1000000
    if taken <= process["started"]:
        return ""
    if written < process["started"]:
        return newest
    reloaded = (
        record is not None
        and record.get("pid") == process["pid"]
        and record.get("started") == process["started"]
        and (record.get("files") or {}).get(path) == file_digest(newest)["sha256"]
    )
    return newest if reloaded else ""


def running_daemon(ask_cli):
    """(`docker info`, the default bridge's options) of the running daemon, each None when it
    cannot be read: asked over the Engine API the way the probe asks (casemate_engine), and of
    the docker CLI (`ask_cli(argv)`: its JSON output or None) only where that reader cannot tell
    (its rule: another daemon would be asked, no socket, no plain answer)."""
    sock = engine_socket()
    info = engine_get("/info", sock) if sock else None
    network = engine_get("/networks/bridge", sock) if sock else None
    if not isinstance(info, dict):
        info = ask_cli(["docker", "info", "--format", "{{json .}}"])
    if isinstance(network, dict) and "Options" in network:
        bridge = network["Options"]
    else:
        bridge = ask_cli(
            ["docker", "network", "inspect", "bridge", "--format", "{{json .Options}}"]
        )
    return info, bridge


def read_json(module, argv):
    if not module.get_bin_path(argv[0]):
        return None
    rc, out, _ = module.run_command(argv)
    if rc != 0:
        return None
    try:
        return json.loads(out)
    except ValueError:
        return None


def read_config(module, path):
    config, exists = {}, os.path.exists(path)
    if exists:
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError as exc:
            module.fail_json(msg="cannot read %s: %s" % (path, exc.strerror))
        if text.strip():
            try:
                config = json.loads(text)
            except ValueError as exc:
                module.fail_json(
                    msg="%s is not valid JSON (%s); refusing to change it" % (path, exc)
                )
            if not isinstance(config, dict):
                module.fail_json(msg="%s is not a JSON object; refusing to change it" % path)
    return config, exists


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "service": {"type": "str", "default": "docker"},
            "flags": {"type": "dict", "default": {}},
            "reloadable": {"type": "list", "elements": "str", "default": []},
            "log_driver": {"type": "str", "default": ""},
            "log_opts": {"type": "dict", "default": {}},
            "log_driver_opts": {"type": "dict", "default": {}},
            "log_common_opts": {"type": "list", "elements": "str", "default": []},
            "backup_dir": {"type": "path", "default": ""},
            "settings": {"type": "dict", "default": {}},
            "run_tags": {"type": "list", "elements": "str", "default": ["all"]},
            "skip_tags": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    path, service = p["path"], p["service"]
    unit = service if "." in service else service + ".service"
    config, exists = read_config(module, path)
    argv, process, installed = main_process(module, service)
    if not installed:
        module.fail_json(
            msg="%s is not installed on this host: install Docker first (the role configures a "
            "daemon, it does not install one)" % unit
        )
    given = {}
    for key, names in p["flags"].items():
        values = flag_values(argv, names)  # their types are not known here: see flag_values
        if values:
            given[key] = values
    dockerd = argv[0] if argv and argv[0].startswith("/") else module.get_bin_path("dockerd") or ""
    version = 0
    if dockerd:
        rc, out, _ = module.run_command([dockerd, "--version"])
        version = major_version(out) if rc == 0 else 0
    loaded = config_loaded(module, service, [path])
    differing = {}
    if process["active"]:
        info, bridge = running_daemon(lambda argv: read_json(module, argv))
        running_version = major_version((info or {}).get("ServerVersion", "")) or version
        differing = differing_keys(config, sorted(given), info, bridge, running_version)
    record = read_applied(service)
    recorded = (
        record is not None
        and process["active"]
        and record.get("pid") == process["pid"]
        and record.get("started") == process["started"]
        and record.get("files") == {path: file_digest(path)["sha256"]}
    )
    pending, notice = plan_apply(loaded, differing, recorded, p["reloadable"])
    if not process["active"]:
        notice = (
            "%s is not running: casemate does not start it, so daemon.json (and any change "
            "this run makes to it) is untested until it starts." % unit
        )
    found = {
        "config": config,
        "exists": exists,
        "argv": argv,
        "active": process["active"],
        "installed": installed,
        "selinux_host": bool({"rhel", "fedora", "centos"} & os_family(os_release())),
        "flag_keys": sorted(given),
        "flag_values": given,
        "loaded": loaded,
        "differing": differing,
        "pending": pending,
        "notice": notice,
        "dockerd": dockerd,
        "validate": validates(dockerd, module.run_command),
        "log_opts": log_opts_for(
            config, p["log_driver"], p["log_opts"], p["log_driver_opts"], p["log_common_opts"]
        ),
        "previous": latest_backup(
            p["backup_dir"], process, time.time() - time.monotonic(), path, record
        )
        if p["backup_dir"]
        else "",
        "now": int(time.time()),
        "unit": unit,
        "stamp": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
    }
    if p["settings"]:
        selected = selected_controls(CONTROLS, p["run_tags"], p["skip_tags"])
        found["plan"] = plan(found, p["settings"], selected, p["reloadable"])
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
