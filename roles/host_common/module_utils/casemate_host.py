"""casemate's host readers: each fact about a host is read here, once. The roles' modules import
this file as ansible.module_utils.casemate_host (role host_common ships it), and the controller puts
its text into the probe's one remote script (python/casemate/probe/collect.py), so verify and the
roles read a host with the same code. casemate_sshd.py and casemate_audit.py are its siblings.

It runs on the host with any python3 >= 3.6 and the standard library alone: no f-strings, no
`from __future__ import annotations`, no walrus, % formatting. Every reader says beside itself what
it answers when it cannot tell. A function that runs a command takes `run`, a callable with the
convention of AnsibleModule.run_command (argv -> (rc, stdout, stderr)); the probe passes none and
gets run_argv, which runs it with subprocess."""

import fnmatch
import grp
import hashlib
import json
import os
import pwd
import re
import socket
import stat
import subprocess
import time

# --- running commands ----------------------------------------------------------------------------

SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
OUT_LIMIT = 256 * 1024


def find_command(name, path=None):
    """The executable `name` on `path` (default: $PATH), else in the sbin directories (a user's
    PATH often lacks them), else None."""
    if "/" in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    folders = (os.environ.get("PATH", "") if path is None else path).split(os.pathsep)
    for folder in folders + list(SBIN_DIRS):
        candidate = os.path.join(folder, name)
        if folder and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_command(cmd, shell=False, timeout=60):
    """{rc, stdout, stderr} of a command (stdout cut at OUT_LIMIT); with `error` when it could not
    run at all (not found: rc 127; timed out: rc -1)."""
    try:
        proc = subprocess.run(
            cmd, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout
        )
    except FileNotFoundError as exc:
        return {"error": "not found: %s" % exc.filename, "rc": 127, "stdout": "", "stderr": ""}
    except subprocess.TimeoutExpired:
        return {"error": "timed out after %s s" % timeout, "rc": -1, "stdout": "", "stderr": ""}
    return {
        "rc": proc.returncode,
        "stdout": proc.stdout[:OUT_LIMIT].decode("utf-8", "replace"),
        "stderr": proc.stderr[:4096].decode("utf-8", "replace"),
    }


def run_argv(argv):
    """run_command in AnsibleModule.run_command's convention: (rc, stdout, stderr)."""
    res = run_command(argv)
    return res["rc"], res["stdout"], res["stderr"] or res.get("error", "")


# --- is this host a container? -------------------------------------------------------------------
# Cannot tell: 'unknown', which counts as a container (the roles then leave machine-wide settings
# alone, and verify reports them not_verifiable). Any sign of a container wins over a "none".

CONTAINER_MARKERS = (("/.dockerenv", "docker"), ("/run/.containerenv", "podman"))


def classify_container(virt, markers, environ):
    """The container this host runs in ('' when none), from systemd-detect-virt's (rc, output), or
    None when it cannot run; the marker files that exist; and pid 1's container= value (None when
    unset or unreadable)."""
    rc, out = virt if virt is not None else (None, "")
    if rc == 0 and out and out != "none":
        return out
    for marker, kind in CONTAINER_MARKERS:
        if marker in markers:
            return kind
    if environ is not None:
        return environ or "container"
    if rc == 1 and out == "none":
        return ""
    return "unknown"


def pid1_container(path="/proc/1/environ"):
    """The container= value in pid 1's environment, or None when unset or unreadable."""
    try:
        with open(path, "rb") as handle:
            items = handle.read().split(b"\0")
    except OSError:
        return None
    found = None
    for item in items:
        if item.startswith(b"container="):
            found = item.split(b"=", 1)[1].decode("utf-8", "replace")
    return found


def read_container(run=None):
    """The container this host runs in: '' when it is none, 'unknown' when it cannot tell."""
    virt = None
    tool = find_command("systemd-detect-virt")
    if tool:
        rc, out, _ = (run or run_argv)([tool, "--container"])
        virt = (rc, out.strip())
    markers = [m for m, _ in CONTAINER_MARKERS if os.path.exists(m)]
    return classify_container(virt, markers, pid1_container())


# --- which OS ------------------------------------------------------------------------------------
# Cannot tell (no /etc/os-release, unreadable): every field is '' (no supported system matches).


