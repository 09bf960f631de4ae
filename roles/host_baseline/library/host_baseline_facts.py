#!/usr/bin/python
"""Read what the host baseline manages: unneeded services, core dump settings, the /tmp mount,
login.defs, cron and at, the PAM stacks, key = value files (pwquality.conf, faillock.conf), the
packages its controls need, AIDE's database and the user Ansible connected as, and decide in the
same call which of the controls the run selects have something to change (read-only: it changes
nothing). It refuses, before anything changes, what the role never does: disable a unit or kernel
module the host needs, run on a system it does not support, or lock out the user Ansible connects
as. A compliant host then skips the role's steps in one."""

DOCUMENTATION = r"""
module: host_baseline_facts
short_description: Read the state the host baseline manages (read-only)
options:
  services: {description: units a container host does not need, type: list, elements: str, required: true}
  tmp_options: {description: mount options /tmp must carry where it is a mount of its own, type: list, elements: str, required: true}
  login_defs: {description: path of login.defs, type: path, required: true}
  login_defs_values: {description: "login.defs key -> value (host_baseline_login_defs)", type: dict, required: true}
  login_defs_controls: {description: control id -> the login.defs key it sets, type: dict, required: true}
  files: {description: name -> path of a file whose content the role compares (limits file, drop-ins), type: dict, required: true}
  files_wanted: {description: "name -> the content the role writes there (null: no file of casemate's)", type: dict, required: true}
  issue_files: {description: the names of files that hold the banner (cm_host_4_13), type: list, elements: str, required: true}
  modes: {description: path -> the widest mode it may have (root:root), type: dict, required: true}
  cron_allow: {description: users /etc/cron.allow must name (root always), type: list, elements: str, required: true}
  at_allow: {description: users /etc/at.allow must name (root always), type: list, elements: str, required: true}
  assign_files: {description: "name -> {path, wanted}: key = value files and the keys wanted (null: commented out)", type: dict, required: true}
  control_packages: {description: control id -> the packages it needs, type: dict, required: true}
  control_units: {description: control id -> the units that must be enabled and running, type: dict, required: true}
  unattended_upgrades: {description: whether the role manages automatic security updates (cm_host_4_21), type: bool, required: true}
  pam_profiles: {description: "casemate's pam-auth-update profiles: name -> content", type: dict, required: true}
  pam_configs: {description: the directory pam-auth-update reads profiles from, type: path, required: true}
  aide: {description: "{database, unit}: AIDE's database and the unit that builds it", type: dict, required: true}
  disabled_modules: {description: kernel modules the role makes unloadable, type: list, elements: str, required: true}
  protected_services: {description: units never disabled (a name among services refuses the run), type: list, elements: str, required: true}
  protected_modules: {description: kernel modules never disabled (a name among disabled_modules refuses the run), type: list, elements: str, required: true}
  supported_os: {description: os-release ID -> the VERSION_IDs the role supports, type: dict, required: true}
  faillock: {description: "{admin_group, deny}: whom pam_faillock never locks, and after how many failures", type: dict, required: true}
  run_tags: {description: ansible_run_tags, type: list, elements: str, required: true}
  skip_tags: {description: ansible_skip_tags, type: list, elements: str, required: true}
"""

RETURN = r"""
container: {description: the container technology this host runs in, or empty, type: str}
services: {description: the listed units that are installed and enabled or running, type: list}
coredump: {description: whether systemd-coredump is installed, type: bool}
tmp: {description: the /tmp mount, its fstab line and its systemd unit, type: dict}
login_defs: {description: exists, content and the content wanted, type: dict}
files: {description: name -> current content or null when absent, type: dict}
modes: {description: paths whose mode or owner needs fixing, with what they have, type: list}
cron: {description: whether cron and at are installed, their allow/deny files, and the allow files wanted (null when nothing is missing), type: dict}
os: {description: ID and VERSION_ID from /etc/os-release, type: dict}
assign: {description: "name -> {exists, content, new} of each key = value file", type: dict}
pam: {description: "whether pam_pwquality and pam_faillock sit where they work in Debian's common-* stacks; the profiles to write and enable", type: dict}
packages: {description: package -> installed, type: dict}
units_on: {description: the units of units_on that are installed but not enabled or not running, type: list}
aide: {description: "whether AIDE's database is built (present, not empty) and whether its unit is building it", type: dict}
connecting_user: {description: "the user Ansible connected as (the SSH session's login user, else sudo's SUDO_USER, else this process's) and its groups", type: dict}
login_wanted: {description: the login.defs keys of the selected controls and their values, type: dict}
todo: {description: the selected controls that have something to change here, in the role's order, type: list}
act: {description: whether the role has anything to do (todo is not empty), type: bool}
"""

