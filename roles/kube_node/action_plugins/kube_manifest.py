"""kube_manifest: change only casemate's settings in a Kubernetes node file, YAML-aware.

Runs on the controller: the node's file is read over the connection (slurp), edited and validated
here with the controller's PyYAML (Ansible itself needs it, so it is always present; the node needs
no YAML library), and written back through the copy action (atomic rename, check mode, --diff).
Before a real write the previous file is copied into `backup_dir`, which must not be the file's own
directory: the kubelet loads every file in its static pod directory.

Three formats:
- `pod`: a static pod manifest. Flags of one container's `command` are set, merged (comma lists),
  pruned or removed; hostPath volumes and their mounts are added once. Everything else stays.
- `config`: a component configuration document (e.g. KubeletConfiguration): keys are deep-merged
  or removed, every other key stays.
- `env`: a systemd environment file of flag variables (kubeadm-flags.env, /etc/default/kubelet):
  named flags are removed or list items pruned from the named variables.

The edit is judged on the parsed data: a file that already carries every setting is left as it
is, whatever its formatting. A file that cannot be read or edited fails the task, or, with
`if_broken: report`, is left alone and its reason returned as `broken` (the role then skips that
one component and goes on with the others).
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import os
import posixpath
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from ansible import constants as C  # noqa: N812 - Ansible's own idiom
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

FORMATS = ("pod", "config", "env")
_ENV_LINE = re.compile(r"^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class ManifestError(ValueError):
    """The file or the requested change is not something casemate may write."""


# --- YAML in and out ----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Close to what kubeadm (sigs.k8s.io/yaml) writes: block style, lists not indented under their
    key, no line folding, and double quotes where a plain scalar would read as another type."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    node = dumper.represent_scalar("tag:yaml.org,2002:str", data)
    plain = dumper.resolve(yaml.ScalarNode, data, (True, False))
    if data == "" or plain != "tag:yaml.org,2002:str":
        node.style = '"'
    return node


_Dumper.add_representer(str, _represent_str)


def load_yaml(text: str, what: str) -> Any:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{what} is not valid YAML ({exc})") from None
    docs = [d for d in docs if d is not None]
    if len(docs) != 1:
        raise ManifestError(f"{what} holds {len(docs)} YAML documents, not one")
    return docs[0]


def dump_yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, default_flow_style=False, sort_keys=False, width=1 << 30)


# --- flags --------------------------------------------------------------------------------------


def flag_text(value: Any) -> str:
    """A setting as a command-line value: booleans in Go's spelling, lists comma-joined."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(flag_text(v) for v in value)
    return str(value)


def _is_flag(item: str) -> bool:
    return item.startswith("-") and len(item) > 1 and item != "--"


def split_flags(argv: list[str]) -> list[tuple[str, str | None, int, int]]:
    """(name, value or None, start index, item count) of each flag in argv[1:]. `--name value`
    pairs are recognised: these components take no positional arguments."""
    found = []
    i = 1
    while i < len(argv):
        item = argv[i]
        if not _is_flag(item):
            i += 1
            continue
        name, eq, value = item.partition("=")
        if eq:
            found.append((name, value, i, 1))
            i += 1
        elif i + 1 < len(argv) and not _is_flag(argv[i + 1]):
            found.append((name, argv[i + 1], i, 2))
            i += 2
        else:
            found.append((name, None, i, 1))
            i += 1
    return found


def flag_values(argv: list[str]) -> dict[str, str | None]:
    """name -> value of the last occurrence (the one a Go flag parser keeps)."""
    return {name: value for name, value, _, _ in split_flags(argv)}


def _item_key(item: str) -> str:
    return item.split("=", 1)[0].strip()


def merge_items(current: str | None, wanted: Iterable[Any]) -> str:
    """A comma list with the wanted items added (a `key=value` item replaces the same key's value),
    duplicates dropped, the existing order kept."""
    items: list[str] = []
    seen: dict[str, int] = {}
    for raw in [*(current or "").split(","), *(flag_text(w) for w in wanted)]:
        item = raw.strip()
        if not item:
            continue
        key = _item_key(item)
        if key in seen:
            items[seen[key]] = item if "=" in item else items[seen[key]]
            continue
        seen[key] = len(items)
        items.append(item)
    return ",".join(items)


