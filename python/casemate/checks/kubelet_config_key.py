"""kubelet_config_key: a kubelet setting, read where it takes effect.

A kubelet command-line flag wins over its KubeletConfiguration file (`--config`), which wins over
the kubelet's built-in default (`unset`). The command line is the running kubelet's when one runs
(the main process of its active unit, else one in the probe's own PID namespace: a kubelet inside
a container, such as a kind pod, is not this host's);
otherwise it is the one systemd would start: the unit's ExecStart with its Environment= and
EnvironmentFile= variables expanded (kubeadm puts flags in kubeadm-flags.env and
/etc/default/kubelet through its 10-kubeadm.conf drop-in).

A kubelet that is meant to run here but does not (its unit enabled, failed or restarting) is an
error: what it runs with cannot be observed. Where no kubelet runs by design (a unit installed but
disabled and inactive, or none) the unit's command line and the config file are all there is, and
the verdict is judged from them. A unit whose state systemd could not tell, or a config file that
could not be read, is an error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import model_validator

from casemate.checks.argv import ValueType, coerce, setting_from_flags
from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import MISSING, UNARY, Op, compare, describe, show
from casemate.checks.doc_field import parsed
from casemate.checks.pointer import lookup
from casemate.checks.services_off import ENABLED


class KubeletConfigKeyParams(Params):
    pointer: str | None = None  # a JSON pointer into config.yaml; None for flag-only settings
    flags: tuple[str, ...] = ()
    type: ValueType = "str"
    unset: Any = None  # the kubelet's built-in default
    # config values the kubelet replaces with its default when it loads the file (kubeadm writes
    # `0s` for durations it leaves to the kubelet: streamingConnectionIdleTimeout 0s means 4h)
    default_when: tuple[Any, ...] = ()
    op: Op
    value: Any = None
    unit: str = "kubelet.service"
    process: str = "kubelet"
    config_flag: str = "--config"
    config: str = "/var/lib/kubelet/config.yaml"  # when no --config flag names one

    @model_validator(mode="after")
    def _consistent(self) -> KubeletConfigKeyParams:
        if self.op not in UNARY and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        if self.pointer is None and not self.flags:
            raise ValueError("give a pointer, flags, or both")
        return self


def kubelet_probe(p: KubeletConfigKeyParams) -> Probe:
    spec = {
        "unit": p.unit,
        "process": p.process,
        "config_flag": p.config_flag,
        "config": p.config,
    }
    return Probe("svc_config", json.dumps(spec, sort_keys=True))


# a unit in one of these states is meant to run (services_off.ENABLED: it starts at boot)
_TRYING = frozenset({"active", "activating", "deactivating", "reloading", "failed", "refreshing"})


def _not_running(p: KubeletConfigKeyParams, raw: Mapping[str, Any]) -> str | None:
    """Why the kubelet's settings cannot be observed although it is meant to run, or None."""
    if raw.get("argv_source") == "process":
        return None
    if raw.get("unit_error"):
        return str(raw["unit_error"])
    unit = raw.get("unit")
    if not isinstance(unit, Mapping):
        return f"the probe did not report the state of {p.unit}"
    enabled, active = str(unit.get("UnitFileState", "")), str(unit.get("ActiveState", ""))
    if enabled in ENABLED or active in _TRYING:
        return (
            f"{p.process} is not running though {p.unit} is {enabled or '-'}, {active or '-'}: "
            "cannot tell what it would run with"
        )
    return None


class KubeletConfigKey:
    name: ClassVar[str] = "kubelet_config_key"
    params: ClassVar[type[KubeletConfigKeyParams]] = KubeletConfigKeyParams

    def wants(self, p: KubeletConfigKeyParams) -> list[Probe]:
        return [kubelet_probe(p)]

    def judge(self, p: KubeletConfigKeyParams, obs: Observations) -> Verdict:
        probe = kubelet_probe(p)
        name = p.pointer.lstrip("/").replace("/", ".") if p.pointer else p.flags[0]
        expected = f"{name} {describe(p.op, p.value)}"
        raw = obs.get(probe)
        cfg = raw.get("config") or {}
        err = error_of(raw) or error_of(cfg) or _not_running(p, raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        argv = [str(a) for a in raw.get("argv") or []]
        if not argv and not cfg.get("exists"):
            return Verdict(
                Status.NOT_APPLICABLE,
                expected,
                f"no kubelet here: no {p.process} process, no {p.unit}, no config file",
                (probe.key,),
            )
        where = "running kubelet" if raw.get("argv_source") == "process" else p.unit
        value: Any = setting_from_flags(argv, p.flags, p.type) if p.flags else MISSING
        source = f"flag of the {where}"
        if value is MISSING and p.pointer is not None:
            doc: Any = {}
            if cfg.get("exists"):
                try:
                    doc = parsed(obs, str(cfg.get("content", "")), "yaml") or {}
                except ValueError as exc:
                    path = raw.get("config_path")
                    return Verdict(
                        Status.ERROR, expected, f"{path} does not parse: {exc}", (probe.key,)
                    )
            value = lookup(doc, p.pointer)
            source = str(raw.get("config_path"))
            if value is not MISSING and value in p.default_when:
                value, source = MISSING, f"{source} says {show(value)}, which means"
            if value is not MISSING:
                value = coerce(value, p.type)
        if value is MISSING and p.unset is not None:
            said = f"{source} the " if source.endswith("which means") else ""
            value, source = coerce(p.unset, p.type), f"{said}kubelet default"
        status = Status.PASS if compare(p.op, value, p.value) else Status.FAIL
        if value is MISSING:
            places = [f"on the {where}'s command line"] if p.flags else []
            if p.pointer is not None:
                places.append(f"in {raw.get('config_path')}")
            return Verdict(status, expected, f"<unset> (not {' nor '.join(places)})", (probe.key,))
        return Verdict(status, expected, f"{show(value)} (from {source})", (probe.key,))
