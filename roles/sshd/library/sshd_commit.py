#!/usr/bin/python
"""Change sshd's configuration commit-confirmed, as on a router: back up, arm a rollback on the host
itself, write, validate, reload; later confirm (disarm) or roll back."""

DOCUMENTATION = r"""
module: sshd_commit
short_description: Apply, confirm or roll back an sshd configuration change (commit-confirmed)
description:
  - state=applied backs up every file the change touches into a directory of its own under
    backup_dir, arms a rollback on the host (a transient systemd timer, or a detached sleeper where
    systemd is not running) that restores the backup after rollback_delay seconds, then writes and
    removes the files, validates the result with sshd -t and reloads sshd (never restarts it, so
    open sessions survive). A failed validation or reload restores the backup at once.
  - state=confirmed disarms the rollback; it fails if the rollback already fired.
  - state=rolled_back restores the backup now and reloads sshd (nothing happens twice; the timer
    and the controller race for one decision).
options:
  state: {description: applied, confirmed or rolled_back, type: str, required: true}
  backup_dir: {description: "the role's backup directory (a directory per change is made in it)", type: path, required: true}
  change_id: {description: the change to confirm or roll back (returned by state=applied), type: str, default: ""}
  writes: {description: "path -> {content, mode} to write", type: dict, default: {}}
  removes: {description: files to remove, type: list, default: []}
  rollback_delay: {description: seconds until the armed rollback fires, type: int, default: 120}
  service: {description: systemd unit of sshd, type: str, default: ssh.service}
  ports: {description: TCP ports sshd listens on (waited for after the reload), type: list, default: []}
  socket: {description: "systemd socket unit of sshd; while it is active, systemd holds the listening sockets", type: str, default: ssh.socket}
  config: {description: main sshd configuration file (validated with sshd -t -f), type: path, default: /etc/ssh/sshd_config}
  reload:
    description: >-
      reload sshd even when nothing is written: the files are already casemate's but the running sshd
      has not loaded them (a run interrupted before the reload). Armed and confirmed like a change.
    type: bool
    default: false
  rollback_to:
    description: >-
      path -> content (null: remove) that a rollback of this change puts in place instead of the
      backup of the current file; with reload, the configuration without casemate's options (the
      current files are still kept in the change's backup directory).
    type: dict
    default: {}
"""

RETURN = r"""
change_id: {description: identifies the change and its backup directory, type: str}
backup: {description: the backup directory of this change, type: str}
armed: {description: "how the rollback is armed: {kind, unit or pid, delay}", type: dict}
decided_by: {description: who settled the change (confirmed, timer, controller, apply), type: str}
"""

import contextlib
import datetime
import json
import os
import shlex
import shutil
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

try:  # casemate's roles: Ansible ships the role's module_utils
    from ansible.module_utils.casemate_host import (
        find_command,
        listening_sockets,
    )
except ImportError:  # the collection casemate.hardening: its plugins/module_utils
    from ansible_collections.casemate.hardening.plugins.module_utils.casemate_host import (
        find_command,
        listening_sockets,
    )

UNIT_PREFIX = "casemate-sshd-rollback-"


def sshd_binary():
    return find_command("sshd") or "/usr/sbin/sshd"


def rollback_script(change_dir, manifest, service, was_active=True, sshd=None):
    """The host-side rollback: restore the files, then bring sshd back. A reload alone is not
    enough: a configuration sshd -t accepts can still stop sshd at the reload (a ListenAddress the
    host lacks, a port in use), and systemd does not restart an sshd that exited 255. So a dead
    sshd that was running before the change is started again."""
    lines = [
        "#!/bin/sh",
        "# casemate: put sshd's configuration back as it was before change %s."
        % os.path.basename(change_dir),
        "# Armed by the sshd role before the reload; the first of timer, confirmation and controller",
        "# rollback to create the 'decided' directory wins.",
        "dir=%s" % shlex.quote(change_dir),
        'mkdir "$dir/decided" 2>/dev/null || exit 3',
        'echo "${1:-timer} $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$dir/decided/by"',
    ]
    for entry in manifest["files"]:
        path = shlex.quote(entry["path"])
        if entry["existed"]:
            lines.append(
                "cp -p %s %s"
                % (shlex.quote(os.path.join(change_dir, "files", entry["saved"])), path)
            )
        else:
            lines.append("rm -f %s" % path)
    unit = shlex.quote(service)
    start = "systemctl reset-failed %s; systemctl start %s" % (unit, unit) if was_active else ":"
    lines += [
        "if [ -d /run/systemd/system ]; then",
        "    if systemctl is-active --quiet %s; then systemctl reload %s; else %s; fi"
        % (unit, unit, start),
        'elif [ -f /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null; then',
        '    kill -HUP "$(cat /run/sshd.pid)"',
    ]
    if was_active:
        lines.append("else")
        lines.append("    %s" % shlex.quote(sshd or sshd_binary()))
    lines += [
        "fi",
        'echo "restored" >> "$dir/decided/by"',
        "",
    ]
    return "\n".join(lines)