def parse_os_release(text):
    """KEY -> value of an os-release file, quotes removed."""
    found = {}
    for line in text.splitlines():
        key, eq, value = line.strip().partition("=")
        if eq and key and not key.startswith("#"):
            found[key.strip()] = value.strip().strip("\"'")
    return found


def read_os_release(path="/etc/os-release"):
    """KEY -> value of the host's os-release file ({} when it cannot be read)."""
    try:
        with open(path) as handle:
            return parse_os_release(handle.read())
    except (OSError, UnicodeDecodeError):
        return {}


def os_release(path="/etc/os-release"):
    """{id, id_like, version_id, pretty_name} of the host ('' where the file does not say)."""
    found = read_os_release(path)
    return {k.lower(): found.get(k, "") for k in ("ID", "ID_LIKE", "VERSION_ID", "PRETTY_NAME")}


def os_family(release):
    """The distribution and those it is like ({'ubuntu', 'debian'}), from os_release()."""
    return set((release.get("id", "") + " " + release.get("id_like", "")).split())


# --- processes -----------------------------------------------------------------------------------


def own_pid_ns(proc="/proc"):
    """This process's PID namespace, or None when it cannot be read."""
    try:
        return os.readlink(proc + "/self/ns/pid")
    except OSError:
        return None


def argv_of(pid, proc="/proc"):
    """A process's command line ([] when it is gone or unreadable)."""
    try:
        with open("%s/%s/cmdline" % (proc, pid), "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def start_time(pid, proc="/proc"):
    """The process start time in clock ticks since boot (0 when unknown): with the pid it tells a
    restarted process from the old one even if the pid comes round again."""
    try:
        with open("%s/%s/stat" % (proc, pid)) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return 0


def processes(name, any_ns=False, proc="/proc"):
    """(start ticks, pid, argv) of the processes called `name` (their comm, or the basename of
    their argv[0]), oldest first. Only our own PID namespace: on a Docker host /proc also lists the
    processes of every container, their daemons included; with `any_ns`, every namespace (static
    pods run in containers). A process that goes away while it is read is left out."""
    own_ns = None if any_ns else own_pid_ns(proc)
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        base = "%s/%s" % (proc, entry)
        try:
            with open(base + "/cmdline", "rb") as handle:
                argv = [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]
            with open(base + "/comm") as handle:
                comm = handle.read().strip()
            with open(base + "/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            ns = os.readlink(base + "/ns/pid") if own_ns else None
        except OSError:
            continue
        if own_ns and ns != own_ns:
            continue
        exe = os.path.basename(argv[0]) if argv else ""
        if name in (comm, exe):
            found.append((int(fields[19]), int(entry), argv))
    return sorted(found)


# --- flags on a command line ---------------------------------------------------------------------


def flag_values(argv, names, value_type=None):
    """Every value given to any of `names` ('--icc', '-l') on a command line, in order, the way
    Go's flag parsers read it: `--name=value`, or `--name value`; a bool flag (value_type 'bool')
    given bare is 'true' and takes no separate value. Cannot tell the type (None): a bare flag
    followed by another flag, or by nothing, is a bool ('true')."""
    found = []
    args = list(argv[1:])
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if name in names:
            nxt = args[i + 1] if i + 1 < len(args) else None
            if eq:
                found.append(value)
            elif value_type == "bool" or (value_type is None and (nxt is None or nxt[:1] == "-")):
                found.append("true")
            elif nxt is not None:
                found.append(nxt)
                i += 1
        i += 1
    return found


def flag_value(argv, name):
    """The value in effect of a flag that takes one (the last given), or None."""
    values = flag_values(argv, [name], "str")
    return values[-1] if values else None


# --- systemd -------------------------------------------------------------------------------------
# Cannot tell (no systemctl, no bus, an error): systemctl_show answers None with the reason.


def parse_show(text):
    """property -> value of `systemctl show` output for one unit (the last line of a property)."""
    found = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            found[key.strip()] = value.strip()
    return found


def parse_show_units(text):
    """parse_show of each unit, in order, where `systemctl show` was given several."""
    return [parse_show(block) for block in text.strip("\n").split("\n\n")]


def environment_files(text):
    """The files of `systemctl show -p EnvironmentFiles` (one line each, flags after ' (')."""
    found = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "EnvironmentFiles" and value:
            found.append(value.rsplit(" (", 1)[0])
    return found


def systemctl_show(units, props, run=None):
    """(text, None) of `systemctl show UNITS -p PROP...`, or (None, why) when systemd could not be
    asked."""
    units = [units] if isinstance(units, str) else list(units)
    argv = ["systemctl", "show", *units]
    for prop in props:
        argv += ["-p", prop]
    rc, out, err = (run or run_argv)(argv)
    if rc != 0:
        said = (err or "").strip() or "exit %s" % rc
        return None, "systemctl show %s: %s" % (" ".join(units), said)
    return out, None


def unit_properties(unit, props, run=None):
    """(property -> value, None) of a unit, or ({}, why)."""
    text, why = systemctl_show(unit, props, run)
    return (parse_show(text), None) if text is not None else ({}, why)


def units_properties(units, props, run=None):
    """({unit: property -> value}, None) of several units in one `systemctl show`, or ({}, why).
    systemd answers a unit it does not know with LoadState=not-found."""
    units = list(units)
    if not units:
        return {}, None
    text, why = systemctl_show(units, props, run)
    if text is None:
        return {}, why
    blocks = parse_show_units(text)
    if len(blocks) != len(units):
        return {}, "systemctl show %s: %d answers for %d units" % (
            " ".join(units),
            len(blocks),
            len(units),
        )
    return {unit: blocks[i] for i, unit in enumerate(units)}, None


# --- container engines ---------------------------------------------------------------------------
# Cannot tell (the network interfaces cannot be listed): {'error': ...}; the caller says so, it
# never reads that as "no engine".


def gather_engines(names, patterns, path):
    """The evidence of a container engine: those of `names` found as commands on `path` (colon
    separated), those with a running process (its comm is the name, or starts with name-:
    k3s-server), and the network interfaces matching one of `patterns` (docker0, cni*)."""
    commands = {}
    for name in names:
        for folder in path.split(":"):
            candidate = os.path.join(folder, name)
            if folder and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                commands[name] = candidate
                break
    running = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as handle:
                comm = handle.read().strip()
        except OSError:
            continue
        running.update(n for n in names if comm == n or comm.startswith(n + "-"))
    try:
        links = os.listdir("/sys/class/net")
    except OSError as exc:
        return {"error": "cannot list /sys/class/net: %s" % exc}
    interfaces = sorted(i for i in links if any(fnmatch.fnmatchcase(i, p) for p in patterns))
    return {"commands": commands, "running": sorted(running), "interfaces": interfaces}


def evidence_of(found, names, interfaces, groups, host_groups):
    """What marks this host as running one of `names`, one line each (empty: nothing): its
    inventory groups among `groups`, then gather_engines' commands, processes and interfaces."""
    commands = found.get("commands") or {}
    out = ["group %s" % g for g in groups if g in host_groups]
    out += ["%s (%s)" % (n, commands[n]) for n in names if n in commands]
    out += ["%s (running)" % n for n in names if n in (found.get("running") or [])]
    out += [
        "%s (interface)" % i
        for i in found.get("interfaces") or []
        if any(fnmatch.fnmatchcase(str(i), p) for p in interfaces)
    ]
    return out


# --- files and sockets ----------------------------------------------------------------------------


def read_text(path):
    """A file's text, or None when it cannot be read (missing, unreadable, not text)."""
    try:
        with open(path) as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def _hex_addr(text, family):
    raw = bytes.fromhex(text)
    if family == "ipv4":
        return ".".join(str(b) for b in raw[::-1])
    return socket.inet_ntop(
        socket.AF_INET6, b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    )


def listening_sockets(proto="tcp", net="/proc/net"):
    """The listening sockets of this network namespace: {proto, sockets: [{family, addr, port,
    inode}]}, from /proc/net/PROTO and PROTO6 (a table the kernel lacks is left out). Cannot tell
    (a table that cannot be read): {'error': ...}."""
    sockets = []
    for family, table in (("ipv4", "%s/%s" % (net, proto)), ("ipv6", "%s/%s6" % (net, proto))):
        try:
            with open(table) as handle:
                rows = [line.split() for line in list(handle)[1:]]
        except FileNotFoundError:
            continue
        except OSError as exc:
            return {"error": "read %s: %s" % (table, exc.strerror)}
        for row in rows:
            if len(row) < 10 or row[3] != "0A":  # 0A: LISTEN
                continue
            addr, _, port = row[1].rpartition(":")
            sockets.append(
                {
                    "family": family,
                    "addr": _hex_addr(addr, family),
                    "port": int(port, 16),
                    "inode": row[9],
                }
            )
    return {"proto": proto, "sockets": sockets}


# --- kernel parameters ---------------------------------------------------------------------------


def read_sysctl(name):
    """{exists, value} of a kernel parameter; {exists: False} when the kernel has no such key,
    {error} when it cannot be read."""
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path) as handle:
            return {"exists": True, "value": handle.read().strip()}
    except FileNotFoundError:
        return {"exists": False}
    except OSError as exc:
        return {"error": "read %s: %s" % (path, exc.strerror)}


def sysctl_value(name):
    """A kernel parameter's value, whitespace collapsed ('1\t1' -> '1 1'), or None."""
    found = read_sysctl(name)
    return " ".join(found["value"].split()) if found.get("exists") else None


# --- packages ------------------------------------------------------------------------------------


def package_state(name, run=None):
    """Whether a package is installed, from dpkg (Debian family) or rpm: {manager, installed,
    version, status (dpkg)}. Cannot tell (neither is there): {'error': ...}."""
    run = run or run_argv
    if find_command("dpkg-query"):
        rc, out, _ = run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}|${Version}", name])
        status, _, version = out.partition("|")
        installed = rc == 0 and status.startswith("ii")
        return {
            "manager": "dpkg",
            "installed": installed,
            "status": status.strip(),
            "version": version.strip() if installed else "",
        }
    if find_command("rpm"):
        rc, out, _ = run(["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", name])
        installed = rc == 0
        return {
            "manager": "rpm",
            "installed": installed,
            "version": out.strip() if installed else "",
        }
    return {"error": "neither dpkg nor rpm is available to tell whether %s is installed" % name}