def prune_items(current: str | None, unwanted: Iterable[Any]) -> str:
    drop = {_item_key(flag_text(u)) for u in unwanted}
    return ",".join(
        i.strip() for i in (current or "").split(",") if i.strip() and _item_key(i) not in drop
    )


def _insert_at(argv: list[str], name: str) -> int:
    """Where a new flag goes: at its sorted place when the flags are sorted (kubeadm sorts them),
    else at the end."""
    flags = split_flags(argv)
    names = [f[0] for f in flags]
    if names != sorted(names):
        return len(argv)
    for other, _, start, _ in flags:
        if other > name:
            return start
    return len(argv)


def _set_flag(argv: list[str], name: str, value: str | None) -> list[str]:
    """argv with exactly one `name=value` (or the bare `name` when value is None) in place of the
    first occurrence; later occurrences go."""
    occurrences = [f for f in split_flags(argv) if f[0] == name]
    new_item = name if value is None else f"{name}={value}"
    if not occurrences:
        at = _insert_at(argv, name)
        return [*argv[:at], new_item, *argv[at:]]
    out = list(argv)
    for _, _, start, count in reversed(occurrences[1:]):
        del out[start : start + count]
    _, _, start, count = occurrences[0]
    out[start : start + count] = [new_item]
    return out


def _remove_flag(argv: list[str], name: str) -> list[str]:
    out = list(argv)
    for _, _, start, count in reversed([f for f in split_flags(argv) if f[0] == name]):
        del out[start : start + count]
    return out


