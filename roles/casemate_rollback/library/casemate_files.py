#!/usr/bin/python
"""A harden run's file snapshot on the host, its change manifest, and a rollback from it.

Content is kept once per host, by hash: <backup_dir>/store/<sha256[:2]>/<sha256> (root's, 0600).
A run's snapshot is a list of states (exists, type, sha256, mode, owner, group, link target), so an
unchanged file costs a run a stat, not a copy. <backup_dir>/index.json remembers, per path, the
stat (device, inode, size, mtime, ctime) under which its content was last hashed: a file whose stat
is the same, and whose last change came well before that hash (git's "racily clean" rule), is not
read again.

state=snapshot (first task of a harden run): every path under `paths` (files, directories walked
without following links, links) recorded as it is in <backup_dir>/runs/<run_id>/before.json, and the
content of each regular file put in the store when the store does not hold it yet.
state=manifest (last task of the run): the same paths read again; what differs is the run's change
manifest (path, before, after, backup), written to manifest.json beside the snapshot (the content
each changed file has after the run goes into the store too, for the diff a refused rollback shows)
and returned as casemate_record.files_changed. A snapshot drops the run directories beyond the
newest `keep_runs`, then the stored contents no run left needs: a finished run needs those its
changes name, a run that stopped before its manifest (and a rollback's own backup) all of its
snapshot's, so a host that is hardened every hour does not fill its disk.
Runs recorded before the store (a files/ and an after/ copy under the run's directory) are
restored from those copies as before.
state=restore (casemate rollback): the `changes` of run `run_id` put back as they were before it,
refusing (and changing nothing) when a file changed again since the run, unless force, and when a
backup is missing or does not match its recorded hash. Each file's current state is backed up
first (a snapshot under <backup_dir>/runs/<rollback_id>/). Files under `handed_over` (sshd's
configuration) are not written here but returned as content, for the sshd role's commit-confirmed
module.
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
import time

from ansible.module_utils.basic import AnsibleModule

COMPARED = ("exists", "type", "sha256", "mode", "owner", "group", "target")


LAYOUT = 2  # before.json of a run whose contents are in the store (older runs: files/, after/)
# a file changed less than this before its content was hashed is read again by the next walk
# (its change and the hash may have fallen in one tick of the file system's clock)
RACY_NS = 2 * 10**9


def _name(table, number, names):
    key = (table, number)
    if key not in names:
        try:
            names[key] = table(number)[0]
        except KeyError:
            names[key] = str(number)
    return names[key]


def store_path(backup_dir, sha):
    """Where the host keeps the content whose sha256 is `sha` (once, whatever runs need it)."""
    return os.path.join(backup_dir, "store", sha[:2], sha)


def put(backup_dir, sha, data):
    """Keep `data` (whose sha256 is `sha`) in the store, unless it is there already."""
    target = store_path(backup_dir, sha)
    if os.path.isfile(target):
        return
    os.makedirs(os.path.dirname(target), 0o700, exist_ok=True)
    tmp = target + ".casemate-new"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)


class Hashes:
    """The content hashes of one walk. With a backup directory: a file whose stat (device, inode,
    size, mtime, ctime) is the one the host's index recorded when it was last hashed, and which
    last changed well before that, keeps that hash unread; every file read is put in the store
    (and one the index names is read again when the store lost its content). Without one, every
    file is read."""

    def __init__(self, backup_dir=None):
        self.backup_dir = backup_dir
        self.known = {}
        self.seen = {}
        self.names = {}
        if backup_dir:
            try:
                self.known = read_json(os.path.join(backup_dir, "index.json"))
            except (OSError, ValueError):
                self.known = {}  # no index yet, or unreadable: every file is read

    def of(self, path, st):
        key = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        entry = self.known.get(path)
        if (
            self.backup_dir
            and isinstance(entry, list)
            and len(entry) == 7
            and entry[:5] == key
            and entry[6] - key[4] > RACY_NS
            and os.path.isfile(store_path(self.backup_dir, entry[5]))
        ):
            self.seen[path] = entry
            return entry[5]
        hashed_at = time.time_ns()
        with open(path, "rb") as handle:
            data = handle.read()
        sha = hashlib.sha256(data).hexdigest()
        if self.backup_dir:
            put(self.backup_dir, sha, data)
            self.seen[path] = [*key, sha, hashed_at]
        return sha

    def save(self, roots):
        """Write the index: this walk's entries, and the earlier ones of paths outside `roots`."""
        if not self.backup_dir:
            return
        kept = {p: e for p, e in self.known.items() if not under(p, roots)}
        kept.update(self.seen)
        write_json(os.path.join(self.backup_dir, "index.json"), kept)


def state_of(path, max_size=16777216, hashes=None):
    """What a path is, without following a link: {exists, type, mode, owner, group} and sha256 and
    size for a regular file, target for a link. Sockets, fifos and devices are `other`."""
    hashes = hashes or Hashes()
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
        "owner": _name(pwd.getpwuid, st.st_uid, hashes.names),
        "group": _name(grp.getgrgid, st.st_gid, hashes.names),
    }
    if kind == "file":
        out["size"] = st.st_size
        if st.st_size <= max_size:
            out["sha256"] = hashes.of(path, st)
        else:
            out["sha256"] = None  # too large to keep: recorded, never restored
    elif kind == "link":
        out["target"] = os.readlink(path)
    return out