def roll_back_to(change_dir, manifest, targets):
    """Point the manifest's entries at `targets` ({path: content, or None to remove}) instead of the
    backups of the current files, which stay in the change directory as they were."""
    for n, entry in enumerate(manifest["files"]):
        if entry["path"] not in targets:
            continue
        content = targets[entry["path"]]
        entry["current"] = entry.pop("saved", None)
        entry["existed"] = content is not None
        if content is not None:
            entry["saved"] = "target-%d" % n
            target = os.path.join(change_dir, "files", entry["saved"])
            with open(target, "w") as handle:
                handle.write(content)
            if entry["current"] is not None:
                st = os.stat(os.path.join(change_dir, "files", entry["current"]))
                os.chmod(target, st.st_mode & 0o7777)
                os.chown(target, st.st_uid, st.st_gid)
    return manifest


def new_change_dir(backup_dir):
    stamp = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    for n in range(100):
        change_id = "%s-%d" % (stamp, os.getpid() + n)
        path = os.path.join(backup_dir, change_id)
        if not os.path.exists(path):
            os.mkdir(path, 0o700)
            return change_id, path
    raise RuntimeError("cannot make a backup directory under %s" % backup_dir)


def back_up(change_dir, paths):
    os.mkdir(os.path.join(change_dir, "files"), 0o700)
    files = []
    for n, path in enumerate(paths):
        entry = {"path": path, "existed": os.path.lexists(path)}
        if entry["existed"]:
            entry["saved"] = str(n)
            target = os.path.join(change_dir, "files", str(n))
            shutil.copy2(path, target)
            st = os.stat(path)
            os.chown(target, st.st_uid, st.st_gid)
        files.append(entry)
    return {"files": files}


def arm(module, change_id, change_dir, delay):
    script = os.path.join(change_dir, "rollback.sh")
    if os.path.isdir("/run/systemd/system") and shutil.which("systemd-run"):
        unit = UNIT_PREFIX + change_id
        rc, _, err = module.run_command(
            [
                "systemd-run",
                "--unit",
                unit,
                "--description",
                "casemate: roll sshd back unless the change is confirmed",
                "--on-active=%ds" % delay,
                "--timer-property=AccuracySec=1s",
                "/bin/sh",
                script,
                "timer",
            ]
        )
        if rc != 0:
            raise RuntimeError("systemd-run could not arm the rollback: %s" % err.strip())
        return {"kind": "systemd-timer", "unit": unit + ".timer", "delay": delay}
    proc = subprocess.Popen(
        ["/bin/sh", "-c", "sleep %d; exec /bin/sh %s timer" % (delay, shlex.quote(script))],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    return {"kind": "sleeper", "pid": proc.pid, "delay": delay}


def disarm(module, armed):
    if not armed:
        return
    if armed.get("kind") == "systemd-timer":
        module.run_command(["systemctl", "stop", armed["unit"]])
    elif armed.get("pid"):
        with contextlib.suppress(OSError):
            os.killpg(armed["pid"], 15)


def decided_by(change_dir):
    try:
        with open(os.path.join(change_dir, "decided", "by")) as handle:
            return handle.read().split()[0]
    except (OSError, IndexError):
        return ""


def write(path, content, mode):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):  # an Include of a drop-in directory nobody made yet
        os.makedirs(directory, 0o755)
    tmp = os.path.join(directory, ".%s.casemate-new" % os.path.basename(path))
    with open(tmp, "w") as handle:
        handle.write(content)
    os.chown(tmp, 0, 0)
    os.chmod(tmp, int(mode, 8))
    os.rename(tmp, path)


def restore(module, change_dir, who):
    rc, out, err = module.run_command(["/bin/sh", os.path.join(change_dir, "rollback.sh"), who])
    return rc, (out + err).strip()


def one_line(text):
    return " ".join(line.strip() for line in (text or "").splitlines() if line.strip())[:400]


def diffs(writes, removes):
    out = []
    for path, spec in sorted(writes.items()):
        before = ""
        if os.path.exists(path):
            with open(path) as handle:
                before = handle.read()
        out.append(
            {
                "before_header": path,
                "after_header": path,
                "before": before,
                "after": spec["content"],
            }
        )
    for path in removes:
        out.append({"prepared": "remove %s (weak host key)" % path})
    return out