# A name dpkg-query -W matches only itself with (no glob, no :arch): one call can answer for several
_PLAIN_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]*$")


def packages_state(names, run=None):
    """{name: package_state(name)} of several packages, asked of dpkg-query in one call: each
    answer is the one its own call would give. dpkg-query prints the matches of each plain name
    (several lines for a package of several architectures, joined as its own call joins them) and
    leaves a name it does not know out (exit status 1). Names that are not plain, rpm hosts, and a
    dpkg-query that fails otherwise are asked one by one."""
    run = run or run_argv
    names = list(dict.fromkeys(names))
    plain = [n for n in names if _PLAIN_PACKAGE.match(n)]
    found = {}
    if len(plain) > 1 and find_command("dpkg-query"):
        form = "${Package}\t${db:Status-Abbrev}|${Version}\n"
        rc, out, _ = run(["dpkg-query", "-W", "-f", form, *plain])
        if rc in (0, 1):
            printed = {}
            for line in out.splitlines():
                package, tab, state = line.partition("\t")
                if tab and package in plain:
                    printed[package] = printed.get(package, "") + state
            for name in plain:
                status, _, version = printed.get(name, "").partition("|")
                installed = name in printed and status.startswith("ii")
                found[name] = {
                    "manager": "dpkg",
                    "installed": installed,
                    "status": status.strip(),
                    "version": version.strip() if installed else "",
                }
    for name in names:
        if name not in found:
            found[name] = package_state(name, run)
    return found


