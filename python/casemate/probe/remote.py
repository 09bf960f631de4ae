# casemate probe: runs ON THE TARGET HOST in one command and prints one JSON document.
# It only reads. It must run on any python3 >= 3.6 with the standard library alone, so it is kept
# free of casemate imports and of modern syntax. REQUEST is set by the controller before sending.
# Modules only some collectors need (http.client with ssl, tarfile, datetime) are imported by those
# collectors: each module imported costs every probe run its start-up time, on every host (so the
# collectors' threads are a pool of its own, not concurrent.futures, which imports logging).
# The host readers it shares with the roles (roles/host_common/module_utils/casemate_*.py) are put
# in front of it by the controller (python/casemate/probe/collect.py: probe_script), which drops
# the `from ansible.module_utils.casemate_* import` lines below: the script is one namespace.
import glob
import grp
import json
import os
import pwd
import re
import shlex
import stat
import subprocess
import threading
import time
from queue import Queue

from ansible.module_utils.casemate_audit import binary_paths
from ansible.module_utils.casemate_engine import (
    engine_get,
    engine_open,
    engine_refusal,
    engine_socket,
)
from ansible.module_utils.casemate_host import (
    argv_of,
    environment_files,
    find_command,
    flag_value,
    gather_engines,
    listening_sockets,
    own_pid_ns,
    package_state,
    packages_state,
    parse_show,
    processes,
    read_container,
    read_os_release,
    read_sysctl,
    run_argv,
    run_command,
    systemctl_show,
    units_properties,
)
from ansible.module_utils.casemate_proof import prove
from ansible.module_utils.casemate_sshd import (
    glob_sorted,
    host_keys,
    match_entries,
    parse_effective,
    read_file,
)

REQUEST = []  # replaced by the controller: [[kind, arg], ...]
OPTIONS = {}  # replaced by the controller: {"fresh_proofs": true} runs every container proof anew
READ_LIMIT = 512 * 1024
THREADS = 8  # collectors run side by side: a round trip costs about its slowest one


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def _type(mode):
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISLNK(mode):
        return "link"
    return "other"


def c_stat(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {"path": path, "exists": False}
    except OSError as exc:
        return {"path": path, "error": "stat %s: %s" % (path, exc.strerror)}
    return {
        "path": path,
        "exists": True,
        "type": _type(st.st_mode),
        "mode": "%04o" % stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "user": _name(pwd.getpwuid, st.st_uid),
        "group": _name(grp.getgrgid, st.st_gid),
        "size": st.st_size,
    }


def _unlistable(pattern):
    """Why the directory a pattern starts from cannot be listed (glob says nothing), or None."""
    fixed = []
    for part in pattern.split("/"):
        if re.search(r"[*?[]", part):
            break
        fixed.append(part)
    base = "/".join(fixed) or "/"
    if not os.path.isdir(base):
        return None
    try:
        os.listdir(base)
    except OSError as exc:
        return "list %s: %s" % (base, exc.strerror)
    return None


def c_glob(pattern):
    err = _unlistable(pattern)
    if err:
        return {"error": err}
    return {"matches": [c_stat(p) for p in sorted(glob.glob(pattern, recursive=True))]}


def c_read_glob(pattern):
    """The content of every regular file a pattern matches, in name order (drop-in directories)."""
    err = _unlistable(pattern)
    if err:
        return {"error": err}
    return {"files": [c_read(p) for p in sorted(glob.glob(pattern)) if os.path.isfile(p)]}


def c_read(path):
    try:
        with open(path, "rb") as handle:
            data = handle.read(READ_LIMIT + 1)
    except FileNotFoundError:
        return {"path": path, "exists": False}
    except IsADirectoryError:
        return {"path": path, "error": "%s is a directory" % path}
    except OSError as exc:
        return {"path": path, "error": "read %s: %s" % (path, exc.strerror)}
    return {
        "path": path,
        "exists": True,
        "content": data[:READ_LIMIT].decode("utf-8", "replace"),
        "truncated": len(data) > READ_LIMIT,
    }


def c_proc(name, any_ns=False):
    found = processes(name, any_ns)
    if not found:
        return {"running": False}
    start, pid, argv = found[0]  # the oldest: the daemon itself, not a child it spawned
    return {"running": True, "pid": pid, "argv": argv, "count": len(found)}


def c_proc_any(name):
    return c_proc(name, any_ns=True)


UNIT_PROPS = "Id,LoadState,ActiveState,SubState,UnitFileState,FragmentPath,MainPID,DropInPaths"


UNITS_ASKED = []  # [future of units_at_once]: every unit of the request in one systemctl show


def units_at_once(names):
    """{unit: properties} of every unit in one `systemctl show` (an empty dict when systemd
    refused the lot: each unit is then asked on its own, so one bad name costs only itself)."""
    found, why = units_properties(names, [UNIT_PROPS])
    return {} if why else found


PACKAGES_ASKED = []  # [future of packages_state]: every package of the request in one dpkg-query


def c_package(name):
    asked = PACKAGES_ASKED[0].result() if PACKAGES_ASKED else {}
    return asked[name] if name in asked else package_state(name)


def c_unit(name):
    props = UNITS_ASKED[0].result().get(name) if UNITS_ASKED else None
    if props is None:
        text, why = systemctl_show(name, [UNIT_PROPS])
        if text is None:
            return {"error": why}
        props = parse_show(text)
    frag = props.get("FragmentPath") or ""
    return {
        "properties": props,
        "fragment": c_stat(frag) if frag else {"exists": False},
        "dropins": [c_stat(d) for d in (props.get("DropInPaths") or "").split()],
    }


def _env_file(path, env):
    """KEY=VALUE lines of a systemd EnvironmentFile= into `env` (quotes removed)."""
    with open(path) as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith(("#", ";")) or "=" not in line:
                continue
            key, _, value = line.partition("=")
            try:
                words = shlex.split(value)
            except ValueError:
                words = [value]
            env[key.strip()] = " ".join(words)


def _expand(argv, env):
    """systemd's expansion of ExecStart: $VAR splits into words, ${VAR} stays one word."""
    out = []
    for word in argv:
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            out.extend(env.get(whole.group(1), "").split())
            continue
        out.append(
            re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word)
        )
    return out


