#!/usr/bin/python
"""A harden run's file snapshot on the host, its change manifest, and a rollback from it.

state=snapshot (first task of a harden run): every path under `paths` (files, directories walked
without following links, links) recorded as it is (exists, type, sha256, mode, owner, group, link
target) in <backup_dir>/runs/<run_id>/before.json, and the content of each regular file copied to
<backup_dir>/runs/<run_id>/files/<path>.
state=manifest (last task of the run): the same paths read again; what differs is the run's change
manifest (path, before, after, backup), written to manifest.json beside the snapshot (with a copy
of each changed file as the run left it under after/, for the diff a refused rollback shows) and
returned as casemate_record.files_changed. Only the copies a rollback needs stay: those of the files
the run changed (a run that changed nothing keeps its before.json alone), and a snapshot drops the
run directories beyond the newest `keep_runs`, so a host that is hardened every hour does not fill
its disk.
state=restore (casemate rollback): the `changes` of run `run_id` put back as they were before it,
refusing (and changing nothing) when a file changed again since the run, unless force, and when a
backup is missing or does not match its recorded hash. Each file's current state is backed up
first into <backup_dir>/runs/<rollback_id>/. Files under `handed_over` (sshd's configuration) are
not written here but returned as content, for the sshd role's commit-confirmed module.
state=revert: the files a restore of `rollback_id` changed put back as they were before it.
Nothing is written in check mode."""

DOCUMENTATION = r"""
module: casemate_files
short_description: Snapshot, change manifest and rollback of the files a harden run may change
options:
  state: {description: snapshot, manifest, restore or revert, type: str, required: true}
  run_id: {description: the harden run, type: str, required: true}
  rollback_id: {description: the rollback run (restore and revert), type: str, default: ""}
  paths: {description: files and directories the run may change (snapshot and manifest), type: list, elements: path, default: []}
  changes: {description: "the run's change manifest for this host (restore); null: computed from the snapshot, needs force", type: raw}
  force: {description: restore files that changed again since the run, type: bool, default: false}
  handed_over: {description: "path prefixes returned as content, not written (restore)", type: list, elements: path, default: []}
  no_diff: {description: "path prefixes whose content a refusal never shows (credentials)", type: list, elements: path, default: []}
  units: {description: "[{unit, paths}] the services to restart or reload after a restore under these paths", type: list, elements: dict, default: []}
  backup_dir: {description: casemate's backup directory on the host, type: path, default: /var/backups/casemate}
  max_size: {description: larger regular files are recorded but not copied (and so never restored), type: int, default: 16777216}
  keep_runs: {description: "run directories kept (snapshot: the oldest beyond it are removed); 0 keeps all", type: int, default: 0}
"""

RETURN = r"""
casemate_record: {description: "files_changed (manifest), restored, refused (path, why, diff), units", type: dict}
"""

import difflib
import grp
import hashlib
import json
import os
import pwd
import shutil
import stat

from ansible.module_utils.basic import AnsibleModule

COMPARED = ("exists", "type", "sha256", "mode", "owner", "group", "target")


def _name(table, number):
    try:
        return table(number)[0]
    except KeyError:
        return str(number)