def edit_argv(
    argv: list[str],
    *,
    flags: Mapping[str, Any] | None = None,
    merge: Mapping[str, Iterable[Any]] | None = None,
    prune: Mapping[str, Iterable[Any]] | None = None,
    remove: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> list[str]:
    """Apply casemate's flag changes to a command line. Order of operations: removals, prunes,
    merges, then values; `defaults` only fill flags that are absent."""
    for name in [*(flags or {}), *(merge or {}), *(prune or {}), *remove, *(defaults or {})]:
        if not name.startswith("--") or len(name) < 3 or "=" in name:
            raise ManifestError(f"'{name}' is not a flag name (write it as --name)")
    out = list(argv)
    for name in remove:
        out = _remove_flag(out, name)
    for name, items in (prune or {}).items():
        current = flag_values(out)
        if name not in current:
            continue
        kept = prune_items(current[name], items)
        out = _set_flag(out, name, kept) if kept else _remove_flag(out, name)
    for name, items in (merge or {}).items():
        merged = merge_items(flag_values(out).get(name), items)
        if merged:
            out = _set_flag(out, name, merged)
    for name, value in (flags or {}).items():
        out = _set_flag(out, name, None if value is None else flag_text(value))
    for name, value in (defaults or {}).items():
        if name not in flag_values(out):
            out = _set_flag(out, name, flag_text(value))
    return out


# --- pods ---------------------------------------------------------------------------------------


def _container(doc: dict[str, Any], name: str | None) -> dict[str, Any]:
    containers = doc.get("spec", {}).get("containers") or []
    if name is None:
        return containers[0]  # type: ignore[no-any-return]
    for c in containers:
        if c.get("name") == name:
            return c  # type: ignore[no-any-return]
    raise ManifestError(f"the pod has no container named '{name}'")


def _place(items: list[dict[str, Any]], new: dict[str, Any]) -> None:
    """Insert by name at its sorted place when the list is sorted by name (as kubeadm writes it)."""
    names = [str(i.get("name", "")) for i in items]
    if names == sorted(names):
        at = next((k for k, n in enumerate(names) if n > new["name"]), len(items))
        items.insert(at, new)
    else:
        items.append(new)


def _same_path(a: Any, b: Any) -> bool:
    """Whether two absolute paths name the same place (`/x/` and `/x` do)."""
    return posixpath.normpath(str(a or "")) == posixpath.normpath(str(b or ""))


def _source(volume: Mapping[str, Any]) -> str:
    """A volume's source, for a message: `hostPath /srv/audit`, `configMap`, ..."""
    kinds = sorted(set(volume) - {"name"})
    if kinds == ["hostPath"]:
        return f"hostPath {(volume.get('hostPath') or {}).get('path')}"
    return ", ".join(kinds) or "no source"


def add_volume(doc: dict[str, Any], container: dict[str, Any], spec: Mapping[str, Any]) -> None:
    """One hostPath volume and its mount. A mount that already puts the same host path at the same
    place (under any name) is reused; one that puts something else there is refused, and so is a
    volume or mount of the same name that is something else (a site's own is never replaced).
    Paths are compared normalised (`/x/` is `/x`)."""
    for key in ("name", "hostPath", "mountPath"):
        if not spec.get(key):
            raise ManifestError(f"volume {dict(spec)}: '{key}' is required")
    name = str(spec["name"])
    host = posixpath.normpath(str(spec["hostPath"]))
    where = posixpath.normpath(str(spec["mountPath"]))
    volumes: list[dict[str, Any]] = doc["spec"].setdefault("volumes", [])
    mounts: list[dict[str, Any]] = container.setdefault("volumeMounts", [])
    by_name = {v.get("name"): v for v in volumes}
    for m in mounts:
        if not _same_path(m.get("mountPath"), where) or m.get("name") == name:
            continue
        other = by_name.get(m.get("name"), {})
        if set(other) - {"name"} == {"hostPath"} and _same_path(
            (other.get("hostPath") or {}).get("path"), host
        ):
            return  # the site mounts it already
        raise ManifestError(
            f"{where} is already mounted from volume '{m.get('name')}'; "
            f"refusing to mount {host} there"
        )
    volume = by_name.get(name)
    if volume is None:
        host_path: dict[str, Any] = {"path": host}
        if spec.get("type"):
            host_path["type"] = str(spec["type"])
        _place(volumes, {"hostPath": host_path, "name": name})
    elif set(volume) - {"name"} != {"hostPath"} or not _same_path(
        (volume.get("hostPath") or {}).get("path"), host
    ):
        raise ManifestError(
            f"the pod already has a volume '{name}' ({_source(volume)}); "
            f"refusing to replace it with hostPath {host}"
        )
    current = next((m for m in mounts if m.get("name") == name), None)
    if current is None:
        mount: dict[str, Any] = {"mountPath": where, "name": name}
        if spec.get("readOnly"):
            mount["readOnly"] = True
        _place(mounts, mount)
    elif not _same_path(current.get("mountPath"), where):
        raise ManifestError(
            f"volume '{name}' is already mounted at {current.get('mountPath')}; "
            f"refusing to move it to {where}"
        )
    elif spec.get("readOnly") and not current.get("readOnly"):
        current["readOnly"] = True


def _shape_problem(doc: Any) -> str | None:
    """What is wrong with the pod's outline, if anything."""
    if not isinstance(doc, dict):
        return "not a mapping"
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "Pod":
        return f"not a v1 Pod (apiVersion {doc.get('apiVersion')!r}, kind {doc.get('kind')!r})"
    if not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
        return "metadata.name is missing"
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return "spec is missing"
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return "spec.containers is empty"
    if not all(isinstance(c, dict) and c.get("name") for c in containers):
        return "every container needs a name"
    command = containers[0].get("command")
    if not isinstance(command, list) or not command or not all(isinstance(i, str) for i in command):
        return "containers[0].command is not a list of strings"
    volumes = spec.get("volumes") or []
    if not isinstance(volumes, list) or not all(isinstance(v, dict) for v in volumes):
        return "spec.volumes is not a list of volumes"
    names = [v.get("name") for v in volumes]
    if len(names) != len(set(names)) or not all(names):
        return "volume names are missing or repeated"
    return None


def _mount_problem(container: dict[str, Any], volumes: set[str]) -> str | None:
    """What is wrong with one container's mounts, if anything."""
    mounts = container.get("volumeMounts") or []
    where = f"container {container['name']}"
    if not isinstance(mounts, list) or not all(isinstance(m, dict) for m in mounts):
        return f"{where}: volumeMounts is not a list"
    paths = [posixpath.normpath(str(m.get("mountPath", ""))) for m in mounts]
    if len(paths) != len(set(paths)):
        return f"{where}: a mount path is used twice"
    for m in mounts:
        if m.get("name") not in volumes:
            return f"{where}: mount '{m.get('name')}' has no volume"
        if not str(m.get("mountPath", "")).startswith("/"):
            return f"{where}: mount '{m.get('name')}' has no absolute mountPath"
    return None


def validate_pod(doc: Any, what: str = "the manifest") -> None:
    """What the kubelet needs before it will run a static pod, and what casemate relies on."""
    problem = _shape_problem(doc)
    if problem is None:
        volumes = {v["name"] for v in doc["spec"].get("volumes") or []}
        problem = next(
            (p for c in doc["spec"]["containers"] if (p := _mount_problem(c, volumes))), None
        )
    if problem is not None:
        raise ManifestError(f"{what}: {problem}")


def edit_pod(
    doc: Any,
    *,
    container: str | None = None,
    flags: Mapping[str, Any] | None = None,
    merge: Mapping[str, Iterable[Any]] | None = None,
    prune: Mapping[str, Iterable[Any]] | None = None,
    remove: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
    volumes: Iterable[Mapping[str, Any]] = (),
    annotations: Mapping[str, Any] | None = None,
) -> Any:
    """A changed copy of a static pod manifest (the input is left alone)."""
    validate_pod(doc, "the current manifest")
    new = copy.deepcopy(doc)
    target = _container(new, container)
    if not isinstance(target.get("command"), list) or not target["command"]:
        raise ManifestError(f"container {target.get('name')} has no command to edit")
    managed = {*(flags or {}), *(merge or {}), *(prune or {}), *remove, *(defaults or {})}
    in_args = managed & set(flag_values(["", *(target.get("args") or [])]))
    if in_args:
        raise ManifestError(f"flags given in args are not supported: {', '.join(sorted(in_args))}")
    target["command"] = edit_argv(
        target["command"], flags=flags, merge=merge, prune=prune, remove=remove, defaults=defaults
    )
    for spec in volumes:
        add_volume(new, target, spec)
    if annotations:
        meta = new["metadata"]
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            **{str(k): str(v) for k, v in annotations.items()},
        }
    validate_pod(new, "the changed manifest")
    return new