def unit_argv(name):
    """The command line systemd would start for a unit, or (None, reason)."""
    text, why = systemctl_show(name, ["LoadState", "ExecStart", "Environment", "EnvironmentFiles"])
    if text is None:
        return None, why
    props = parse_show(text)
    files = environment_files(text)
    if props.get("LoadState") != "loaded":
        return None, "%s is %s" % (name, props.get("LoadState") or "unknown")
    found = re.search(r"argv\[\]=(.*?) ;", props.get("ExecStart", ""))
    if not found:
        return None, "%s has no ExecStart" % name
    env = {}
    try:
        for item in shlex.split(props.get("Environment", "")):
            key, _, value = item.partition("=")
            env[key] = value
    except ValueError:
        pass
    for path in files:
        try:
            _env_file(path, env)
        except OSError:
            continue  # EnvironmentFile=-PATH: a missing file is allowed
    return _expand(found.group(1).split(), env), None


UNIT_STATE = ("LoadState", "UnitFileState", "ActiveState", "SubState")


def _unit_main_argv(name):
    """(command line of the unit's main process while the unit is active, else None; the unit's
    state properties; why systemd could not be asked, else None)."""
    text, why = systemctl_show(name, [*UNIT_STATE, "MainPID"])
    if text is None:
        return None, {}, why
    props = parse_show(text)
    state = {k: props.get(k, "") for k in UNIT_STATE}
    pid = props.get("MainPID", "")
    if props.get("ActiveState") not in ("active", "reloading") or not pid.isdigit() or pid == "0":
        return None, state, None
    return argv_of(pid) or None, state, None


def c_svc_config(arg):
    """A service's command line (the running process's, else the one its unit would start) and
    the config file that command line names with `config_flag` (else `config`). The running
    process is the unit's main process, else one of that name in our own PID namespace: a
    process of that name in a container (a pod running kind) is not this host's service. The
    unit's state goes along (a unit enabled or failed is meant to run), and `unit_error` says
    when systemd could not be asked at all."""
    spec = json.loads(arg)
    argv, state, unit_error = _unit_main_argv(spec["unit"])
    proc = {"running": True, "argv": argv} if argv else c_proc(spec["process"])
    if proc.get("running"):
        argv, source, why = proc["argv"], "process", None
    else:
        argv, why = unit_argv(spec["unit"])
        source = "unit" if argv is not None else "none"
    path = flag_value(argv, spec["config_flag"]) if argv else None
    return {
        "argv": argv or [],
        "argv_source": source,
        "argv_missing": why,
        "unit": state,
        "unit_error": unit_error,
        "config_path": path or spec["config"],
        "config_source": "flag" if path else "default",
        "config": c_read(path or spec["config"]),
    }


def _https_get(url, ca, cert=None, key=None):
    match = re.match(r"https://([^/:]+|\[[^]]+\])(?::(\d+))?(/.*)?$", url)
    if not match:
        return {"error": "not an https URL: %s" % url}
    host, port, path = match.group(1).strip("[]"), int(match.group(2) or 443), match.group(3) or "/"
    import http.client as httplib  # noqa: PLC0415 - only the TLS collector needs them
    import ssl  # noqa: PLC0415

    try:
        context = ssl.create_default_context(cafile=ca)
        if cert:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        return {"error": "TLS set-up: %s" % exc}
    conn = httplib.HTTPSConnection(host, port, timeout=5, context=context)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return {"status": resp.status, "body": resp.read(2048).decode("utf-8", "replace")}
    except (OSError, ssl.SSLError, httplib.HTTPException) as exc:
        return {"error": "%s: %s" % (type(exc).__name__, exc)}
    finally:
        conn.close()