def packages_dry_run():
    """Whether the package manager can dry-run here (apt needs python3-apt; others always can)."""
    import importlib.util  # only this question needs it (the probe never asks it)

    return not find_command("apt-get") or importlib.util.find_spec("apt") is not None


# --- Has a running service loaded its configuration? ---------------------------------------------
# A role that writes a service's config and then dies (killed, interrupted) before the restart
# leaves a correct file and a service still running the old one; the next run must not trust "the
# file is already right". Rule: the service has loaded its files when its main process started
# after every one of them was last written, or when casemate recorded a successful reload of exactly
# this content by this very process (reloads keep the process: sshd, dockerd). Otherwise a restart
# or reload is pending. A stopped service loads nothing until it starts: "cannot tell" is reported
# as None, and the roles leave a stopped service stopped.

APPLIED_DIR = "/var/lib/casemate/applied"
UNIT_PROCESS_PROPS = ["ActiveState", "MainPID", "ExecMainStartTimestampMonotonic"]


def parse_unit_process(text):
    """{'active', 'pid', 'started'} from `systemctl show -p ...` output of UNIT_PROCESS_PROPS;
    `started` is the main process's start on CLOCK_MONOTONIC, in microseconds."""
    props = parse_show(text)
    pid = int(props["MainPID"]) if props.get("MainPID", "").isdigit() else 0
    started = props.get("ExecMainStartTimestampMonotonic", "")
    return {
        "active": props.get("ActiveState") in ("active", "reloading") and pid > 0,
        "pid": pid,
        "started": int(started) if started.isdigit() else 0,
    }