import grp
import json
import os
import pwd
import re
import stat

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        connecting_user,
        os_release,
        package_state,
        read_container,
        read_text,
        unit_properties,
        units_properties,
    )
    from ansible.module_utils.casemate_selection import selected_controls
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        connecting_user,
        os_release,
        package_state,
        read_container,
        read_text,
        unit_properties,
        units_properties,
    )
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_selection import (
        selected_controls,
    )

TMP_UNIT = (
    "# written by casemate (host_baseline): /tmp without setuid, devices or programs; do not edit\n"
    "[Mount]\nOptions=%s\n"
)
ENABLED = ("enabled", "enabled-runtime", "linked", "linked-runtime", "alias")
RUNNING = ("active", "activating", "reloading", "refreshing")


def services(module, units):
    """The units of `units` that are installed and enabled or running, asked in one call."""
    names = [unit if "." in unit else unit + ".service" for unit in units]
    shown, why = units_properties(
        names, ["LoadState,UnitFileState,ActiveState"], module.run_command
    )
    found = []
    if why:  # systemd cannot be asked: nothing it runs can be disabled here (the probe says why)
        return found
    for name in names:
        props = shown[name]
        if props.get("LoadState") in (None, "", "not-found"):
            continue
        if props.get("UnitFileState") in ENABLED or props.get("ActiveState") in RUNNING:
            found.append(
                {
                    "unit": name,
                    "enabled": props.get("UnitFileState", ""),
                    "active": props.get("ActiveState", ""),
                }
            )
    return found


def units_off(module, units):
    """The listed units that are installed but not enabled at boot or not running, with their
    states (units not installed are left out: their package is missing)."""
    shown, why = units_properties(
        units, ["LoadState,UnitFileState,ActiveState"], module.run_command
    )
    found = []
    if why:  # systemd cannot be asked: nothing can be switched on here (the probe says why)
        return found
    for name in units:
        props = shown[name]
        if props.get("LoadState") in (None, "", "not-found"):
            continue
        enabled = props.get("UnitFileState", "")
        active = props.get("ActiveState", "")
        if enabled not in ENABLED or active not in RUNNING:
            found.append({"unit": name, "enabled": enabled, "active": active})
    return found


def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def tmp_mount(module, wanted):
    """The /tmp mount on top, its fstab line and its systemd unit file, each with what it lacks."""
    found = {"mounted": False, "options": [], "missing": [], "fstab": None, "unit": None}
    for line in (read_text("/proc/self/mountinfo") or "").splitlines():
        fields = line.split()
        if len(fields) > 6 and _unescape(fields[4]) == "/tmp" and "-" in fields[6:]:
            rest = fields[fields.index("-", 6) + 1 :]
            opts = fields[5].split(",") + (rest[2].split(",") if len(rest) > 2 else [])
            found.update(mounted=True, options=opts, fstype=rest[0] if rest else "")
    found["missing"] = [o for o in wanted if o not in found["options"]]
    for number, line in enumerate((read_text("/etc/fstab") or "").splitlines()):
        fields = line.split()
        if len(fields) >= 4 and not fields[0].startswith("#") and fields[1] == "/tmp":
            opts = fields[3].split(",")
            lacking = [o for o in wanted if o not in opts]
            new = [*fields[:3], ",".join(opts + lacking), *fields[4:]]
            found["fstab"] = {
                "line": line,
                "number": number,
                "missing": lacking,
                "new": "\t".join(new),
            }
    props, _ = unit_properties("tmp.mount", ["FragmentPath"], module.run_command)
    fragment = props.get("FragmentPath", "")
    if fragment and os.path.exists(fragment):
        opts = []
        for line in (read_text(fragment) or "").splitlines():
            if line.strip().startswith("Options="):
                opts = [o for o in line.strip()[len("Options=") :].split(",") if o]
        lacking = [o for o in wanted if o not in opts]
        found["unit"] = {
            "fragment": fragment,
            "missing": lacking,
            "options": ",".join(opts + lacking),
            "wanted": TMP_UNIT % ",".join(opts + lacking),  # casemate's drop-in
        }
    return found