def c_tls_auth(arg):
    """GET `url` twice: without a client certificate and with `cert`/`key`."""
    spec = json.loads(arg)
    return {
        "anonymous": _https_get(spec["url"], spec["ca"]),
        "certified": _https_get(spec["url"], spec["ca"], spec["cert"], spec["key"]),
    }


def c_manifest_ref_stat(arg):
    """stat of the path a static pod manifest gives to a flag (`- --data-dir=/var/lib/etcd`), read
    from the manifest text (the probe has no YAML parser), else of `default`."""
    spec = json.loads(arg)
    raw = c_read(spec["manifest"])
    if raw.get("error"):
        return {"error": raw["error"]}
    path, source = None, "unset"
    pattern = r"""(?m)^\s*-\s*["']?%s=([^"'\s]+)["']?\s*$""" % re.escape(spec["flag"])
    for found in re.finditer(pattern, raw.get("content") or ""):
        path, source = found.group(1), "manifest"
    if not path and spec.get("default"):
        path, source = spec["default"], "default"
    if not path:
        return {"source": "unset"}
    return {"source": source, "path": path, "stat": c_stat(path)}


# --- the docker CLI's answers, asked of the daemon directly (casemate_engine) --------------------
# The catalog's docker commands are kept as they are (they are the observations' keys and what a
# person can run to see the same); each one below is answered from the Engine API the way the CLI
# prints it. Only the daemon's plain answer is taken: whenever one request is not a 200 with JSON
# (no such object, not a swarm manager, daemon down) or the CLI would ask another daemon, the
# command itself runs, and its own output and errors are the observation, as before.
_ENGINE = {}  # path -> answer, for this one probe run: commands asking the same share one request
_ENGINE_LOCK = threading.Lock()


class _NoAnswerError(Exception):
    """A request the daemon did not answer plainly: the command runs instead."""


def _engine(sock, path):
    with _ENGINE_LOCK:
        if path in _ENGINE:
            return _ENGINE[path]
    answer = engine_get(path, sock)
    if answer is None:
        raise _NoAnswerError(path)
    with _ENGINE_LOCK:
        return _ENGINE.setdefault(path, answer)


def _go_json(value, indent=None):
    """JSON as Go writes it: compact (or indented by 4, as `docker inspect`), UTF-8 kept. The
    daemon and the CLI's `json` template function leave <, > and & as they are."""
    if indent:
        text = json.dumps(value, indent=indent, ensure_ascii=False)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _inspected(sock, paths):
    """`docker inspect` of several objects: their raw documents as one indented JSON array."""
    if not paths:
        return ""  # xargs -r: no object, no command, nothing printed
    return _go_json([_engine(sock, p) for p in paths], indent=4) + "\n"


def _image_ids(sock):
    return sorted({i["Id"] for i in _engine(sock, "/images/json")})


def _a_info_json(sock):
    return _go_json(_engine(sock, "/info")) + "\n"


def _a_server_version(sock):
    return "%s\n" % _engine(sock, "/version")["Version"]


_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _ansic(stamp):
    """An RFC 3339 time as Go's time.ANSIC shows it (in its own offset), else unchanged."""
    found = _RFC3339.match(stamp)
    if not found:
        return stamp
    import datetime  # noqa: PLC0415 - only this answer needs it

    year, month, day, hour, minute, second = (int(g) for g in found.groups()[:6])
    weekday = datetime.date(year, month, day).strftime("%w")
    return "%s %s %2d %02d:%02d:%02d %d" % (
        ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")[int(weekday)],
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[
            month - 1
        ],
        day,
        hour,
        minute,
        second,
        year,
    )


def _a_version_json(sock):
    # the CLI adds its own Client part, which no check reads: the Server part is the daemon's,
    # with the Engine's build time shown the way the CLI shows it
    server = json.loads(json.dumps(_engine(sock, "/version")))  # a copy: the answer is shared
    for component in server.get("Components") or []:
        details = component.get("Details") or {}
        if component.get("Name") == "Engine" and isinstance(details.get("BuildTime"), str):
            details["BuildTime"] = _ansic(details["BuildTime"])
    return _go_json({"Server": server}) + "\n"


def _a_bridge_options(sock):
    return _go_json(_engine(sock, "/networks/bridge")["Options"]) + "\n"


def _a_running_inspect(sock):
    ids = [c["Id"] for c in _engine(sock, "/containers/json")]
    return _inspected(sock, ["/containers/%s/json" % i for i in ids])


def _a_images_inspect(sock):
    return _inspected(sock, ["/images/%s/json" % i for i in _image_ids(sock)])