def state_of(path, max_size=16777216):
    """What a path is, without following a link: {exists, type, mode, owner, group} and sha256 and
    size for a regular file, target for a link. Sockets, fifos and devices are `other`."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"exists": False}
    kind = (
        "file"
        if stat.S_ISREG(st.st_mode)
        else "dir"
        if stat.S_ISDIR(st.st_mode)
        else "link"
        if stat.S_ISLNK(st.st_mode)
        else "other"
    )
    out = {
        "exists": True,
        "type": kind,
        "mode": "%04o" % stat.S_IMODE(st.st_mode),
        "owner": _name(pwd.getpwuid, st.st_uid),
        "group": _name(grp.getgrgid, st.st_gid),
    }
    if kind == "file":
        out["size"] = st.st_size
        if st.st_size <= max_size:
            digest = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            out["sha256"] = digest.hexdigest()
        else:
            out["sha256"] = None  # too large to keep: recorded, never restored
    elif kind == "link":
        out["target"] = os.readlink(path)
    return out


def walk(roots, max_size):
    """path -> state_of(path) for every root and everything under the roots that are directories
    (links are recorded, never followed); sockets, fifos and devices are left out."""
    seen = {}
    for given in roots:
        root = os.path.normpath(given)
        found = state_of(root, max_size)
        if found.get("type") == "other":
            continue
        seen[root] = found
        if found.get("type") != "dir":
            continue
        for top, dirs, files in os.walk(root):
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(top, name)
                one = state_of(path, max_size)
                if one.get("type") not in (None, "other"):
                    seen[path] = one
    return seen


def differs(one, other):
    return any(one.get(k) != other.get(k) for k in COMPARED)


def run_dir(backup_dir, run_id):
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise ValueError("bad run id %r" % run_id)
    return os.path.join(backup_dir, "runs", run_id)


def kept(base, part, path):
    """Where the copy of `path` is kept under a run's directory (`files` or `after`)."""
    return os.path.join(base, part, path.lstrip("/"))


def copy_in(path, target):
    """Copy a regular file's content into the run directory (0600, root's)."""
    os.makedirs(os.path.dirname(target), 0o700, exist_ok=True)
    tmp = target + ".casemate-new"
    with (
        open(path, "rb") as src,
        open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as dst,
    ):
        shutil.copyfileobj(src, dst)
    os.replace(tmp, target)


def write_json(path, data):
    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
    tmp = path + ".casemate-new"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(data, handle, sort_keys=True)
    os.replace(tmp, path)


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def snapshot(base, paths, max_size):
    """Record `paths` and copy every regular file they hold into `base` (before.json, files/)."""
    found = walk(paths, max_size)
    os.makedirs(base, 0o700, exist_ok=True)
    for path, one in found.items():
        if one.get("type") == "file" and one.get("sha256"):
            copy_in(path, kept(base, "files", path))
    write_json(os.path.join(base, "before.json"), {"paths": list(paths), "states": found})
    return found


def keep_only_backups(base, changes):
    """Remove the snapshot's copies of the files the run did not change: a rollback restores only
    what the manifest lists, from the copies its changes name."""
    needed = {c["backup"] for c in changes if c.get("backup")}
    files = os.path.join(base, "files")
    for top, _, names in os.walk(files, topdown=False):
        for name in names:
            path = os.path.join(top, name)
            if path not in needed:
                os.unlink(path)
        if top != files and not os.listdir(top):
            os.rmdir(top)


def taken_at(path):
    try:
        return os.stat(os.path.join(path, "before.json")).st_mtime
    except OSError:
        return os.lstat(path).st_mtime


def prune_runs(backup_dir, keep, current):
    """Remove the run directories beyond the newest `keep` (never `current`); the removed ids."""
    runs = os.path.join(backup_dir, "runs")
    if keep < 1 or not os.path.isdir(runs):
        return []
    found = [
        os.path.join(runs, name)
        for name in os.listdir(runs)
        if os.path.isdir(os.path.join(runs, name)) and not os.path.islink(os.path.join(runs, name))
    ]
    found.sort(key=taken_at, reverse=True)
    others = [path for path in found if path != current]
    gone = []
    for path in others[max(keep - 1, 0) :]:
        shutil.rmtree(path, ignore_errors=True)
        gone.append(os.path.basename(path))
    return sorted(gone)