def login_defs(path, wanted):
    """login.defs with each wanted key set once (on its first active line; later duplicates become
    comments, since PAM reads the first and shadow the last), missing keys appended."""
    text = read_text(path)
    if text is None:
        return {"exists": False, "content": "", "new": ""}
    out, done = [], set()
    for line in text.splitlines():
        words = line.split()
        key = words[0] if words and not words[0].startswith("#") else ""
        if key in wanted:
            if key in done:
                out.append("# " + line + "  (casemate: set above)")
                continue
            done.add(key)
            out.append(
                "%s\t%s" % (key, wanted[key]) if " ".join(words[1:]) != str(wanted[key]) else line
            )
            continue
        out.append(line)
    missing = [k for k in sorted(wanted) if k not in done]
    if missing:
        out.append("# set by casemate")
        out.extend("%s\t%s" % (k, wanted[k]) for k in missing)
    new = "\n".join(out) + ("\n" if text.endswith("\n") or missing else "")
    return {"exists": True, "content": text, "new": new}


def assign_file(path, wanted, sep=" = "):
    """A `key = value` file (pwquality.conf, faillock.conf) with each wanted key set once on its
    first active line (later duplicates and keys wanted None become comments: these readers take
    the last), missing keys appended."""
    text = read_text(path)
    out, done = [], set()
    for line in (text or "").splitlines():
        active = line.split("#", 1)[0].strip()
        key = re.split(r"[\s=]", active, maxsplit=1)[0] if active else ""
        if key not in wanted:
            out.append(line)
        elif wanted[key] is None or key in done:
            out.append("# " + line + "  (casemate: %s)" % ("set above" if key in done else "off"))
        else:
            done.add(key)
            mine = "%s%s%s" % (key, sep, wanted[key])
            same = re.sub(r"\s*=\s*|\s+", "=", active, count=1) == "%s=%s" % (key, wanted[key])
            out.append(line if same else mine)
    missing = [k for k in sorted(wanted) if k not in done and wanted[k] is not None]
    if missing:
        out.append("# set by casemate")
        out.extend("%s%s%s" % (k, sep, wanted[k]) for k in missing)
    new = "\n".join(out) + ("\n" if out and ((text or "").endswith("\n") or missing) else "")
    return {"exists": text is not None, "content": text or "", "new": new}


PAM_STACKS = {
    "auth": "/etc/pam.d/common-auth",
    "account": "/etc/pam.d/common-account",
    "password": "/etc/pam.d/common-password",
}


def pam_lines(text, kind):
    """The active lines of one PAM type as (module, args): a [control ...] may hold spaces."""
    out = []
    for raw in (text or "").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith(kind) or line[len(kind) : len(kind) + 1] not in (" ", "\t"):
            continue
        rest = line[len(kind) :].strip()
        if rest.startswith("["):
            rest = rest[rest.find("]") + 1 :] if "]" in rest else ""
        else:
            rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
        words = rest.split()
        if words:
            out.append((os.path.basename(words[0]), words[1:]))
    return out


def pam_plan(state, selected, profiles, directory):
    """What pam-auth-update must enable for the selected controls: Debian's pwquality profile
    where pam_pwquality is not in the stack (cm_host_4_17), casemate's faillock profiles where
    pam_faillock is not where it works or a profile differs from casemate's (cm_host_4_18)."""
    write = [n for n in sorted(profiles) if read_text(os.path.join(directory, n)) != profiles[n]]
    enable = []
    if "cm_host_4_17" in selected and not state["pwquality"]:
        enable.append("pwquality")
    if "cm_host_4_18" in selected and (write or not state["faillock"]):
        enable.extend(sorted(profiles))
    return {"enable": enable, "write": write if "cm_host_4_18" in selected else []}