def _a_images_history(sock):
    lines = []
    for ident in _image_ids(sock):
        for layer in _engine(sock, "/images/%s/history" % ident):
            created_by = (layer.get("CreatedBy") or "").replace("\t", " ")  # as the CLI shows it
            lines.append("%s %s\n" % (ident, _go_json(created_by)))
    return "".join(lines)


def _a_container_counts(sock):
    every = _engine(sock, "/containers/json?all=1")
    return "%d containers, %d running" % (len(every), len(_engine(sock, "/containers/json")))


def _a_image_counts(sock):
    used = {c["ImageID"] for c in _engine(sock, "/containers/json?all=1")}
    return "%d images, %d in use by containers" % (len(_image_ids(sock)), len(used))


def _a_overlay_networks(sock):
    listed = _engine(sock, "/networks?filters=%7B%22driver%22%3A%5B%22overlay%22%5D%7D")
    lines = []
    for net in sorted(listed, key=lambda n: n["Name"]):
        options = _engine(sock, "/networks/%s" % net["Id"]).get("Options") or {}
        # `--opt encrypted` is stored with an empty value: the key's presence is the answer
        lines.append("%s encrypted=%s\n" % (net["Name"], "yes" if "encrypted" in options else ""))
    return "".join(lines)


ROOT_DIR_PREFIX = "d=$(docker info --format '{{.DockerRootDir}}') && "

# The catalog's (and check kinds') docker commands, each with what answers it from the daemon. A
# unit test holds every key to a command the catalog asks, so a reworded command is not silently
# left to the slow path.
ENGINE_ANSWERS = {
    "docker info --format '{{json .}}'": _a_info_json,
    "docker version --format '{{.Server.Version}}'": _a_server_version,
    "docker version --format '{{json .}}'": _a_version_json,
    "docker network inspect bridge --format '{{json .Options}}'": _a_bridge_options,
    "docker ps -q --no-trunc | xargs -r docker inspect": _a_running_inspect,
    "docker images -q --no-trunc | sort -u | xargs -r docker image inspect": _a_images_inspect,
    "docker images -q --no-trunc | sort -u | while read -r i; do docker history --no-trunc"
    ' --format "$i {{json .CreatedBy}}" "$i"; done': _a_images_history,
    'printf \'%s containers, %s running\' "$(docker ps -aq | wc -l)" "$(docker ps -q | wc -l)"': (
        _a_container_counts
    ),
    "printf '%s images, %s in use by containers' \"$(docker images -q | sort -u | wc -l)\""
    " \"$(docker ps -aq | xargs -r docker inspect --format '{{.Image}}' | sort -u | wc -l)\"": (
        _a_image_counts
    ),
    "docker network ls -q --filter driver=overlay | xargs -r docker network inspect"
    " --format '{{.Name}} encrypted={{range $k, $v := .Options}}"
    '{{if eq $k "encrypted"}}yes{{end}}{{end}}\'': _a_overlay_networks,
}


# Only a swarm manager lists the nodes or gives the unlock key. On a node its daemon says is in no
# swarm (/info: Swarm.LocalNodeState "inactive") the CLI can only print the daemon's refusal: the
# daemon is asked the CLI's own request, and its refusal is printed the way the CLI prints it. In
# any other state (a manager, a worker, a node joining, a locked one) the command itself runs.
CLI_REFUSED = "Error response from daemon: %s"


def _refused(sock, path):
    """What the CLI prints when the daemon refuses `path` on a node outside a swarm."""
    if (_engine(sock, "/info").get("Swarm") or {}).get("LocalNodeState") != "inactive":
        raise _NoAnswerError(path)
    refusal = engine_refusal(path, sock)
    if refusal is None:
        raise _NoAnswerError(path)
    return CLI_REFUSED % refusal[1]


def _r_node_list(sock):
    return {"rc": 1, "stdout": "", "stderr": _refused(sock, "/nodes") + "\n"}


def _r_unlock_key(sock):
    # `docker swarm unlock-key -q` says "could not fetch unlock key: ..."; the catalog's shell
    # passes every such failure but "no unlock key is set" on to stderr and exits 1
    said = "could not fetch unlock key: " + _refused(sock, "/swarm/unlockkey")
    if "no unlock key is set" in said:
        raise _NoAnswerError("/swarm/unlockkey")
    return {"rc": 1, "stdout": "", "stderr": said + "\n"}


# The catalog's swarm commands, each with its whole result (exit status and stderr included) on a
# node outside a swarm. A unit test holds every key to a command the catalog asks.
ENGINE_REFUSALS = {
    "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'": _r_node_list,
    "if k=$(docker swarm unlock-key -q 2>&1); then echo 'SWMKEY (set)'; else case $k in"
    " *'no unlock key is set'*) echo 'no unlock key';; *) echo \"$k\" >&2; exit 1;; esac; fi": (
        _r_unlock_key
    ),
}