def listen_inodes(ports):
    """Inodes of the listening TCP sockets on `ports` (every port when empty), from /proc/net/tcp
    and tcp6."""
    wanted = {int(port) for port in ports}
    sockets = listening_sockets("tcp").get("sockets", [])  # unreadable: none found, keep waiting
    return {s["inode"] for s in sockets if not wanted or s["port"] in wanted}


def held_by(pid):
    """Inodes of the sockets process `pid` holds open (/proc/PID/fd)."""
    out = set()
    if not pid:
        return out
    fd_dir = "/proc/%d/fd" % pid
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return out
    for name in names:
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[len("socket:[") : -1])
    return out


def sshd_sockets(pid, ports):
    """The listening sockets on `ports` that sshd (process `pid`) itself holds: another program on
    the same port (docker-proxy on another address) does not count."""
    return listen_inodes(ports) & held_by(pid)


def main_pid(module, service):
    if os.path.isdir("/run/systemd/system"):
        rc, out, _ = module.run_command(["systemctl", "show", "-p", "MainPID", "--value", service])
        try:
            return int(out.strip()) if rc == 0 else 0
        except ValueError:
            return 0
    try:
        with open("/run/sshd.pid") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return 0


def wait_listening(module, service, ports, old, timeout, *, socket_active=False):
    """'' once sshd listens again after the reload (it closes its sockets and re-executes itself,
    so the sockets its main process holds are new ones); else why not. Where systemd holds the
    sockets (socket activation) they stay the same across the reload: then sshd only has to stay
    up. An sshd that stopped (it could not bind) is reported at once, not after the timeout."""
    started = time.time()
    down_since = None
    while True:
        now = time.time()
        if service_active(module, service):
            down_since = None
            if socket_active:
                if now - started >= 1:
                    return ""
            else:
                held = sshd_sockets(main_pid(module, service), ports)
                if held and not held & old:
                    return ""
        else:
            down_since = down_since or now
            if now - down_since >= 2:
                return "%s stopped at the reload" % service
        if now - started >= timeout:
            return "sshd did not listen again within %d s of the reload" % timeout
        time.sleep(0.1)


def reload_failed(module, service, said):
    """Why a reload systemctl reports failed did: an sshd that could not bind stops at the reload,
    and on Debian 13 (OpenSSH 10, systemd 257, the same Type=notify unit as Debian 12) its exit
    fails the reload job itself; that is the same event as a reload that succeeds and an sshd that
    stops just after (Debian 12), and it is named the same way, not by systemctl's generic words."""
    if not service_active(module, service):
        return "%s stopped at the reload" % service
    return "reloading %s failed: %s" % (service, one_line(said))


def service_active(module, service):
    if not os.path.isdir("/run/systemd/system"):
        try:
            with open("/run/sshd.pid") as handle:
                os.kill(int(handle.read().strip()), 0)
        except (OSError, ValueError):
            return False
        return True
    rc, _, _ = module.run_command(["systemctl", "is-active", "--quiet", service])
    return rc == 0


def unit_active(module, unit):
    if not os.path.isdir("/run/systemd/system"):
        return False
    rc, _, _ = module.run_command(["systemctl", "is-active", "--quiet", unit])
    return rc == 0


def running_after(module, service, was_active):
    """What the rollback left running, said plainly (checked, not assumed)."""
    if not was_active:
        return "%s was not running before the change" % service
    for _ in range(30):
        if service_active(module, service):
            return "%s is running" % service
        time.sleep(0.1)
    return "%s is NOT running (start it from the console)" % service


def validate_argv(config):
    """sshd -t on the configuration the role manages (not the compiled-in default path)."""
    return [sshd_binary(), "-t", "-f", config]


def reload(module, service):
    if os.path.isdir("/run/systemd/system"):
        return module.run_command(["systemctl", "reload", service])
    with open("/run/sshd.pid") as handle:
        pid = int(handle.read().strip())
    os.kill(pid, 1)
    return 0, "", ""


