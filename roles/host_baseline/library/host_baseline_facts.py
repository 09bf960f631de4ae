#!/usr/bin/python
"""Read what the host baseline manages: unneeded services, core dump settings, the /tmp mount,
login.defs, cron and at (read-only: it changes nothing)."""

DOCUMENTATION = r"""
module: host_baseline_facts
short_description: Read the state the host baseline manages (read-only)
options:
  services: {description: units a container host does not need, type: list, elements: str, required: true}
  tmp_options: {description: mount options /tmp must carry where it is a mount of its own, type: list, elements: str, required: true}
  login_defs: {description: path of login.defs, type: path, required: true}
  login_defs_wanted: {description: login.defs key -> value of the controls selected in this run, type: dict, required: true}
  files: {description: name -> path of a file whose content the role compares (limits file, drop-ins), type: dict, required: true}
  modes: {description: path -> the widest mode it may have (root:root), type: dict, required: true}
  cron_allow: {description: users /etc/cron.allow must name (root always), type: list, elements: str, required: true}
  at_allow: {description: users /etc/at.allow must name (root always), type: list, elements: str, required: true}
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
"""

import grp
import os
import pwd
import re
import stat

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        os_release,
        read_container,
        read_text,
        unit_properties,
        units_properties,
    )
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        os_release,
        read_container,
        read_text,
        unit_properties,
        units_properties,
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


def main():
    module = AnsibleModule(
        argument_spec={
            "services": {"type": "list", "elements": "str", "required": True},
            "tmp_options": {"type": "list", "elements": "str", "required": True},
            "login_defs": {"type": "path", "required": True},
            "login_defs_wanted": {"type": "dict", "required": True},
            "files": {"type": "dict", "required": True},
            "modes": {"type": "dict", "required": True},
            "cron_allow": {"type": "list", "elements": "str", "required": True},
            "at_allow": {"type": "list", "elements": "str", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    cron = {
        "cron": any(os.access(b, os.X_OK) for b in ("/usr/sbin/cron", "/usr/sbin/crond")),
        "at": os.access("/usr/bin/at", os.X_OK),
    }
    for name in ("cron.allow", "cron.deny", "at.allow", "at.deny"):
        cron[name.replace(".", "_")] = read_text("/etc/" + name)
    cron["cron_allow_new"] = allow_file(cron["cron_allow"], p["cron_allow"])
    cron["at_allow_new"] = allow_file(cron["at_allow"], p["at_allow"])
    module.exit_json(
        changed=False,
        container=read_container(module.run_command),
        services=services(module, p["services"]),
        coredump=any(
            os.access(b, os.X_OK)
            for b in ("/lib/systemd/systemd-coredump", "/usr/lib/systemd/systemd-coredump")
        ),
        tmp=tmp_mount(module, p["tmp_options"]),
        login_defs=login_defs(p["login_defs"], p["login_defs_wanted"]),
        files={name: read_text(path) for name, path in p["files"].items()},
        modes=mode_fixes(p["modes"]),
        cron=cron,
        os=os_release(),
    )


if __name__ == "__main__":
    main()