def engine_answer(command):
    """{rc, stdout, stderr, api} of a docker command answered from the daemon, or None: the
    command must run (see above). `api` says the answer came from the Engine API."""
    answer = ENGINE_ANSWERS.get(command)
    refused = ENGINE_REFUSALS.get(command)
    if answer is None and refused is None and not command.startswith(ROOT_DIR_PREFIX):
        return None
    sock = engine_socket()
    if sock is None:
        return None
    try:
        if answer is not None:
            return {"rc": 0, "stdout": answer(sock), "stderr": "", "api": True}
        if refused is not None:
            return dict(refused(sock), api=True)
        root = _engine(sock, "/info")["DockerRootDir"]
    except (_NoAnswerError, KeyError, TypeError, AttributeError):
        return None
    # the rest of the command is the shell's (mountpoint): only the docker call is answered here
    res = c_cmd("d=%s && %s" % (shlex.quote(root), command[len(ROOT_DIR_PREFIX) :]))
    res["api"] = True
    return res


# --- commands that grep one program's output, the greps done here --------------------------------
# Two catalog commands keep one program's output (`c=$(PROGRAM 2>/dev/null) || exit 2`) and grep it
# once per item: for cm_host_4_14's 13 modules that is 26 greps, each in a pipeline of its own, ten
# times the CPU of modprobe itself. The probe runs the program the same way and does those greps
# here, printing what the shell prints (same exit status, nothing on stderr); the command is kept as
# it is (it is the observation's key and what a person runs to see the same). `in_probe` marks such
# an answer. tests/unit/test_probe_greps.py runs each command in sh on the same program output and
# compares; a reworded command no longer matches its key and runs in the shell as before.


def _kept_lines(argv):
    """The lines `c=$(ARGV 2>/dev/null)` keeps and `printf '%s\\n' "$c"` prints, or None when ARGV
    fails or is not found (on the shell's PATH, as the shell looks for it). Bytes are read one to
    a character, as grep reads them in the C locale."""
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("latin-1").rstrip("\n").split("\n")


def _any_line(lines, pattern):
    return any(pattern.match(line) for line in lines)


UNLOADABLE_MODULES = (
    "usb_storage firewire_ohci firewire_sbp2 dccp sctp rds tipc cramfs freevxfs hfs hfsplus jffs2"
    " udf"
).split()


def _g_modules_left_loadable(lines):
    out = []
    for module in UNLOADABLE_MODULES:
        # grep -qE "^install $m (/usr)?/bin/(false|true)$"; grep -qx "blacklist $m"
        if not _any_line(lines, re.compile(r"install %s (/usr)?/bin/(false|true)\Z" % module)):
            out.append("%s: loadable\n" % module)
        if ("blacklist %s" % module) not in lines:
            out.append("%s: not blacklisted\n" % module)
    return "".join(out)


_APT_LEFT_OUT = (
    (r'APT::Periodic::Update-Package-Lists "[1-9]', "package lists not updated daily"),
    (r'APT::Periodic::Unattended-Upgrade "[1-9]', "unattended-upgrade not run daily"),
    (
        r"Unattended-Upgrade::(Origins-Pattern|Allowed-Origins):: "
        r'".*(label=Debian-Security|-security)',
        "no security origin",
    ),
)


def _g_apt_left_out(lines):
    left = [said for pattern, said in _APT_LEFT_OUT if not _any_line(lines, re.compile(pattern))]
    return "".join("%s\n" % said for said in left)


GREPPED_ANSWERS = {
    "c=$(modprobe -c 2>/dev/null) || exit 2; for m in usb_storage firewire_ohci firewire_sbp2 dccp"
    " sctp rds tipc cramfs freevxfs hfs hfsplus jffs2 udf; do printf '%s\\n' \"$c\" | grep -qE"
    ' "^install $m (/usr)?/bin/(false|true)$" || echo "$m: loadable"; printf \'%s\\n\' "$c" |'
    ' grep -qx "blacklist $m" || echo "$m: not blacklisted"; done': (
        ["modprobe", "-c"],
        _g_modules_left_loadable,
    ),
    "c=$(apt-config dump 2>/dev/null) || exit 2; printf '%s\\n' \"$c\" | grep -q"
    ' \'^APT::Periodic::Update-Package-Lists "[1-9]\' || echo "package lists not updated daily";'
    " printf '%s\\n' \"$c\" | grep -q '^APT::Periodic::Unattended-Upgrade \"[1-9]' || echo"
    ' "unattended-upgrade not run daily"; printf \'%s\\n\' "$c" | grep -qE'
    " '^Unattended-Upgrade::(Origins-Pattern|Allowed-Origins)::"
    " \".*(label=Debian-Security|-security)'"
    ' || echo "no security origin"': (["apt-config", "dump"], _g_apt_left_out),
}