def changes_since(base, max_size, copy_after):
    """The changes from the snapshot in `base` to now: [{path, before, after, backup}]."""
    taken = read_json(os.path.join(base, "before.json"))
    before = taken["states"]
    now = walk(taken["paths"], max_size)
    out = []
    for path in sorted(set(before) | set(now)):
        was, is_ = before.get(path, {"exists": False}), now.get(path, {"exists": False})
        if not differs(was, is_):
            continue
        backup = (
            kept(base, "files", path) if was.get("type") == "file" and was.get("sha256") else None
        )
        if copy_after and is_.get("type") == "file" and is_.get("sha256"):
            copy_in(path, kept(base, "after", path))
        out.append({"path": path, "before": was, "after": is_, "backup": backup})
    return out


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def text_of(path):
    try:
        with open(path, "rb") as handle:
            data = handle.read(1 << 20)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def readable(one):
    """Whether anyone may read the file (its content may then be shown)."""
    return one.get("type") != "file" or bool(int(one.get("mode") or "0", 8) & 0o004)


def drift_diff(base, change, current, no_diff=()):
    """What changed in a file since the run: a unified diff of its content where both are text,
    and a line per other attribute (mode, owner, group, existence, link target). No content is
    shown of a file only root may read, or under `no_diff` (it may hold credentials)."""
    after = change["after"]
    lines = []
    for key in ("exists", "type", "mode", "owner", "group", "target"):
        if after.get(key) != current.get(key):
            lines.append(
                "%s: %s since the run: %s -> %s"
                % (change["path"], key, after.get(key), current.get(key))
            )
    content = after.get("sha256") != current.get("sha256") and current.get("type") == "file"
    hidden = under(change["path"], no_diff) or not (readable(after) and readable(current))
    if content and hidden:
        lines.append(
            "%s: content changed since the run (not shown: it may hold credentials)"
            % change["path"]
        )
    elif content:
        was = text_of(kept(base, "after", change["path"])) if after.get("type") == "file" else ""
        now = text_of(change["path"])
        if was is None or now is None:
            lines.append("%s: content changed since the run (not text)" % change["path"])
        else:
            lines.extend(
                x.rstrip("\n")
                for x in difflib.unified_diff(
                    was.splitlines(True),
                    now.splitlines(True),
                    "%s (after run)" % change["path"],
                    "%s (now)" % change["path"],
                )
            )
    return "\n".join(lines)


def refusals(base, changes, max_size, no_diff=()):
    """The files of `changes` that changed again since the run: [{path, why, diff}]."""
    out = []
    for change in changes:
        current = state_of(change["path"], max_size)
        if differs(change["after"], current):
            out.append(
                {
                    "path": change["path"],
                    "why": "changed since the run",
                    "diff": drift_diff(base, change, current, no_diff),
                }
            )
    return out


def unrestorable(changes):
    """The files whose state before the run cannot be put back: no backup, or a backup that is
    not what the snapshot recorded. [{path, why}]"""
    out = []
    for change in changes:
        was = change["before"]
        if was.get("type") == "other":
            out.append({"path": change["path"], "why": "not a file, directory or link"})
        if was.get("type") != "file":
            continue
        backup = change.get("backup")
        if not was.get("sha256") or not backup:
            out.append({"path": change["path"], "why": "too large: no backup was kept"})
        elif not os.path.isfile(backup):
            out.append({"path": change["path"], "why": "its backup %s is missing" % backup})
        elif file_sha256(backup) != was["sha256"]:
            out.append(
                {"path": change["path"], "why": "its backup %s is not what the run saved" % backup}
            )
    return out


def _ids(one):
    uid = one.get("owner")
    gid = one.get("group")
    try:
        uid = pwd.getpwnam(uid).pw_uid
    except KeyError:
        uid = int(uid)
    try:
        gid = grp.getgrnam(gid).gr_gid
    except KeyError:
        gid = int(gid)
    return uid, gid


def remove(path):
    if os.path.islink(path) or not os.path.isdir(path):
        if os.path.lexists(path):
            os.unlink(path)
    elif not os.listdir(path):
        os.rmdir(path)
    else:  # a directory the run made that now holds more than the run put there: left alone
        raise OSError("%s: directory not empty, left in place" % path)


