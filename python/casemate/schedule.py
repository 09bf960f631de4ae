"""`casemate schedule`: a systemd service and timer on the controller that run casemate again and
again (docs/schedule.md). The unit text is rendered here, from one template per unit kind, and
the scheduled command line is built in one function (`command_line`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casemate import private
from casemate.errors import BadInputError, EnvironmentProblemError

# What a scheduled run runs: look for drift (default), or fix only what drifted (--remediate)
CHECK, REMEDIATE = ("drift",), ("harden", "--only-drifted")
# Exit statuses of a scheduled run that are not the unit's failure: 1 findings (or drift), 4 busy
# (another run held the inventory or a host: the next tick tries again).
SUCCESS_EXIT = (1, 4)
MARK = "# casemate-schedule: "  # the service file's first line: what status and remove read
SYSTEM_DIR = Path("/etc/systemd/system")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3,
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip
_SPAN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)


def parse_every(text: str) -> float:
    """Seconds in a systemd time span (`30s`, `15min`, `1h`, `1d`, `1h 30min`; a bare number is
    seconds, as systemd reads it). BadInputError when it is not one, or not above zero; checked by
    `systemd-analyze timespan` too where it is installed."""
    bad = BadInputError(
        f"--every must be a systemd time span above zero such as 15min, 1h or 1d, not '{text}'"
    )
    total, pos = 0.0, 0
    if not text.strip():
        raise bad
    while pos < len(text.rstrip()):
        found = _SPAN.match(text, pos)
        if found is None or found.group(2).lower() not in {"", *_UNITS}:
            raise bad
        total += float(found.group(1)) * _UNITS.get(found.group(2).lower() or "s", 1)
        pos = found.end()
    if total < 1:
        raise bad
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        done = subprocess.run(
            [analyze, "timespan", text], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise bad
    return total


@dataclass(frozen=True, slots=True)
class Spec:
    """One schedule, as `schedule install` was given it (paths absolute)."""

    name: str
    casemate: Path  # the casemate executable
    state: Path
    inventory: Path
    every: str
    workdir: Path  # where a run starts: casemate-waivers.yml there applies, as by hand
    remediate: bool = False
    level: int = 1
    profile: str = "standard"
    metrics_file: Path | None = None
    env_file: Path | None = None  # CASEMATE_DB (the URL may hold a password: not in the unit)
    user: bool = False


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise BadInputError(
            f"--name must be letters, digits, '.', '_' or '-' (64 at most), not '{name}'"
        )
    return name


def default_name(inventory: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", inventory.stem)[:48] or "inventory"
    return f"casemate-{stem}"


def command_line(spec: Spec) -> list[str]:
    """THE scheduled command: what the service runs, every argument absolute."""
    argv = [str(spec.casemate), "--state-dir", str(spec.state)]
    argv += [*(REMEDIATE if spec.remediate else CHECK), "-i", str(spec.inventory)]
    argv += ["--level", str(spec.level), "--profile", spec.profile]
    if spec.metrics_file is not None:
        argv += ["--metrics-file", str(spec.metrics_file)]
    return argv


def _quoted(arg: str) -> str:
    """One argument as systemd's ExecStart= reads it: specifiers (%) and variables ($) escaped,
    quoted when it holds anything but plain characters."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


SERVICE = """\
{mark}{record}
[Unit]
Description=casemate {what} of {inventory} (schedule {name})
Documentation=https://github.com/casemate/casemate/blob/main/docs/schedule.md
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
WorkingDirectory={workdir}
{environment}ExecStart={exec_start}
SuccessExitStatus={success}
SyslogIdentifier={name}
StandardOutput=journal
StandardError=journal
Environment=COLUMNS=160
"""

TIMER = """\
[Unit]
Description=Run casemate schedule {name} every {every}

[Timer]
OnActiveSec={every}
OnUnitActiveSec={every}
AccuracySec=1s
Unit={name}.service

[Install]
WantedBy=timers.target
"""


def record(spec: Spec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "state": str(spec.state),
        "inventory": str(spec.inventory),
        "every": spec.every,
        "remediate": spec.remediate,
        "user": spec.user,
        "env_file": str(spec.env_file) if spec.env_file else None,
        "command": command_line(spec),
    }