def applied(module, p):
    writes, removes = p["writes"], p["removes"]
    result = {"changed": bool(writes or removes or p["reload"]), "diff": diffs(writes, removes)}
    if p["reload"] and not (writes or removes):
        result["diff"].append(
            {"prepared": "reload %s: it has not loaded its configuration files yet" % p["service"]}
        )
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)
    change_id, change_dir = new_change_dir(p["backup_dir"])
    result.update(change_id=change_id, backup=change_dir)
    paths = sorted(writes) + list(removes)
    paths += sorted(x for x in p["rollback_to"] if x not in paths)
    manifest = roll_back_to(change_dir, back_up(change_dir, paths), p["rollback_to"])
    active = service_active(module, p["service"])
    manifest["was_active"] = active
    with open(os.path.join(change_dir, "rollback.sh"), "w") as handle:
        handle.write(rollback_script(change_dir, manifest, p["service"], active))
    try:
        armed = arm(module, change_id, change_dir, p["rollback_delay"])
    except (RuntimeError, OSError) as exc:
        module.fail_json(msg="nothing changed: %s" % exc, **result)
    manifest["armed"] = armed
    with open(os.path.join(change_dir, "manifest.json"), "w") as handle:
        json.dump(manifest, handle, indent=2)
    result["armed"] = armed

    def undo(why):
        rc, said = restore(module, change_dir, "apply")
        disarm(module, armed)
        back = (
            "the previous configuration is back"
            if rc == 0
            else "restoring failed too: %s" % one_line(said)
        )
        back += "; " + running_after(module, p["service"], active)
        module.fail_json(
            msg="rolled back at once: %s; %s" % (why, back), decided_by="apply", **result
        )

    try:
        for path, spec in writes.items():
            write(path, spec["content"], spec["mode"])
        for path in removes:
            if os.path.lexists(path):
                os.unlink(path)
    except OSError as exc:
        undo("writing failed (%s)" % exc)
    rc, _, err = module.run_command(validate_argv(p["config"]))
    if rc != 0:
        undo("sshd -t refused the new configuration: %s" % one_line(err))
    result["reloaded"] = False
    if active:
        socket_active = bool(p["socket"]) and unit_active(module, p["socket"])
        old = sshd_sockets(main_pid(module, p["service"]), p["ports"])
        rc, out, err = reload(module, p["service"])
        if rc != 0:
            undo(reload_failed(module, p["service"], out + err))
        why = wait_listening(module, p["service"], p["ports"], old, 15, socket_active=socket_active)
        if why:
            undo(why)
        result["reloaded"] = True
    module.exit_json(**result)


def settle(module, p):
    change_dir = os.path.join(p["backup_dir"], p["change_id"])
    result = {"changed": False, "change_id": p["change_id"], "backup": change_dir}
    if not p["change_id"] or not os.path.isdir(change_dir):
        module.exit_json(msg="nothing was applied, nothing to settle", **result)
    try:
        with open(os.path.join(change_dir, "manifest.json")) as handle:
            armed = json.load(handle).get("armed")
    except (OSError, ValueError):
        armed = None
    if p["state"] == "confirmed":
        try:
            os.mkdir(os.path.join(change_dir, "decided"))
        except FileExistsError:
            who = decided_by(change_dir)
            module.fail_json(
                msg="the %s rolled the change back before it was confirmed (rollback_delay %s s too short?): the "
                "previous configuration is back"
                % ("host-side timer" if who == "timer" else who, (armed or {}).get("delay")),
                decided_by=who,
                **result,
            )
        with open(os.path.join(change_dir, "decided", "by"), "w") as handle:
            handle.write(
                "confirmed %s\n" % datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
            )
        disarm(module, armed)
        module.exit_json(decided_by="confirmed", armed=armed, **result)
    rc, said = restore(module, change_dir, "controller")
    disarm(module, armed)
    who = decided_by(change_dir)
    if rc == 3:
        module.exit_json(msg="already settled by %s" % who, decided_by=who, **result)
    if rc != 0:
        module.fail_json(
            msg="restoring the previous configuration failed: %s" % one_line(said), **result
        )
    try:
        with open(os.path.join(change_dir, "manifest.json")) as handle:
            was_active = json.load(handle).get("was_active", True)
    except (OSError, ValueError):
        was_active = True
    running = running_after(module, p["service"], was_active)
    if "NOT running" in running:
        module.fail_json(
            msg="the previous configuration is back, but %s" % running, decided_by=who, **result
        )
    result["changed"] = True
    module.exit_json(msg="the previous configuration is back", decided_by=who, **result)


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "required": True,
                "choices": ["applied", "confirmed", "rolled_back"],
            },
            "backup_dir": {"type": "path", "required": True},
            "change_id": {"type": "str", "default": ""},
            "writes": {"type": "dict", "default": {}},
            "removes": {"type": "list", "elements": "str", "default": []},
            "rollback_delay": {"type": "int", "default": 120},
            "service": {"type": "str", "default": "ssh.service"},
            "ports": {"type": "list", "elements": "int", "default": []},
            "socket": {"type": "str", "default": "ssh.socket"},
            "config": {"type": "path", "default": "/etc/ssh/sshd_config"},
            "reload": {"type": "bool", "default": False},
            "rollback_to": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] == "applied":
        applied(module, p)
    if module.check_mode:
        module.exit_json(changed=False)
    settle(module, p)


if __name__ == "__main__":
    main()