def put_back(change):
    """Make `change["path"]` what `change["before"]` says, from its backup."""
    path, was = change["path"], change["before"]
    if not was.get("exists"):
        remove(path)
        return
    uid, gid = _ids(was)
    mode = int(was["mode"], 8)
    kind = was["type"]
    if kind == "dir":
        if os.path.lexists(path) and not os.path.isdir(path):
            os.unlink(path)
        if not os.path.isdir(path):
            os.makedirs(path)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        return
    if os.path.isdir(path) and not os.path.islink(path):
        remove(path)
    if kind == "link":
        if os.path.lexists(path):
            os.unlink(path)
        os.symlink(was["target"], path)
        os.lchown(path, uid, gid)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), ".%s.casemate-restore" % os.path.basename(path))
    shutil.copyfile(change["backup"], tmp)
    os.chown(tmp, uid, gid)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def order(changes):
    """Removals deepest first, then directories shallowest first, then files and links."""
    gone = sorted(
        (c for c in changes if not c["before"].get("exists")), key=lambda c: -c["path"].count("/")
    )
    dirs = sorted(
        (c for c in changes if c["before"].get("type") == "dir"), key=lambda c: c["path"].count("/")
    )
    rest = [c for c in changes if c["before"].get("exists") and c["before"].get("type") != "dir"]
    return gone + dirs + rest


def under(path, prefixes):
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def units_for(module, changes, units):
    """The units in `units` that read a path of `changes` and run now (restarted after a restore)."""
    out = []
    for unit in units:
        if any(under(c["path"], unit.get("paths", [])) for c in changes):
            rc, _, _ = module.run_command(["systemctl", "is-active", "--quiet", unit["unit"]])
            if rc == 0:
                out.append(unit["unit"])
    return out


def handed(changes, prefixes):
    """The changes under `prefixes` as sshd_commit writes them: {path: {content, mode}}, removes,
    and those it cannot take (not text, not root's, not a file), which are restored here."""
    writes, removes, left = {}, [], []
    for change in changes:
        was = change["before"]
        if not under(change["path"], prefixes) or was.get("type") == "dir":
            left.append(change)
        elif not was.get("exists"):
            removes.append(change["path"])
        elif (
            was.get("type") == "file" and was.get("owner") == "root" and was.get("group") == "root"
        ):
            content = text_of(change["backup"])
            if content is None:
                left.append(change)
            else:
                writes[change["path"]] = {"content": content, "mode": was["mode"]}
        else:
            left.append(change)
    return writes, removes, left


def restore(module, p):
    base = run_dir(p["backup_dir"], p["run_id"])
    mine = run_dir(p["backup_dir"], p["rollback_id"])
    changes = p["changes"]
    if changes and not os.path.isdir(base):
        module.fail_json(
            msg="refused, nothing changed: this host keeps no snapshot of run %s any more (hosts "
            "keep the newest runs only: casemate_rollback_keep_runs)" % p["run_id"]
        )
    if changes is None:  # the run recorded no manifest for this host (it failed before the end)
        if not p["force"]:
            module.fail_json(
                msg="nothing changed: run %s recorded no change manifest for this host (it stopped "
                "before its end); --force restores every snapshot file that differs now"
                % p["run_id"]
            )
        if not os.path.isfile(os.path.join(base, "before.json")):
            module.fail_json(
                msg="nothing changed: no snapshot of run %s on this host" % p["run_id"]
            )
        changes = changes_since(base, p["max_size"], copy_after=False)
        for change in changes:  # no "after" was recorded: what is there now is taken as it
            change["after"] = state_of(change["path"], p["max_size"])
    record = {"changes": changes}
    refused = [] if p["force"] else refusals(base, changes, p["max_size"], p["no_diff"])
    if refused:
        record["refused"] = refused
        module.fail_json(
            msg="refused, nothing changed: %d file(s) changed again since run %s: %s (--force restores them anyway)"
            % (len(refused), p["run_id"], ", ".join(r["path"] for r in refused)),
            casemate_record=record,
        )
    cannot = unrestorable(changes)
    if cannot:
        record["unrestorable"] = cannot
        module.fail_json(
            msg="refused, nothing changed: cannot restore %s"
            % "; ".join("%s (%s)" % (c["path"], c["why"]) for c in cannot),
            casemate_record=record,
        )
    writes, removes, local = handed(changes, p["handed_over"])
    record.update(
        restored=[c["path"] for c in changes],
        units=units_for(module, changes, p["units"]),
        handed_over={"writes": sorted(writes), "removes": removes},
    )
    diff = [
        {
            "prepared": "%s %s"
            % ("remove" if not c["before"].get("exists") else "restore", c["path"])
        }
        for c in changes
    ]
    if module.check_mode or not changes:
        module.exit_json(
            changed=bool(changes), casemate_record=record, diff=diff, writes=writes, removes=removes
        )
    try:  # never restore over a file that cannot be backed up first
        snapshot(mine, [c["path"] for c in changes], p["max_size"])
    except (OSError, ValueError) as exc:
        module.fail_json(
            msg="refused, nothing changed: backing up the current files failed: %s" % exc,
            casemate_record=record,
        )
    done = []
    try:
        for change in order(local):
            put_back(change)
            done.append(change["path"])
    except OSError as exc:
        failed = revert_to(mine, p["max_size"])
        module.fail_json(
            msg="restoring failed (%s); the files are back as before the rollback%s"
            % (exc, "" if not failed else ", except: " + "; ".join(failed)),
            casemate_record=record,
        )
    write_json(os.path.join(mine, "restored.json"), {"run_id": p["run_id"], "changes": changes})
    module.exit_json(
        changed=True, casemate_record=record, diff=diff, writes=writes, removes=removes
    )