def grepped_answer(command):
    """{rc, stdout, stderr, in_probe} of a command of GREPPED_ANSWERS, else None."""
    known = GREPPED_ANSWERS.get(command)
    if known is None:
        return None
    argv, grep = known
    lines = _kept_lines(argv)
    if lines is None:
        return {"rc": 2, "stdout": "", "stderr": "", "in_probe": True}
    return {"rc": 0, "stdout": grep(lines), "stderr": "", "in_probe": True}


def c_cmd(command):
    answered = engine_answer(command)
    if answered is None:
        answered = grepped_answer(command)
    if answered is not None:
        return answered
    res = run_command(command, shell=True)
    res.pop("error", None)
    return res


def c_binary(arg):
    """The paths an audit watch of a binary must cover: `NAME[;DOCUMENTED...]` (casemate_audit)."""
    name, _, documented = arg.partition(";")
    return {"paths": binary_paths(name, [d for d in documented.split(";") if d])}


def c_proof(arg):
    """A container proof (a command that starts a throw-away container), reused while nothing it
    depends on changed (casemate_proof.py): `{"cmd", "files", "keep"}`."""
    spec = json.loads(arg)
    return prove(
        spec["cmd"],
        spec.get("files") or [],
        spec.get("keep") or "",
        fresh=bool(OPTIONS.get("fresh_proofs")),
    )


def c_ref_stat(arg):
    spec = json.loads(arg)
    proc = c_proc(spec["process"])
    path, source = None, "unset"
    if proc.get("running") and spec.get("flag"):
        path = flag_value(proc["argv"], spec["flag"])
        source = "flag" if path else source
    if not path:
        cfg = c_read(spec["config"])
        if cfg.get("error"):
            return {"error": cfg["error"]}
        try:
            doc = json.loads(cfg.get("content") or "{}") if cfg.get("exists") else {}
        except ValueError:
            return {"error": "%s is not valid JSON" % spec["config"]}
        value = doc.get(spec["key"]) if isinstance(doc, dict) else None
        if value:
            path, source = str(value), "config"
    if not path:
        return {"source": "unset"}
    return {"source": source, "path": path, "stat": c_stat(path)}


_CONTAINER_ID = re.compile(r"(?:docker[-/]|containerd[-/]|cri-containerd-)([0-9a-f]{64})")


def c_container_procs(_runtime):
    """Process names per container id, from /proc of the host (no docker exec): every process
    outside our own PID namespace whose cgroup names a container."""
    own_ns = own_pid_ns()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        base = "/proc/" + entry
        try:
            if own_ns and os.readlink(base + "/ns/pid") == own_ns:
                continue
            with open(base + "/cgroup") as handle:
                ids = _CONTAINER_ID.findall(handle.read())
            with open(base + "/comm") as handle:
                comm = handle.read().strip()
        except OSError:
            continue
        if ids:
            names = found.setdefault(ids[-1], [])
            if comm not in names:
                names.append(comm)
    return {"containers": found}


_SECRET_NAMES = re.compile(
    r"(^|/)(id_rsa|id_dsa|id_ecdsa|id_ed25519|\.env(\.[\w.-]+)?|\.netrc|\.pypirc|\.git-credentials"
    r"|\.npmrc|credentials|[^/]+\.(p12|pfx|jks|keystore))$"
)
_KEY_NAMES = re.compile(r"[^/]+\.(pem|key)$")
_CRED_DIRS = ("/.aws/credentials", "/.docker/config.json", "/.kube/config")


def _scan_layer(layer, setuid, secrets):
    for member in layer:
        name = "/" + member.name.lstrip("./")
        base = name.rsplit("/", 1)[-1]
        if base.startswith(".wh."):
            continue
        if member.isreg() and member.mode & 0o6000:
            setuid.add(name)
        if not member.isreg():
            continue
        if _SECRET_NAMES.search(name) or name.endswith(_CRED_DIRS):
            secrets.add(name)
        elif _KEY_NAMES.search(name) and member.size < 65536:
            handle = layer.extractfile(member)
            if handle is not None and b"PRIVATE KEY" in handle.read(65536):
                secrets.add(name)


def _scan_saved(stream, setuid, secrets):
    import tarfile  # noqa: PLC0415 - only the image scan needs it

    with tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            if not member.isreg() or member.size < 512 or member.name.endswith(".json"):
                continue
            handle = outer.extractfile(member)
            if handle is None:
                continue
            try:
                with tarfile.open(fileobj=handle, mode="r|*") as layer:
                    _scan_layer(layer, setuid, secrets)
            except tarfile.TarError:
                continue  # a config blob, not a layer