def pam_state(texts):
    """Whether pam_pwquality checks a new password before pam_unix stores it, and whether
    pam_faillock refuses locked accounts before pam_unix (preauth), counts its failures after it
    (authfail) and clears the count in the account stack."""
    auth = pam_lines(texts.get("auth"), "auth")
    names = [m for m, _ in auth]
    unix = names.index("pam_unix.so") if "pam_unix.so" in names else -1
    pre = [i for i, (m, a) in enumerate(auth) if m == "pam_faillock.so" and "preauth" in a]
    fail = [i for i, (m, a) in enumerate(auth) if m == "pam_faillock.so" and "authfail" in a]
    account = [m for m, _ in pam_lines(texts.get("account"), "account")]
    password = [m for m, _ in pam_lines(texts.get("password"), "password")]
    quality = password.index("pam_pwquality.so") if "pam_pwquality.so" in password else -1
    return {
        "pwquality": 0 <= quality < [*password, "pam_unix.so"].index("pam_unix.so"),
        "faillock": unix >= 0
        and any(i < unix for i in pre)
        and any(i > unix for i in fail)
        and "pam_faillock.so" in account,
    }


def aide_state(database, unit, run):
    """Whether AIDE's database is built (a file that is not empty: aideinit copies it in whole)
    and whether `unit` is building it now (systemd cannot be asked: not building)."""
    try:
        built = os.stat(database).st_size > 0
    except OSError:
        built = False
    props, _ = unit_properties(unit, ["ActiveState"], run)
    return {"database": built, "building": props.get("ActiveState") in RUNNING}


def mode_fixes(modes):
    fixes = []
    for path, limit in sorted(modes.items()):
        try:
            st = os.stat(path)
        except OSError:
            continue
        mode = stat.S_IMODE(st.st_mode)
        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            owner, group = str(st.st_uid), str(st.st_gid)
        if mode & ~int(str(limit), 8) or (owner, group) != ("root", "root"):
            fixes.append(
                {
                    "path": path,
                    "mode": "%04o" % mode,
                    "owner": owner,
                    "group": group,
                    # the current mode without the bits the limit forbids
                    "fixed": "%04o" % (mode & int(str(limit), 8)),
                    "dir": stat.S_ISDIR(st.st_mode),
                }
            )
    return fixes


def allow_file(existing, users):
    """An allow file (cron.allow, at.allow) naming root and `users`, each line kept and the missing
    names appended on lines of their own; None when the file exists and names them all."""
    want = list(dict.fromkeys(["root", *users]))
    have = [line.strip() for line in (existing or "").splitlines()]
    missing = [u for u in want if u not in have]
    if existing is not None and not missing:
        return None
    text = existing or ""
    if text and not text.endswith("\n"):
        text += "\n"  # a last line without its newline must not swallow the first added name
    return text + "".join(u + "\n" for u in missing)


CONTROLS = ["cm_host_4_%d" % n for n in range(1, 23) if n != 6]
LOGIN_DEFS = ["cm_host_4_5", "cm_host_4_7", "cm_host_4_8", "cm_host_4_15", "cm_host_4_16"]
CRON_DIRS = re.compile(r"^/etc/cron[.](d|[a-z]+ly)$")


def _service_name(unit):
    return unit if "." in unit else unit + ".service"


def _module_name(name):
    return name.replace("-", "_")


def _intersect(names, kept):
    """The names also in `kept`, in their order, each once (Jinja's intersect)."""
    return [n for n in dict.fromkeys(names) if n in kept]


def refusal(p, os_found, selected, user):
    """Why the role must not run here, or "": a protected unit or kernel module to disable, a
    system it does not support, or (cm_host_4_18 selected) a connecting user pam_faillock could
    lock out. Each message as the role's former preflight asserts said it."""
    services = _intersect([_service_name(u) for u in p["services"]], p["protected_services"])
    if services:
        return (
            "host_baseline_disabled_services names %s: casemate never disables SSH, the container "
            "engines, the kubelet, etcd, cron or systemd's network services" % ", ".join(services)
        )
    modules = _intersect(
        [_module_name(m).lower() for m in p["disabled_modules"]],
        [_module_name(m) for m in p["protected_modules"]],
    )
    if modules:
        return (
            "host_baseline_disabled_modules names %s: casemate never disables kernel modules the "
            "container engines or Kubernetes networking need" % ", ".join(modules)
        )
    why = unsupported(os_found, p["supported_os"])
    if why:
        return why
    group = p["faillock"]["admin_group"]
    if "cm_host_4_18" in selected and user["name"] != "root" and group not in user["groups"]:
        return (
            "nothing changed: %s, the user Ansible connects as, is not in "
            "host_baseline_faillock_admin_group (%s): pam_faillock would lock it out of sudo after "
            "%s failed passwords. Add it to that group or name one it is in."
            % (user["name"], group, p["faillock"]["deny"])
        )
    return ""