def probe_of(container: Mapping[str, Any]) -> dict[str, Any]:
    """scheme, host, port and path of the container's HTTP readiness (else liveness) probe; the
    host defaults to the loopback address (static pods run on the host network)."""
    for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        get = (container.get(kind) or {}).get("httpGet")
        if isinstance(get, dict) and get.get("port"):
            return {
                "scheme": str(get.get("scheme", "HTTP")).lower(),
                "host": str(get.get("host") or "127.0.0.1"),
                "port": get["port"],
                "path": str(get.get("path", "/")),
            }
    return {}


def changed_flags(before: list[str], after: list[str]) -> list[str]:
    old, new = flag_values(before), flag_values(after)
    return sorted(n for n in {*old, *new} if old.get(n, ...) != new.get(n, ...))


# --- configuration documents --------------------------------------------------------------------


def deep_merge(base: Any, wanted: Mapping[str, Any]) -> dict[str, Any]:
    """base with wanted merged in, mappings recursively. New keys go to their sorted place when
    the existing keys are sorted (kubeadm writes them so), else at the end."""
    out = dict(base) if isinstance(base, dict) else {}
    was_sorted = list(out) == sorted(out)
    for key, value in wanted.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
    if was_sorted and out and all(isinstance(k, str) for k in out):
        out = {k: out[k] for k in sorted(out)}
    return out