def render(spec: Spec) -> dict[str, str]:
    """The unit files' names and text."""
    environment = f"EnvironmentFile={_quoted(str(spec.env_file))}\n" if spec.env_file else ""
    service = SERVICE.format(
        mark=MARK,
        record=json.dumps(record(spec), sort_keys=True),
        what="remediation (harden)" if spec.remediate else "check",
        inventory=spec.inventory,
        name=spec.name,
        workdir=_quoted(str(spec.workdir)),
        environment=environment,
        exec_start=" ".join(_quoted(a) for a in command_line(spec)),
        success=" ".join(map(str, SUCCESS_EXIT)),
    )
    timer = TIMER.format(name=spec.name, every=spec.every)
    return {f"{spec.name}.service": service, f"{spec.name}.timer": timer}


def unit_dir(user: bool) -> Path:
    return Path.home() / ".config" / "systemd" / "user" if user else SYSTEM_DIR


def systemctl(user: bool, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemctl")
    if tool is None:
        raise EnvironmentProblemError("systemctl not found: casemate schedule needs systemd")
    argv = [tool, *(["--user"] if user else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise EnvironmentProblemError(
            f"systemctl {' '.join(argv[1:])}: {why[-1] if why else f'exit {done.returncode}'}"
        )
    return done


def write_env(spec: Spec, db: str) -> None:
    """CASEMATE_DB for the service, 0600 (a PostgreSQL URL may hold a password)."""
    assert spec.env_file is not None
    private.write(spec.env_file, f"CASEMATE_DB={db}\n")


def install(spec: Spec, db: str | None) -> list[Path]:
    """Write the units (and the environment file), reload systemd and start the timer. Whatever
    fails, nothing is left installed."""
    directory = unit_dir(spec.user)
    written: list[Path] = []
    try:
        if db is not None:
            write_env(spec, db)
            written.append(spec.env_file)  # type: ignore[arg-type]
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in render(spec).items():
            path = directory / name
            path.write_text(text)
            path.chmod(0o644)
            written.append(path)
        systemctl(spec.user, "daemon-reload")
        systemctl(spec.user, "enable", "--now", f"{spec.name}.timer")
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        systemctl(spec.user, "daemon-reload", check=False)
        raise
    return written


def installed(name: str, user: bool) -> dict[str, Any]:
    """The record of an installed schedule (its service file's first line)."""
    service = unit_dir(user) / f"{check_name(name)}.service"
    try:
        first = service.read_text().splitlines()[0]
    except (OSError, IndexError):
        first = ""
    if not first.startswith(MARK):
        where = "user" if user else "system"
        raise BadInputError(f"no casemate schedule '{name}' installed ({where} units: {service})")
    found: dict[str, Any] = json.loads(first.removeprefix(MARK))
    return found


def remove(name: str, user: bool) -> list[Path]:
    found = installed(name, user)
    systemctl(user, "disable", "--now", f"{name}.timer", check=False)
    systemctl(user, "stop", f"{name}.service", check=False)
    gone = []
    for unit in (f"{name}.service", f"{name}.timer"):
        path = unit_dir(user) / unit
        if path.exists():
            path.unlink()
            gone.append(path)
    if found.get("env_file"):
        Path(found["env_file"]).unlink(missing_ok=True)
    systemctl(user, "daemon-reload")
    systemctl(user, "reset-failed", f"{name}.service", f"{name}.timer", check=False)
    return gone


TIMER_PROPS = ("ActiveState", "LastTriggerUSec", "NextElapseUSecRealtime")
SERVICE_PROPS = ("ActiveState", "Result", "ExecMainStatus", "ExecMainExitTimestamp")


def show(user: bool, unit: str, props: Sequence[str]) -> dict[str, str]:
    done = systemctl(user, "show", unit, *(f"--property={p}" for p in props), check=False)
    out = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        out[key] = value
    return out


def last_run(state: Path, inventory: str) -> dict[str, Any] | None:
    """The newest stored run of `inventory` in `state`: id, kind, started, outcome."""
    from casemate.harden import run_outcome  # noqa: PLC0415 - status only
    from casemate.rundir import STAMP, newest  # noqa: PLC0415 - status only

    found: list[tuple[Path, dict[str, Any]]] = []  # the inventory's runs of the newest second
    for path in sorted((state / "runs").glob("*/run.json"), reverse=True):
        if found and path.parent.name[:STAMP] != found[0][0].name[:STAMP]:
            break
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if str(meta.get("inventory")) == inventory:
            found.append((path.parent, meta))
    if not found:
        return None
    # ids order runs to the second only: within it, the start time run.json records decides
    last = newest(sorted(run for run, _ in found))
    meta = next(m for run, m in found if run == last)
    return {
        "id": last.name,
        "kind": meta.get("kind"),
        "started": meta.get("started"),
        "outcome": run_outcome(meta),
    }
