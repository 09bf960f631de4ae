"""`--metrics-file`: a run's outcome in the Prometheus text format, for node_exporter's textfile
collector (written by prometheus_client, atomically: a scrape never reads half a file).

Every metric is documented in docs/history.md ("Metrics"). Run-level metrics carry the label
`command` (verify, harden, drift), so one directory can hold each command's file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from casemate.checks.base import Status
from casemate.drift import per_host
from casemate.errors import BadInputError
from casemate.harden import OUTCOMES, run_outcome
from casemate.history.record import HARDEN_COUNTS, when


def check_target(path: Path) -> None:
    """Bad input before any host is touched: the file's directory must exist."""
    if path.is_dir():
        raise BadInputError(f"--metrics-file {path}: is a directory")
    if not path.parent.is_dir():
        raise BadInputError(f"--metrics-file {path}: no such directory {path.parent}")


def _run(registry: CollectorRegistry, meta: Mapping[str, Any], recorded: bool) -> str:
    command = str(meta["kind"])
    started, finished = when(meta.get("started")), when(meta.get("finished"))
    if finished is not None:
        Gauge(
            "casemate_run_timestamp_seconds",
            "When the last run finished (Unix time).",
            ["command"],
            registry=registry,
        ).labels(command).set(finished.timestamp())
        if started is not None:
            Gauge(
                "casemate_run_duration_seconds",
                "How long the last run took.",
                ["command"],
                registry=registry,
            ).labels(command).set((finished - started).total_seconds())
    outcome = Gauge(
        "casemate_run_outcome",
        "The last run's outcome: 1 for the outcome it came to, 0 for the others.",
        ["command", "outcome"],
        registry=registry,
    )
    came_to = run_outcome(meta)
    for name in OUTCOMES:
        outcome.labels(command, name).set(1 if name == came_to else 0)
    Gauge(
        "casemate_history_recorded",
        "1 when the last run was recorded in the history store, 0 when that failed.",
        ["command"],
        registry=registry,
    ).labels(command).set(1 if recorded else 0)
    return command


def verify_registry(
    doc: Mapping[str, Any],
    meta: Mapping[str, Any],
    *,
    recorded: bool,
    drifted: Mapping[str, int] | None,
    drifted_help: str = "Controls of the host that passed in its previous recorded result and "
    "fail now.",
) -> CollectorRegistry:
    """A verify (or drift) run: per host the count of controls in each status, whether it was
    probed, and (when known) how many controls drifted: for verify, those that passed in the
    host's previous recorded result and fail now (when the history could be read); for drift,
    what drift named (`drift_registry`)."""
    registry = CollectorRegistry()
    command = _run(registry, meta, recorded)
    controls = Gauge(
        "casemate_controls",
        "Controls of the host in each status in the last run.",
        ["command", "host", "status"],
        registry=registry,
    )
    probed = Gauge(
        "casemate_host_probed",
        "1 when the host was probed in the last run, 0 when it could not be.",
        ["command", "host"],
        registry=registry,
    )
    for host in doc["hosts"]:
        for status in Status:
            controls.labels(command, host["name"], status.value).set(
                host["counts"].get(status.value, 0)
            )
        probed.labels(command, host["name"]).set(1 if host["probed"] else 0)
    if drifted is not None:
        gauge = Gauge(
            "casemate_drifted_controls",
            drifted_help,
            ["command", "host"],
            registry=registry,
        )
        for host in doc["hosts"]:
            gauge.labels(command, host["name"]).set(drifted.get(host["name"], 0))
    return registry


def drift_registry(
    report: Mapping[str, Any],
    drift: Mapping[str, Any],
    meta: Mapping[str, Any],
    *,
    recorded: bool,
) -> CollectorRegistry:
    """A drift run: verify's per-host counts of what the probe judged, each host's drifted
    controls (drifted, without remediation, or held back: as `casemate drift` names them), and
    whether the host failed (not probed, or its check-mode run failed)."""
    registry = verify_registry(
        report,
        meta,
        recorded=recorded,
        drifted=per_host(drift),
        drifted_help="Controls of the host that drifted in the last run (casemate drift).",
    )
    failed = Gauge(
        "casemate_host_failed",
        "1 when the host failed in the last run (not probed, or its check-mode run failed).",
        ["command", "host"],
        registry=registry,
    )
    for h in drift["hosts"]:
        failed.labels(str(meta["kind"]), h["name"]).set(1 if h["failed"] else 0)
    return registry


def harden_registry(
    meta: Mapping[str, Any], stats: Mapping[str, Mapping[str, int]], *, recorded: bool
) -> CollectorRegistry:
    """A harden run: per host Ansible's recap (tasks ok, changed, failed, unreachable...)."""
    registry = CollectorRegistry()
    command = _run(registry, meta, recorded)
    tasks = Gauge(
        "casemate_harden_tasks",
        "Ansible's recap for the host in the last harden run, by result.",
        ["command", "host", "result"],
        registry=registry,
    )
    for host in meta.get("hosts") or ():
        for result in HARDEN_COUNTS:
            tasks.labels(command, host, result).set((stats.get(host) or {}).get(result, 0))
    return registry


def write(path: Path, registry: CollectorRegistry) -> None:
    """Write the file atomically (a temporary file beside it, then renamed)."""
    write_to_textfile(str(path), registry)