def edit_config(
    doc: Any,
    *,
    settings: Mapping[str, Any] | None = None,
    remove_keys: Iterable[str] = (),
    kind: str | None = None,
) -> dict[str, Any]:
    """A changed copy of a configuration document: settings deep-merged (lists and scalars are
    replaced), dotted `remove_keys` deleted, every other key kept."""

    def check(d: Any, what: str) -> None:
        if not isinstance(d, dict):
            raise ManifestError(f"{what} is not a mapping")
        if kind and d.get("kind") != kind:
            raise ManifestError(f"{what} is a {d.get('kind')!r}, not a {kind}")
        if not d.get("apiVersion"):
            raise ManifestError(f"{what} has no apiVersion")

    check(doc, "the current file")
    new = deep_merge(copy.deepcopy(doc), settings or {})
    for dotted in remove_keys:
        parts = dotted.split(".")
        node: Any = new
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    check(new, "the changed file")
    return new


# --- environment files --------------------------------------------------------------------------


def _env_value(raw: str) -> tuple[str, str]:
    """(value, quote) of the right-hand side of a systemd EnvironmentFile line."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1], raw[0]
    return raw, ""


def edit_env(
    text: str,
    *,
    variables: Iterable[str],
    remove: Iterable[str] = (),
    prune: Mapping[str, Iterable[Any]] | None = None,
) -> str:
    """Flags removed from (or list items pruned in) the named variables; other lines untouched."""
    wanted = set(variables)
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        m = _ENV_LINE.match(body)
        if not m or m.group(2) not in wanted:
            out.append(line)
            continue
        value, quote = _env_value(m.group(3))
        try:
            argv = ["", *shlex.split(value)]
        except ValueError as exc:
            raise ManifestError(f"{m.group(2)}: cannot split its value ({exc})") from None
        new = edit_argv(argv, remove=remove, prune=prune)[1:]
        if new == argv[1:]:
            out.append(line)
            continue
        joined = " ".join(shlex.quote(a) for a in new)
        quote = quote or ('"' if " " in joined else "")
        end = "\n" if line.endswith("\n") else ""
        out.append(f"{m.group(1)}{m.group(2)}={quote}{joined}{quote}{end}")
    return "".join(out)


def env_flags(text: str, variables: Iterable[str]) -> dict[str, dict[str, str | None]]:
    """variable -> its flags, for the variables given."""
    wanted = set(variables)
    found: dict[str, dict[str, str | None]] = {}
    for line in text.splitlines():
        m = _ENV_LINE.match(line)
        if m and m.group(2) in wanted:
            try:
                found[m.group(2)] = flag_values(["", *shlex.split(_env_value(m.group(3))[0])])
            except ValueError:
                found[m.group(2)] = {}
    return found


# --- one edit of one file -----------------------------------------------------------------------


def own_document(text: str | None, document: Any, header: str = "") -> tuple[str, bool]:
    """(text, changed) of a file casemate owns whole: rewritten only when its data differ."""
    if not isinstance(document, dict) or not document.get("apiVersion") or not document.get("kind"):
        raise ManifestError("a document of casemate's own needs apiVersion and kind")
    if text is not None:
        try:
            if load_yaml(text, "the current file") == document:
                return text, False
        except ManifestError:
            pass  # casemate's own file, unreadable: it is rewritten
    body = dump_yaml(document)
    if load_yaml(body, "the new file") != document:
        raise ManifestError("the new file does not read back as written")
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()] if header.strip() else []
    return "".join(f"{line}\n" for line in lines) + body, True


def plan_edit(
    fmt: str, text: str | None, args: Mapping[str, Any]
) -> tuple[str, bool, dict[str, Any]]:
    """(new text, changed, facts about the result) for one file (text None: the file is missing).
    Pure: no host is touched."""
    if fmt == "config" and args.get("document") is not None:
        new_text, changed = own_document(text, args["document"], args.get("header") or "")
        return new_text, changed, {"checksum": hashlib.sha256(new_text.encode()).hexdigest()}
    if text is None:
        raise ManifestError("the file does not exist")
    if fmt == "env":
        new_text = edit_env(
            text,
            variables=args.get("variables") or [],
            remove=args.get("remove") or [],
            prune=args.get("prune") or {},
        )
        variables = args.get("variables") or []
        return new_text, new_text != text, {"flags": env_flags(new_text, variables)}
    doc = load_yaml(text, "the current file")
    if fmt == "pod":
        new = edit_pod(
            doc,
            container=args.get("container"),
            flags=args.get("flags") or {},
            merge=args.get("merge") or {},
            prune=args.get("prune") or {},
            remove=args.get("remove") or [],
            defaults=args.get("defaults") or {},
            volumes=args.get("volumes") or [],
            annotations=args.get("annotations") or {},
        )
        before = _container(doc, args.get("container"))["command"]
        after = _container(new, args.get("container"))["command"]
        changed = changed_flags(before, after)
        now = flag_values(after)
        facts: dict[str, Any] = {
            "command": after,
            "previous_command": before,
            "flags": now,
            "changed_flags": changed,
            # what a restarted process must show: the changed flags as now written, and none of
            # the removed ones
            "expect_present": [i for i in after[1:] if _item_key(i) in changed],
            "expect_absent": [n for n in changed if n not in now],
            "probe": probe_of(_container(new, args.get("container"))),
        }
    else:
        new = edit_config(
            doc,
            settings=args.get("settings") or {},
            remove_keys=args.get("remove_keys") or [],
            kind=args.get("kind"),
        )
        facts = {"config": new}
    if new == doc:
        return text, False, facts
    new_text = dump_yaml(new)
    if load_yaml(new_text, "the changed file") != new:  # the text we write reads back the same
        raise ManifestError("the changed file does not read back as written")
    return new_text, True, facts


def read_result(path: str, found: Mapping[str, Any]) -> dict[str, Any]:
    """What a read by this action (format pod, no change asked, if_broken: report) returns, from
    the file as the node read it whole ({exists, text}: kube_node_facts' read), for a role that
    decides on the controller without a task per file. A missing file is broken, as here."""
    if found.get("exists") and found.get("text") is None:
        raise AnsibleActionFail(f"{path}: cannot be read as UTF-8 text")
    try:
        _, _, facts = plan_edit("pod", found.get("text") if found.get("exists") else None, {})
    except ManifestError as exc:
        return {
            "path": path,
            "changed": False,
            "broken": f"{path}: {exc}; the file was left as it was",
        }
    return {**facts, "path": path, "changed": False}


def pod_would_change(text: str, edit: Mapping[str, Any]) -> bool:
    """Whether an edit of a static pod manifest (this action's pod arguments) would change it, or
    cannot be made to it (the edit step then reports it broken, so it must run)."""
    try:
        _, changed, _ = plan_edit("pod", text, edit)
    except ManifestError:
        return True
    return changed


def _plain(value: Any) -> Any:
    """Task arguments as plain Python values (Ansible hands over its own str and dict subclasses,
    which YAML's safe dumper does not know)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _inside(path: str, directory: str) -> bool:
    path, directory = posixpath.normpath(path), posixpath.normpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _VALID_ARGS = frozenset(
        (
            "path",
            "format",
            "backup_dir",
            "owner",
            "group",
            "mode",
            "container",
            "flags",
            "merge",
            "prune",
            "remove",
            "defaults",
            "volumes",
            "settings",
            "remove_keys",
            "kind",
            "variables",
            "annotations",
            "document",
            "header",
            "if_broken",
        )
    )

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = _plain(dict(self._task.args))
        path, fmt = args.get("path"), args.get("format", "pod")
        backup_dir = args.get("backup_dir")
        if args.get("if_broken", "fail") not in ("fail", "report"):
            raise AnsibleActionFail("kube_manifest: if_broken is fail or report")
        if not path or fmt not in FORMATS:
            raise AnsibleActionFail(f"kube_manifest needs a path and a format among {FORMATS}")
        if not backup_dir or _inside(backup_dir, posixpath.dirname(path)):
            raise AnsibleActionFail(
                f"backup_dir must be given and lie outside {posixpath.dirname(path)}: a backup "
                "next to a static pod manifest would be loaded by the kubelet"
            )
        try:
            return self._edit(
                result=result,
                task_vars=task_vars,
                path=path,
                fmt=fmt,
                backup_dir=backup_dir,
                args=args,
            )
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def _module(self, name: str, module_args: dict[str, Any], task_vars: dict[str, Any]) -> Any:
        found = self._execute_module(module_name=name, module_args=module_args, task_vars=task_vars)
        if found.get("failed"):
            raise AnsibleActionFail(
                f"{name} on {module_args.get('src') or module_args.get('path')}: {found.get('msg')}"
            )
        return found

    def _edit(
        self,
        *,
        result: dict[str, Any],
        task_vars: dict[str, Any],
        path: str,
        fmt: str,
        backup_dir: str,
        args: dict[str, Any],
    ) -> dict[str, Any]:
        found = self._module(
            "ansible.legacy.stat", {"path": path, "get_checksum": False}, task_vars
        )
        text = None
        if found["stat"]["exists"]:
            result["previous_mode"] = found["stat"]["mode"]
            read = self._module("ansible.legacy.slurp", {"src": path}, task_vars)
            text = base64.b64decode(read["content"]).decode("utf-8")
        try:
            new_text, changed, facts = plan_edit(fmt, text, args)
        except ManifestError as exc:
            reason = f"{path}: {exc}; the file was left as it was"
            if args.get("if_broken") == "report":  # the role skips this one component
                result.update(path=path, changed=False, broken=reason)
                return result
            raise AnsibleActionFail(reason) from None
        result.update(facts, path=path, changed=False)
        if not changed:  # owner and mode are the file controls' business, not a reason to write
            return result
        if changed and text is not None and not self._task.check_mode:
            stamp = task_vars.get("casemate_stamp") or _stamp()
            backup = posixpath.join(backup_dir, f"{posixpath.basename(path)}.{stamp}")
            self._module(
                "ansible.legacy.file",
                {
                    "path": backup_dir,
                    "state": "directory",
                    "owner": "root",
                    "group": "root",
                    "mode": "0700",
                },
                task_vars,
            )
            self._module(
                "ansible.legacy.copy",
                {
                    "src": path,
                    "dest": backup,
                    "remote_src": True,
                    "mode": "0600",
                    "owner": "root",
                    "group": "root",
                },
                task_vars,
            )
            result["backup_file"] = backup
        written = self._write(task_vars, path, new_text, args)
        if written.get("failed"):
            raise AnsibleActionFail(f"{path}: {written.get('msg')}")
        result["changed"] = bool(written.get("changed"))
        if "diff" in written:
            result["diff"] = written["diff"]
        return result

    def _write(
        self, task_vars: dict[str, Any], path: str, text: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        new_task = self._task.copy()
        new_task.args.clear()
        new_task.args.update(
            {k: args[k] for k in ("owner", "group", "mode") if args.get(k) is not None}
        )
        local = tempfile.mkdtemp(dir=C.DEFAULT_LOCAL_TMP)
        try:
            source = os.path.join(local, posixpath.basename(path))  # noqa: PTH118 - a local temp path
            with open(source, "w", encoding="utf-8") as handle:  # noqa: PTH123 - as above
                handle.write(text)
            new_task.args.update({"src": source, "dest": path})
            copy_action = self._shared_loader_obj.action_loader.get(
                "ansible.legacy.copy",
                task=new_task,
                connection=self._connection,
                play_context=self._play_context,
                loader=self._loader,
                templar=self._templar,
                shared_loader_obj=self._shared_loader_obj,
            )
            return copy_action.run(task_vars=task_vars)  # type: ignore[no-any-return]
        finally:
            shutil.rmtree(local, ignore_errors=True)


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