def unit_main_process(module, unit):
    """The unit's main process (see parse_unit_process), or None when systemctl cannot tell."""
    text, _ = systemctl_show(unit, UNIT_PROCESS_PROPS, module.run_command)
    return parse_unit_process(text) if text is not None else None


def file_digest(path):
    """{'exists', 'sha256', 'mtime'} of a file (mtime in wall-clock seconds)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return {"exists": False, "sha256": "", "mtime": 0.0}
    return {"exists": True, "sha256": hashlib.sha256(data).hexdigest(), "mtime": mtime}


def written_as(path, content, mode, kind="file"):
    """Whether `path` is a regular file (kind "file") holding exactly `content`, or a directory
    (kind "directory"), owned root:root with permission bits `mode` (an int): what a role's copy
    or file step would leave, so a role can skip the step. False when it cannot be read."""
    try:
        st = os.lstat(path)
    except (OSError, TypeError, ValueError):
        return False
    is_kind = stat.S_ISDIR(st.st_mode) if kind == "directory" else stat.S_ISREG(st.st_mode)
    if not is_kind or (st.st_uid, st.st_gid) != (0, 0) or stat.S_IMODE(st.st_mode) != mode:
        return False
    return kind == "directory" or same_content(path, content)


def same_content(path, content):
    """Whether the file at `path` holds `content` exactly (False when it cannot be read)."""
    if not path or content is None:
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read() == content.encode("utf-8")
    except OSError:
        return False


def exact_text(path):
    """{exists, text} of a file as a byte-exact UTF-8 text (line ends kept), as a role's editor
    reads it before it writes: exists as lstat sees it (a dangling link exists), text None when it
    exists but cannot be read as UTF-8 (a directory, unreadable, binary)."""
    if not os.path.lexists(path):
        return {"exists": False, "text": None}
    try:
        with open(path, "rb") as handle:
            return {"exists": True, "text": handle.read().decode("utf-8")}
    except (OSError, UnicodeDecodeError):
        return {"exists": True, "text": None}


def applied_record_path(unit, directory=APPLIED_DIR):
    return os.path.join(directory, unit.replace("/", "_") + ".json")


def read_applied(unit, directory=APPLIED_DIR):
    """casemate's record of the last successful apply of `unit`'s config, or None."""
    try:
        with open(applied_record_path(unit, directory)) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def judge_loaded(process, files, record, clock_offset):
    """(loaded, why): True when the running process has loaded `files` ({path: file_digest}), False
    when a restart or reload is pending, None when the service is not running. `clock_offset` is
    wall-clock minus monotonic time, in seconds (to compare mtimes with the process start)."""
    if process is None:
        return None, "systemd cannot tell whether the service runs"
    if not process["active"]:
        return None, "the service is not running"
    present = {p: f for p, f in files.items() if f["exists"]}
    newest = max(present, key=lambda p: present[p]["mtime"], default=None)
    if newest is None:
        return True, "none of its config files exists"
    written = (present[newest]["mtime"] - clock_offset) * 1000000
    if process["started"] > written:
        return True, "its main process started after its config was last written"
    if (
        record is not None
        and record.get("pid") == process["pid"]
        and record.get("started") == process["started"]
        and record.get("files") == {p: f["sha256"] for p, f in files.items()}
    ):
        return True, "casemate recorded a reload of this config by the running process"
    return False, (
        "its main process (pid %s) started before %s was last written, and no reload of that "
        "content is recorded" % (process["pid"], newest)
    )


def config_loaded(module, unit, paths, directory=APPLIED_DIR):
    """Whether `unit`'s running main process has loaded `paths`: {'loaded': True|False|None,
    'why': str, 'pid': int}. The reader every role that restarts a service decides by."""
    process = unit_main_process(module, unit)
    files = {p: file_digest(p) for p in paths}
    offset = time.time() - time.monotonic()
    loaded, why = judge_loaded(process, files, read_applied(unit, directory), offset)
    return {"loaded": loaded, "why": why, "pid": (process or {}).get("pid", 0)}


def record_applied(module, unit, paths, directory=APPLIED_DIR):
    """Record that `unit`'s running main process now runs with `paths` as they are (after a
    confirmed reload or restart). Returns (changed, record)."""
    process = unit_main_process(module, unit) or {"pid": 0, "started": 0}
    record = {
        "unit": unit,
        "pid": process["pid"],
        "started": process["started"],
        "files": {p: file_digest(p)["sha256"] for p in paths},
    }
    if read_applied(unit, directory) == record:
        return False, record
    if not module.check_mode:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        target = applied_record_path(unit, directory)
        temp = target + ".tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle, sort_keys=True)
        os.rename(temp, target)
    return True, record


# --- the user Ansible connected as ----------------------------------------------------------------

SESSION_COMMS = ("sshd", "sshd-session")


def _proc(pid, proc="/proc"):
    """(command name, parent pid, real uid) of a process."""
    with open("%s/%d/stat" % (proc, pid)) as handle:
        data = handle.read()
    comm = data[data.index("(") + 1 : data.rindex(")")]
    ppid = int(data[data.rindex(")") + 2 :].split()[1])
    uid = None
    with open("%s/%d/status" % (proc, pid)) as handle:
        for line in handle:
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
    return comm, ppid, uid


def _environ(pid, proc="/proc"):
    try:
        with open("%s/%d/environ" % (proc, pid), "rb") as handle:
            items = handle.read().split(b"\0")
    except OSError:
        return {}
    out = {}
    for item in items:
        key, _, value = item.partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return out


def find_session(start=None, proc="/proc"):
    """The SSH session this process runs under: the nearest sshd ancestor (its user process runs
    with the login user's uid) and the client address from the environment of its child.
    Cannot tell (no sshd among the parents: docker exec, a local connection, a /proc that hides
    them): {"via_ssh": False}."""
    pid, child, hops = start or os.getpid(), None, 0
    while pid > 1 and hops < 64:
        try:
            comm, ppid, uid = _proc(pid, proc)
        except (OSError, ValueError, IndexError):
            break
        if comm in SESSION_COMMS:
            try:
                user = pwd.getpwuid(uid).pw_name
            except KeyError:
                user = str(uid)
            conn = _environ(child, proc).get("SSH_CONNECTION", "").split() if child else []
            session = {"via_ssh": True, "user": user, "pid": pid}
            if len(conn) == 4:
                session.update(client_addr=conn[0], server_addr=conn[2], server_port=conn[3])
            return session
        child, pid, hops = pid, ppid, hops + 1
    return {"via_ssh": False}


def groups_of(user):
    """The names of the groups `user` is in (primary and supplementary); [] for an unknown user."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return []
    names = set()
    for gid in os.getgrouplist(user, entry.pw_gid):
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            names.add(str(gid))
    return sorted(names)


def connecting_user(start=None, proc="/proc", environ=None):
    """The user Ansible connected as, with its groups: the login user of the SSH session this
    process runs under (find_session), whatever become did after (sudo, su, doas); without an sshd
    among the parents, sudo's SUDO_USER, else this process's own user."""
    session = find_session(start, proc)
    if session["via_ssh"]:
        name = session["user"]
    else:
        name = (os.environ if environ is None else environ).get("SUDO_USER") or ""
    if not name:
        try:
            name = pwd.getpwuid(os.getuid()).pw_name
        except KeyError:
            name = str(os.getuid())
    return {"name": name, "groups": groups_of(name), "via_ssh": bool(session["via_ssh"])}