def unsupported(os_found, supported):
    """Why the role refuses this system, or None."""
    ident, version = os_found.get("id") or "", os_found.get("version_id") or ""
    if version in supported.get(ident, []):
        return None
    return (
        "%s %s is not a supported system (host_baseline_supported_os: %s): nothing was changed"
        % (
            ident or "unknown",
            version,
            json.dumps(supported),
        )
    )


def login_wanted(values, controls, selected):
    """The login.defs keys of the selected controls, with their values."""
    return {key: values[key] for ident, key in controls.items() if ident in selected}


def _tmp_todo(tmp, dropin):
    if not tmp["mounted"]:
        return False
    fstab, unit = tmp.get("fstab"), tmp.get("unit")
    if fstab is not None and fstab["missing"]:
        return True
    if (
        fstab is None
        and unit is not None
        and unit["missing"]
        and dropin != TMP_UNIT % unit["options"]
    ):
        return True
    return bool(tmp["missing"])


def todo(found, p, selected, check_mode):
    """The selected controls that have something to change on this host (what the role's steps
    would not skip), in the role's order."""
    files, wanted, cron, assign = found["files"], p["files_wanted"], found["cron"], found["assign"]
    modes = [m["path"] for m in found["modes"]]

    def missing(ident):
        return any(not found["packages"].get(n) for n in p["control_packages"].get(ident, []))

    def units(ident):
        return any(u["unit"] in p["control_units"].get(ident, []) for u in found["units_on"])

    login = (
        found["login_defs"]["exists"]
        and found["login_defs"]["new"] != found["login_defs"]["content"]
    )
    # a step tagged with several ids is skipped when --skip-tags names any of them: login.defs is
    # written by one step of the five login controls, the PAM stacks by one of cm_host_4_17/4_18
    skipped = set(p["skip_tags"])
    login = login and not skipped & set(LOGIN_DEFS)
    pam = bool(found["pam"]["enable"]) and not skipped & {"cm_host_4_17", "cm_host_4_18"}
    aide = found["aide"]
    needs = {
        "cm_host_4_1": bool(found["services"]),
        "cm_host_4_2": files["limits"] != wanted["limits"],
        "cm_host_4_3": found["coredump"] and files["coredump"] != wanted["coredump"],
        "cm_host_4_4": _tmp_todo(found["tmp"], files["tmp_dropin"]),
        "cm_host_4_9": "/etc/crontab" in modes,
        "cm_host_4_10": any(CRON_DIRS.match(m) for m in modes),
        "cm_host_4_11": cron["cron"]
        and (
            cron["cron_allow_new"] is not None
            or "/etc/cron.allow" in modes
            or cron["cron_deny"] is not None
        ),
        "cm_host_4_12": cron["at"]
        and (
            cron["at_allow_new"] is not None
            or "/etc/at.allow" in modes
            or cron["at_deny"] is not None
        ),
        "cm_host_4_13": any(files[n] != wanted["issue"] for n in p["issue_files"]),
        "cm_host_4_14": files["modprobe"] != wanted["modprobe"],
        "cm_host_4_17": missing("cm_host_4_17")
        or pam
        or assign["pwquality"]["new"] != assign["pwquality"]["content"],
        "cm_host_4_18": pam or assign["faillock"]["new"] != assign["faillock"]["content"],
        "cm_host_4_19": missing("cm_host_4_19") or units("cm_host_4_19"),
        "cm_host_4_20": missing("cm_host_4_20")
        or units("cm_host_4_20")
        or assign["sysstat"]["new"] != assign["sysstat"]["content"],
        "cm_host_4_21": p["unattended_upgrades"]
        and (
            missing("cm_host_4_21")
            or units("cm_host_4_21")
            or files["apt_updates"] != wanted["apt_updates"]
        ),
        "cm_host_4_22": missing("cm_host_4_22")
        or units("cm_host_4_22")
        or files["aide_rules"] != wanted["aide_rules"]
        or not (check_mode or aide["database"] or aide["building"]),
    }
    needs.update((ident, login) for ident in LOGIN_DEFS)
    return [ident for ident in selected if needs[ident]]