def walk(roots, max_size, hashes=None):
    """path -> state_of(path) for every root and everything under the roots that are directories
    (links are recorded, never followed); sockets, fifos and devices are left out."""
    hashes = hashes or Hashes()
    seen = {}
    for given in roots:
        root = os.path.normpath(given)
        found = state_of(root, max_size, hashes)
        if found.get("type") == "other":
            continue
        seen[root] = found
        if found.get("type") != "dir":
            continue
        for top, dirs, files in os.walk(root):
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(top, name)
                one = state_of(path, max_size, hashes)
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


def backup_dir_of(base):
    """The backup directory a run directory (<backup_dir>/runs/<id>) belongs to."""
    return os.path.dirname(os.path.dirname(base))


def snapshot(base, paths, max_size):
    """Record `paths` in `base`/before.json, their contents in the host's store (each content
    once: an unchanged file costs a stat)."""
    backup_dir = backup_dir_of(base)
    hashes = Hashes(backup_dir)
    found = walk(paths, max_size, hashes)
    os.makedirs(base, 0o700, exist_ok=True)
    if os.path.lexists(os.path.join(base, "manifest.json")):  # a run id used again: a new run
        os.unlink(os.path.join(base, "manifest.json"))
    write_json(
        os.path.join(base, "before.json"),
        {"layout": LAYOUT, "paths": list(paths), "states": found},
    )
    hashes.save([os.path.normpath(p) for p in paths])
    return found


def needed(backup_dir, current=None):
    """The contents the runs under backup_dir still need: every one of the `current` run's
    snapshot, those a finished run's changes name (before and after), and every one of a snapshot
    without a manifest (a run that stopped, a rollback's backup). None when a run's record cannot
    be read (then nothing is dropped)."""
    runs = os.path.join(backup_dir, "runs")
    out = set()
    for name in os.listdir(runs) if os.path.isdir(runs) else []:
        run = os.path.join(runs, name)
        try:
            if run != current and os.path.isfile(os.path.join(run, "manifest.json")):
                changes = read_json(os.path.join(run, "manifest.json"))["changes"]
                states = [c[k] for c in changes for k in ("before", "after")]
            elif os.path.isfile(os.path.join(run, "before.json")):
                states = list(read_json(os.path.join(run, "before.json"))["states"].values())
            else:
                continue
        except (OSError, ValueError, KeyError, TypeError):
            return None
        out.update(one.get("sha256") for one in states if one.get("sha256"))
    return out


def drop_unneeded(backup_dir, current=None):
    """Remove the stored contents no run needs any more (`current`: the run directory whose
    snapshot is being taken); how many went."""
    store = os.path.join(backup_dir, "store")
    keep = needed(backup_dir, current) if os.path.isdir(store) else None
    if keep is None:
        return 0
    gone = 0
    for fan in os.listdir(store):
        top = os.path.join(store, fan)
        if not os.path.isdir(top) or os.path.islink(top):
            continue
        for name in os.listdir(top):
            if name not in keep:
                os.unlink(os.path.join(top, name))
                gone += 1
        if not os.listdir(top):
            os.rmdir(top)
    return gone


def backup_of(base, taken, path, sha):
    """Where the content `sha` of `path` before run `base` is kept: the host's store, or the run's
    own files/ copy for a run recorded before the store (`taken`: its before.json)."""
    if taken.get("layout") == LAYOUT:
        return store_path(backup_dir_of(base), sha)
    return kept(base, "files", path)


def after_copy(base, change):
    """The content a changed file had after the run: the run's after/ copy (runs recorded before
    the store) or the stored content of its hash; None for a file without one."""
    old = kept(base, "after", change["path"])
    if os.path.isfile(old):
        return old
    sha = change["after"].get("sha256")
    return store_path(backup_dir_of(base), sha) if sha else None


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
    """The changes from the snapshot in `base` to now: [{path, before, after, backup}]. With
    `copy_after` (the manifest), what each changed file holds now is kept too: in the host's store
    (read through its index), or in the run's after/ for a run recorded before the store."""
    taken = read_json(os.path.join(base, "before.json"))
    before = taken["states"]
    stored = taken.get("layout") == LAYOUT
    hashes = Hashes(backup_dir_of(base)) if copy_after and stored else Hashes()
    now = walk(taken["paths"], max_size, hashes)
    out = []
    for path in sorted(set(before) | set(now)):
        was, is_ = before.get(path, {"exists": False}), now.get(path, {"exists": False})
        if not differs(was, is_):
            continue
        backup = (
            backup_of(base, taken, path, was["sha256"])
            if was.get("type") == "file" and was.get("sha256")
            else None
        )
        if copy_after and not stored and is_.get("type") == "file" and is_.get("sha256"):
            copy_in(path, kept(base, "after", path))
        out.append({"path": path, "before": was, "after": is_, "backup": backup})
    if copy_after and stored:
        hashes.save([os.path.normpath(p) for p in taken["paths"]])
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
        if after.get("type") == "file":
            copy = after_copy(base, change)
            was = text_of(copy) if copy else None
        else:
            was = ""
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
        dropped = drop_unneeded(p["backup_dir"], base)
        module.exit_json(
            changed=False, casemate_record={}, paths=len(found), pruned=pruned, dropped=dropped
        )
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