def _scan_image(ident, sock=None):
    """The image as `docker save` writes it, read as a stream: from the daemon (GET
    /images/ID/get, what the CLI asks) when it answers, else from the CLI."""
    setuid, secrets = set(), set()
    opened = engine_open("/images/%s/get" % ident, sock) if sock else None
    if opened is not None:
        conn, resp = opened
        try:
            _scan_saved(resp, setuid, secrets)
            resp.read()  # the rest of the tarball: a cut stream is an error, not a clean image
        except OSError as exc:  # casemate_engine.EngineError: the stream was cut
            raise RuntimeError("docker save %s failed: %s" % (ident, exc)) from None
        finally:
            conn.close()
        return sorted(setuid), sorted(secrets)
    proc = subprocess.Popen(
        ["docker", "save", ident], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _scan_saved(proc.stdout, setuid, secrets)
    finally:
        proc.stdout.close()
        proc.wait()
    if proc.returncode != 0:
        raise RuntimeError("docker save %s failed: %s" % (ident, proc.stderr.read().decode()[:200]))
    return sorted(setuid), sorted(secrets)


def c_image_files(max_mib):
    """setuid/setgid files and secret-looking files in every local image's layers, read from
    `docker save` as a stream (nothing is extracted or written)."""
    import tarfile  # noqa: PLC0415 - only the image scan needs it

    sock = engine_socket()
    listed = None
    if sock is not None:
        try:
            listed = [_engine(sock, "/images/%s/json" % i) for i in _image_ids(sock)]
            listed = [(d["Id"], d["Size"], d.get("RepoTags") or []) for d in listed]
        except (_NoAnswerError, KeyError, TypeError):
            listed = None
    if listed is None:
        listed, why = _images_by_cli()
        if why:
            return {"error": why}
    images = []
    for ident, size, tags in listed:
        entry = {"id": ident, "tags": tags, "size": int(size)}
        if int(size) > int(max_mib) * 1024 * 1024:
            entry["skipped"] = "larger than %s MiB" % max_mib
        else:
            try:
                entry["setuid"], entry["secrets"] = _scan_image(ident, sock)
            except (RuntimeError, tarfile.TarError, OSError) as exc:
                entry["error"] = "scan failed: %s" % exc  # not scanned is not found clean
        images.append(entry)
    return {"images": images}


def _images_by_cli():
    """([(id, size, tags)], None) of every local image, asked of the docker CLI, or ([], why)."""
    res = run_command(["docker", "images", "-q", "--no-trunc"])
    if res.get("error") or res["rc"] != 0:
        return [], res.get("error") or "docker images: " + res["stderr"].strip()[:200]
    idents = sorted(set(res["stdout"].split()))
    if not idents:
        return [], None
    res = run_command(
        ["docker", "image", "inspect", "--format", "{{.Id}} {{.Size}} {{json .RepoTags}}", *idents]
    )
    if res.get("error") or res["rc"] != 0:
        return [], res.get("error") or "docker image inspect: " + res["stderr"].strip()[:200]
    listed = []
    for line in res["stdout"].splitlines():
        ident, size, tags = line.split(" ", 2)
        listed.append((ident, size, json.loads(tags) or []))
    return listed, None


# --- SSH server (roles/sshd): effective configuration, host keys, listeners, packages ---------


SSHD_SEEN = {}  # config -> _sshd_read(config): sshd_effective and ssh_host_keys share one sshd -T
SSHD_LOCK = threading.Lock()


def _sshd_effective(config):
    """sshd -T: the configuration sshd would run with (drop-ins and defaults applied), read once
    per probe."""
    with SSHD_LOCK:
        if config not in SSHD_SEEN:
            SSHD_SEEN[config] = _sshd_read(config)
        return SSHD_SEEN[config]


def _sshd_read(config):
    sshd = find_command("sshd")
    if sshd is None or not os.path.exists(config):
        return {"installed": False, "config": config}
    res = run_command([sshd, "-T", "-f", config])
    if res.get("error") or res["rc"] != 0:
        said = (res.get("error") or res["stderr"]).strip().splitlines()
        return {
            "installed": True,
            "config": config,
            "error": "sshd -T failed: %s" % (" ".join(said)[:300] or "exit %s" % res["rc"]),
        }
    options = parse_effective(res["stdout"])
    out = {"installed": True, "config": config, "sshd": sshd, "options": options}
    # sshd -T leaves Match blocks out: what they set is read from the files themselves
    out["match"], out["match_error"] = [], ""
    try:
        out["match"] = match_entries(config, read_file, glob_sorted)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        out["match_error"] = "cannot read the Match blocks: %s" % exc
    files = {}
    for path in options.get("banner", []):
        if path != "none":
            try:
                files[path] = {"exists": True, "size": os.stat(path).st_size}
            except OSError as exc:
                files[path] = {"exists": False, "error": exc.strerror or str(exc)}
    out["files"] = files
    return out


def c_sshd_effective(config):
    return _sshd_effective(config)


def c_ssh_host_keys(config):
    """Every host key sshd loads (sshd -T) and every ssh_host_*_key in /etc/ssh, with its type and
    size, read from the public half (or derived with ssh-keygen -y when that is missing)."""
    eff = _sshd_effective(config)
    if not eff.get("installed") or eff.get("error"):
        return eff
    keys = host_keys(eff["options"], run_argv)
    return {"installed": True, "config": config, "keys": keys}


def c_listening(proto):
    """Listening sockets from /proc/net/tcp and tcp6 (this host's network namespace)."""
    found = listening_sockets(proto)
    for entry in found.get("sockets", []):
        del entry["inode"]  # the observation is {family, addr, port}
    return found


def c_engines(arg):
    """Evidence of a container engine: `names;patterns;path` (names and interface patterns comma
    separated). The names found as commands on `path`, those with a running process (its comm is
    the name, or starts with name-: k3s-server), and the network interfaces matching a pattern."""
    names, patterns, path = [*arg.split(";", 2), "", ""][:3]
    names = [n for n in names.split(",") if n]
    return gather_engines(names, [p for p in patterns.split(",") if p], path)


def host_facts():
    """What every check may consult: whether the host is a container ('unknown' counts as one),
    its name, kernel, our effective uid and the OS (the os-release fields it states)."""
    release = read_os_release()
    return {
        "container": read_container(),
        "hostname": os.uname()[1],
        "kernel": os.uname()[2],
        "euid": os.geteuid(),
        "os": {
            k.lower(): v for k, v in release.items() if k in ("ID", "VERSION_ID", "PRETTY_NAME")
        },
    }


COLLECTORS = {
    "stat": c_stat,
    "glob": c_glob,
    "read_glob": c_read_glob,
    "read": c_read,
    "proc": c_proc,
    "proc_any": c_proc_any,
    "svc_config": c_svc_config,
    "tls_auth": c_tls_auth,
    "manifest_ref_stat": c_manifest_ref_stat,
    "unit": c_unit,
    "sysctl": read_sysctl,
    "cmd": c_cmd,
    "binary": c_binary,
    "proof": c_proof,
    "ref_stat": c_ref_stat,
    "container_procs": c_container_procs,
    "image_files": c_image_files,
    "sshd_effective": c_sshd_effective,
    "ssh_host_keys": c_ssh_host_keys,
    "listening": c_listening,
    "package": c_package,
    "engines": c_engines,
}


def collect_one(kind, arg):
    """One collector's answer; a collector that breaks answers its error (it cannot lose the
    others)."""
    collector = COLLECTORS.get(kind)
    if collector is None:
        return {"error": "this probe has no collector %r" % kind}
    try:
        return collector(arg)
    except Exception as exc:
        return {"error": "%s: %s" % (type(exc).__name__, exc)}


class Pending(object):
    """A call a Pool runs; result() waits for it (and raises what it raised)."""

    def __init__(self, call, args):
        self.call, self.args = call, args
        self.value, self.raised = None, None
        self.done = threading.Event()

    def run(self):
        try:
            self.value = self.call(*self.args)
        except BaseException as exc:  # handed to whoever waits for the result
            self.raised = exc
        finally:
            self.done.set()

    def result(self):
        self.done.wait()
        if self.raised is not None:
            raise self.raised
        return self.value


class Pool(object):
    """`workers` threads running submitted calls in the order they came (what the probe used of
    ThreadPoolExecutor: submit, result, and waiting for every call on leaving the `with`)."""

    def __init__(self, workers):
        self.queue = Queue()
        self.threads = [threading.Thread(target=self.work) for _ in range(workers)]

    def work(self):
        while True:
            pending = self.queue.get()
            if pending is None:
                return
            pending.run()

    def submit(self, call, *args):
        pending = Pending(call, args)
        self.queue.put(pending)
        return pending

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc):
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()


def main():
    began = time.time()
    with Pool(THREADS) as pool:
        facts = pool.submit(host_facts)
        units = sorted({a for k, a in REQUEST if k == "unit"})
        if len(units) > 1:  # submitted before the unit collectors that wait for it
            UNITS_ASKED.append(pool.submit(units_at_once, units))
        packages = sorted({a for k, a in REQUEST if k == "package"})
        if len(packages) > 1:
            PACKAGES_ASKED.append(pool.submit(packages_state, packages))
        # the commands (containers started to prove seccomp, gVisor, AppArmor) and image scans
        # take longest: they start first, the quick reads fill the other threads meanwhile
        order = sorted(REQUEST, key=lambda ka: ka[0] not in ("proof", "cmd", "image_files"))
        pending = [("%s:%s" % (k, a), pool.submit(collect_one, k, a)) for k, a in order]
        data = {key: future.result() for key, future in pending}
        facts = facts.result()
    print(
        json.dumps(
            {
                "probe": 1,
                "collected_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
                "elapsed_ms": int((time.time() - began) * 1000),
                "facts": facts,
                "data": data,
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
