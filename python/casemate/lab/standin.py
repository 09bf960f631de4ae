#!/usr/bin/python3
"""casemate lab: the STAND-IN for "the kubelet running the etcd static pod".

A lab node has no kubelet (no Kubernetes server binaries exist here). The k8s profile installs
this file in the node as PROGRAM and runs it from the systemd unit SERVICE: it reads the static
pod manifest /etc/kubernetes/manifests/etcd.yaml and replaces itself (exec, same pid) with
exactly the manifest's `command:` (+ `args:`), so /proc/<pid>/cmdline of etcd is the manifest's
command, as with a kubelet-run pod. PATH_UNIT watches the manifest; when it is written, RESTARTER
runs `PROGRAM sync`, which restarts SERVICE if the content changed (or etcd is not running), as
the kubelet restarts a static pod whose manifest changed. A manifest that is missing, does not
parse or is no usable etcd Pod is logged and etcd stays down (exit EX_CONFIG, which the unit does
not restart), as a kubelet would not run it. Every start writes STATE: the manifest's sha256, the
argv, the pid, or why etcd stays down. Messages go to the journal of SERVICE / RESTARTER.

It runs in the node with its python3 (>= 3.11) and PyYAML (python3-yaml), nothing else; the host
side imports it only for the unit texts and to test its pure parts. It never writes anything
under /etc/kubernetes: the kubeadm layout is only read."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

MANIFEST = "/etc/kubernetes/manifests/etcd.yaml"
PROGRAM = "/usr/local/libexec/casemate-lab/kubelet-standin-etcd"
SERVICE = "casemate-lab-kubelet-standin-etcd.service"
PATH_UNIT = "casemate-lab-kubelet-standin-etcd.path"
RESTARTER = "casemate-lab-kubelet-standin-etcd-restart.service"
STATE = "/run/casemate-lab/kubelet-standin-etcd.json"  # what it last started, from which sha256
UNIT_DIR = "/etc/systemd/system"  # the lab's own units: admin-local, outside the kubeadm layout
EX_CONFIG = 78  # sysexits.h: the manifest cannot be used
LOG_PREFIX = "casemate lab kubelet stand-in:"

_WHAT = (
    "# casemate lab: STAND-IN for the kubelet running the etcd static pod (a lab node has no\n"
    "# kubelet). Not part of Kubernetes or kubeadm; written by `casemate lab up --profile k8s`.\n"
)

SERVICE_TEXT = f"""\
{_WHAT}# Starts etcd with exactly the command of {MANIFEST} (see {PROGRAM});
# {PATH_UNIT} restarts it when that manifest changes. A manifest that cannot be used
# leaves etcd down (exit {EX_CONFIG}, not restarted); a crashing etcd is restarted like a pod.
[Unit]
Description=casemate lab stand-in for the kubelet: etcd static pod from {MANIFEST}
Documentation=file://{PROGRAM}
Wants=network-online.target
After=network-online.target containerd.service
StartLimitIntervalSec=0

[Service]
Type=notify
ExecStart=/usr/bin/python3 {PROGRAM}
Restart=always
RestartSec=10
RestartPreventExitStatus={EX_CONFIG}

[Install]
WantedBy=multi-user.target
"""

PATH_TEXT = f"""\
{_WHAT}# Watches {MANIFEST}; any change restarts {SERVICE} (via {RESTARTER}).
[Unit]
Description=casemate lab stand-in for the kubelet: watch {MANIFEST}

[Path]
PathChanged={MANIFEST}
Unit={RESTARTER}

