"""A daemon's effective configuration: its JSON config file plus its command line.

dockerd refuses to start when a directive is both a flag and a config key, so at most one source
sets a value; when both appear anyway, the flag is what a running daemon would have used. The view
needs the running daemon's command line: with the daemon not running it is an error (a systemd
drop-in may add flags that override the file), never the file alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from casemate.checks.argv import ValueType, coerce, setting_from_flags
from casemate.checks.base import Observations, Probe, error_of
from casemate.checks.compare import MISSING
from casemate.checks.dockerd import not_running, process_probe


@dataclass(frozen=True, slots=True)
class DaemonView:
    config: dict[str, Any]
    config_exists: bool
    argv: tuple[str, ...]  # the running daemon's command line
    error: str | None = None

    def setting(
        self, key: str | None, flags: Sequence[str], value_type: ValueType
    ) -> tuple[Any, str]:
        """(value, source) where source is 'flag', the config path's name, or 'unset'."""
        if self.argv and flags:
            from_flag = setting_from_flags(self.argv, flags, value_type)
            if from_flag is not MISSING:
                return from_flag, "flag " + "/".join(flags)
        if key is not None and key in self.config:
            return coerce(self.config[key], value_type), "config"
        return MISSING, "unset"


def daemon_probes(config: str, process: str) -> list[Probe]:
    return [Probe("read", config), process_probe(process)]


def daemon_view(obs: Observations, config: str, process: str) -> DaemonView:
    raw_cfg = obs.get(Probe("read", config))
    err = not_running(obs, process) or error_of(raw_cfg)
    if err:
        return DaemonView({}, False, (), err)
    argv = tuple(str(a) for a in obs.get(process_probe(process)).get("argv") or ())
    if any(a.startswith("--config-file") for a in argv):
        other = [a for a in argv if a.startswith("--config-file")]
        return DaemonView(
            {}, False, argv, f"{process} runs with {other[0]}; casemate reads {config}"
        )
    if not raw_cfg.get("exists"):
        return DaemonView({}, False, argv)
    text = str(raw_cfg.get("content", ""))
    if not text.strip():
        return DaemonView({}, True, argv)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        return DaemonView(
            {}, True, argv, f"{config} is not valid JSON ({exc.msg}, line {exc.lineno})"
        )
    if not isinstance(parsed, dict):
        return DaemonView({}, True, argv, f"{config} is not a JSON object")
    return DaemonView(parsed, True, argv)