def revert_to(base, max_size):
    """Put the files of the snapshot in `base` back as it recorded them; the paths that failed."""
    failed = []
    for change in order(changes_since(base, max_size, copy_after=False)):
        try:
            put_back(change)
        except OSError as exc:
            failed.append("%s (%s)" % (change["path"], exc))
    return failed


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "required": True,
                "choices": ["snapshot", "manifest", "restore", "revert"],
            },
            "run_id": {"type": "str", "required": True},
            "rollback_id": {"type": "str", "default": ""},
            "paths": {"type": "list", "elements": "path", "default": []},
            "changes": {"type": "raw", "default": None},
            "force": {"type": "bool", "default": False},
            "handed_over": {"type": "list", "elements": "path", "default": []},
            "no_diff": {"type": "list", "elements": "path", "default": []},
            "units": {"type": "list", "elements": "dict", "default": []},
            "backup_dir": {"type": "path", "default": "/var/backups/casemate"},
            "max_size": {"type": "int", "default": 16777216},
            "keep_runs": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        base = run_dir(p["backup_dir"], p["run_id"])
        if p["state"] in ("restore", "revert"):
            run_dir(p["backup_dir"], p["rollback_id"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if p["state"] == "restore":
        restore(module, p)
    if (
        module.check_mode
    ):  # a harden or revert in check mode writes no snapshot and restores nothing
        module.exit_json(changed=False, casemate_record={})
    if p["state"] == "snapshot":
        found = snapshot(base, p["paths"], p["max_size"])
        pruned = prune_runs(p["backup_dir"], p["keep_runs"], base)
        module.exit_json(changed=False, casemate_record={}, paths=len(found), pruned=pruned)
    if p["state"] == "manifest":
        if not os.path.isfile(os.path.join(base, "before.json")):
            module.fail_json(msg="no snapshot of run %s on this host" % p["run_id"])
        changes = changes_since(base, p["max_size"], copy_after=True)
        keep_only_backups(base, changes)
        write_json(os.path.join(base, "manifest.json"), {"run_id": p["run_id"], "changes": changes})
        module.exit_json(changed=False, casemate_record={"files_changed": changes})
    failed = revert_to(run_dir(p["backup_dir"], p["rollback_id"]), p["max_size"])
    if failed:
        module.fail_json(msg="putting the files back failed: %s" % "; ".join(failed))
    module.exit_json(changed=True, casemate_record={"reverted": True})


if __name__ == "__main__":
    main()