[Install]
WantedBy=multi-user.target
"""

RESTARTER_TEXT = f"""\
{_WHAT}# Started by {PATH_UNIT} when {MANIFEST} was written: restarts {SERVICE} if
# the content changed (or etcd is not running), as the kubelet restarts a changed static pod.
[Unit]
Description=casemate lab stand-in for the kubelet: restart the etcd static pod after its manifest changed

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 {PROGRAM} sync
"""  # noqa: E501 - a unit's Description is one line


class ManifestError(ValueError):
    """The manifest is no etcd Pod the stand-in can run; the message says why."""


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{what} is not a list of strings")
    return list(value)


def command_of(text: str) -> list[str]:
    """The argv the kubelet would run for the `etcd` container of the Pod in `text`:
    `command` + `args`. ManifestError if the text does not parse or is no such Pod."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ManifestError(f"does not parse as YAML{at}: {getattr(e, 'problem', e)}") from None
    if not isinstance(doc, dict):
        raise ManifestError("is not a YAML mapping")
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "Pod":
        raise ManifestError("is not a v1 Pod")
    spec = doc.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not isinstance(containers, list):
        raise ManifestError("has no spec.containers list")
    named = [c for c in containers if isinstance(c, dict) and c.get("name") == "etcd"]
    if len(named) != 1:
        raise ManifestError("has no single container named etcd")
    argv = _strings(named[0].get("command"), "the etcd container's command")
    argv += _strings(named[0].get("args", []), "the etcd container's args")
    if not argv or not argv[0]:
        raise ManifestError("gives the etcd container no command")
    return argv


def _log(message: str) -> None:
    print(f"{LOG_PREFIX} {message}", file=sys.stderr, flush=True)


def _read_manifest() -> tuple[bytes | None, str]:
    """The manifest's bytes (None if unreadable) and their sha256, or why it cannot be read."""
    try:
        raw = Path(MANIFEST).read_bytes()
    except OSError as e:
        return None, f"cannot be read: {e.strerror}"
    return raw, hashlib.sha256(raw).hexdigest()


def _write_state(state: dict[str, object]) -> None:
    """What the stand-in last did, for people and tests: STATE (JSON), replaced atomically."""
    path = Path(STATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)


def _read_state() -> dict[str, object]:
    try:
        loaded = json.loads(Path(STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def run() -> int:
    """ExecStart of SERVICE: become etcd as the manifest says, or stay down and say why."""
    raw, digest = _read_manifest()
    state: dict[str, object] = {
        "manifest": MANIFEST,
        "sha256": digest if raw is not None else None,
        "pid": os.getpid(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if raw is None:
        _log(f"{MANIFEST} {digest}; etcd stays down")
        _write_state({**state, "argv": None, "error": digest})
        return EX_CONFIG
    try:
        argv = command_of(raw.decode("utf-8", errors="replace"))
    except ManifestError as e:
        _log(f"{MANIFEST} (sha256 {digest[:12]}) {e}; etcd stays down until the manifest is fixed")
        _write_state({**state, "argv": None, "error": str(e)})
        return EX_CONFIG
    _write_state({**state, "argv": argv, "error": None})
    _log(f"starting etcd from {MANIFEST} (sha256 {digest[:12]}): {' '.join(argv)}")
    try:
        os.execvp(argv[0], argv)  # the point: the manifest's command, as is
    except OSError as e:
        _log(f"cannot run {argv[0]!r}: {e.strerror}")
    return 1  # like a container that fails to start: the unit retries


def needs_restart(digest: str | None, state: dict[str, object], active: bool) -> bool:
    """Whether the etcd "pod" must be (re)started: the kubelet restarts a static pod when its
    manifest's content changed, and starts one that is not running."""
    return not active or digest != state.get("sha256")


def sync() -> int:
    """ExecStart of RESTARTER, run when the manifest changed on disk."""
    raw, digest = _read_manifest()
    current = digest if raw is not None else None
    active = subprocess.run(["systemctl", "is-active", "--quiet", SERVICE], check=False)
    state = _read_state()
    if not needs_restart(current, state, active.returncode == 0):
        _log(f"{MANIFEST} written, content unchanged: etcd keeps running")
        return 0
    _log(f"{MANIFEST} changed (sha256 {str(current)[:12]}): restarting etcd")
    restart = ["systemctl", "--no-block", "restart", SERVICE]
    return subprocess.run(restart, check=False).returncode


def main(argv: list[str]) -> int:
    if argv[1:] == ["sync"]:
        return sync()
    if argv[1:]:
        _log(f"usage: {PROGRAM} [sync]")
        return 2
    return run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