def main():
    module = AnsibleModule(
        argument_spec={
            "services": {"type": "list", "elements": "str", "required": True},
            "tmp_options": {"type": "list", "elements": "str", "required": True},
            "login_defs": {"type": "path", "required": True},
            "login_defs_values": {"type": "dict", "required": True},
            "login_defs_controls": {"type": "dict", "required": True},
            "files": {"type": "dict", "required": True},
            "files_wanted": {"type": "dict", "required": True},
            "issue_files": {"type": "list", "elements": "str", "required": True},
            "modes": {"type": "dict", "required": True},
            "cron_allow": {"type": "list", "elements": "str", "required": True},
            "at_allow": {"type": "list", "elements": "str", "required": True},
            "assign_files": {"type": "dict", "required": True},
            "control_packages": {"type": "dict", "required": True},
            "control_units": {"type": "dict", "required": True},
            "unattended_upgrades": {"type": "bool", "required": True},
            "pam_profiles": {"type": "dict", "required": True},
            "pam_configs": {"type": "path", "required": True},
            "aide": {"type": "dict", "required": True},
            "disabled_modules": {"type": "list", "elements": "str", "required": True},
            "protected_services": {"type": "list", "elements": "str", "required": True},
            "protected_modules": {"type": "list", "elements": "str", "required": True},
            "supported_os": {"type": "dict", "required": True},
            "faillock": {"type": "dict", "required": True},
            "run_tags": {"type": "list", "elements": "str", "required": True},
            "skip_tags": {"type": "list", "elements": "str", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    selected = selected_controls(CONTROLS, p["run_tags"], p["skip_tags"])
    user = connecting_user()
    found_os = os_release()
    refused = refusal(p, found_os, selected, user)
    if refused:
        module.fail_json(msg=refused)
    cron = {
        "cron": any(os.access(b, os.X_OK) for b in ("/usr/sbin/cron", "/usr/sbin/crond")),
        "at": os.access("/usr/bin/at", os.X_OK),
    }
    for name in ("cron.allow", "cron.deny", "at.allow", "at.deny"):
        cron[name.replace(".", "_")] = read_text("/etc/" + name)
    cron["cron_allow_new"] = allow_file(cron["cron_allow"], p["cron_allow"])
    cron["at_allow_new"] = allow_file(cron["at_allow"], p["at_allow"])
    pam = pam_state({kind: read_text(path) for kind, path in PAM_STACKS.items()})
    wanted_login = login_wanted(p["login_defs_values"], p["login_defs_controls"], selected)
    units_on = [u for ident in selected for u in p["control_units"].get(ident, [])]
    found = {
        "container": read_container(module.run_command),
        "services": services(module, p["services"]),
        "coredump": any(
            os.access(b, os.X_OK)
            for b in ("/lib/systemd/systemd-coredump", "/usr/lib/systemd/systemd-coredump")
        ),
        "tmp": tmp_mount(module, p["tmp_options"]),
        "login_defs": login_defs(p["login_defs"], wanted_login),
        "files": {name: read_text(path) for name, path in p["files"].items()},
        "modes": mode_fixes(p["modes"]),
        "cron": cron,
        "os": found_os,
        "assign": {
            name: assign_file(spec["path"], spec["wanted"], spec.get("sep", " = "))
            for name, spec in p["assign_files"].items()
        },
        "pam": dict(pam, **pam_plan(pam, selected, p["pam_profiles"], p["pam_configs"])),
        "packages": {
            name: package_state(name, module.run_command).get("installed") is True
            for ident in selected
            for name in p["control_packages"].get(ident, [])
        },
        "connecting_user": user,
        "aide": aide_state(p["aide"]["database"], p["aide"]["unit"], module.run_command),
        "units_on": units_off(module, list(dict.fromkeys(units_on))),
    }
    needed = todo(found, p, selected, module.check_mode)
    module.exit_json(
        changed=False, login_wanted=wanted_login, todo=needed, act=bool(needed), **found
    )


if __name__ == "__main__":
    main()
