"""Which file a file check looks at: a path, a glob, a systemd unit's file, its drop-ins, or all of
them (the files that make up the unit), or a path named by a setting (a daemon's config-file key or
process flag, a static pod manifest's flag).

A file that could not be examined (stat failed) is an error, never a missing file. A path named by
a daemon setting that is set neither by the running daemon's flag nor in its config file is "not
configured" only while the daemon runs: with it stopped, a flag its unit passes cannot be seen, so
that is an error; a path the config file names is judged (dockerd refuses a directive given both
as a flag and in the file)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import model_validator

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.dockerd import not_running, process_probe


class Ref(Params):
    """A file path held in a JSON config key or a process flag (the flag wins, as in dockerd)."""

    key: str
    flag: str | None = None
    config: str = "/etc/docker/daemon.json"
    process: str = "dockerd"


class ManifestRef(Params):
    """A path given as a flag in a static pod manifest (etcd's --data-dir), else `default`."""

    manifest: str
    flag: str
    default: str | None = None


_TARGETS = ("path", "glob", "unit", "dropins", "unit_files", "ref", "manifest_ref")


class FileTarget(Params):
    path: str | None = None
    glob: str | None = None
    unit: str | None = None
    dropins: str | None = None  # every drop-in file of this systemd unit
    unit_files: str | None = None  # the unit's file and every drop-in: all that make up the unit
    ref: Ref | None = None
    manifest_ref: ManifestRef | None = None
    missing: Literal["not_applicable", "fail"] = "not_applicable"

    @model_validator(mode="after")
    def _one_target(self) -> FileTarget:
        given = [n for n in _TARGETS if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(_TARGETS)}")
        return self


def _arg(ref: Ref | ManifestRef) -> str:
    """The probe's argument: every field as JSON, what model_dump() gives for these flat models,
    read without it (model_dump builds the model's serializer, and with it pydantic's plugin
    look-up, on every verify: the catalog comes validated from its cache)."""
    return json.dumps({name: getattr(ref, name) for name in type(ref).model_fields}, sort_keys=True)


def target_probe(t: FileTarget) -> Probe:
    if t.path is not None:
        return Probe("stat", t.path)
    if t.glob is not None:
        return Probe("glob", t.glob)
    if t.unit is not None:
        return Probe("unit", t.unit)
    if t.dropins is not None:
        return Probe("unit", t.dropins)
    if t.unit_files is not None:
        return Probe("unit", t.unit_files)
    if t.manifest_ref is not None:
        return Probe("manifest_ref_stat", _arg(t.manifest_ref))
    assert t.ref is not None
    return Probe("ref_stat", _arg(t.ref))


def target_probes(t: FileTarget) -> list[Probe]:
    """What a file check wants: the target, and for a daemon setting whether the daemon runs."""
    return [target_probe(t)] + ([process_probe(t.ref.process)] if t.ref is not None else [])


def describe_target(t: FileTarget) -> str:
    if t.path is not None:
        return t.path
    if t.glob is not None:
        return t.glob
    if t.unit is not None:
        return f"unit file of {t.unit}"
    if t.dropins is not None:
        return f"drop-ins of {t.dropins}"
    if t.unit_files is not None:
        return f"unit file and drop-ins of {t.unit_files}"
    if t.manifest_ref is not None:
        return f"path of {t.manifest_ref.flag} in {t.manifest_ref.manifest}"
    assert t.ref is not None
    flag = f" / {t.ref.flag}" if t.ref.flag else ""
    return f"file named by {t.ref.key}{flag}"


def _stats(raw: Mapping[str, Any], probe: Probe, t: FileTarget) -> list[Mapping[str, Any]]:
    """Every stat the observation holds for the target (existing or not)."""
    if probe.kind == "stat":
        return [raw]
    if probe.kind == "glob":
        return [m for m in raw.get("matches") or [] if isinstance(m, Mapping)]
    if probe.kind == "unit" and t.dropins is not None:
        return [d for d in raw.get("dropins") or [] if isinstance(d, Mapping)]
    if probe.kind == "unit" and t.unit_files is not None:
        # a masked unit's "file" is /dev/null, no file of the unit's own
        files = [raw.get("fragment") or {}, *(raw.get("dropins") or [])]
        return [f for f in files if isinstance(f, Mapping) and f.get("type", "file") == "file"]
    if probe.kind == "unit":
        return [raw.get("fragment") or {}]
    return [raw.get("stat") or {}] if raw.get("source", "unset") != "unset" else []


def resolve(t: FileTarget, obs: Observations) -> tuple[list[Mapping[str, Any]], str | None, str]:
    """(stats of the existing files, error, note about how they were found)."""
    probe = target_probe(t)
    raw = obs.get(probe)
    err = error_of(raw)
    if err:
        return [], err, ""
    stats = _stats(raw, probe, t)
    failed = next((error_of(s) for s in stats if error_of(s)), None)
    if failed:
        return [], failed, ""
    existing = [s for s in stats if s.get("exists")]
    if probe.kind not in ("ref_stat", "manifest_ref_stat"):
        return existing, None, ""
    source = raw.get("source", "unset")
    if source == "unset" and t.ref is not None:
        down = not_running(obs, t.ref.process, f"cannot tell whether a flag names its {t.ref.key}")
        if down:
            return [], down, ""
    note = f"{raw.get('path')} (from {source})" if source != "unset" else "not configured"
    return existing, None, note


def judge_files(
    t: FileTarget,
    obs: Observations,
    expected: str,
    ok: Callable[[Mapping[str, Any]], bool],
    show: Callable[[Mapping[str, Any]], str],
) -> Verdict:
    """The shared judgement of file kinds: every file of the target must be `ok`. The observed
    text lists the offending files, or every file when all pass."""
    evidence = tuple(probe.key for probe in target_probes(t))
    stats, err, note = resolve(t, obs)
    if err:
        return Verdict(Status.ERROR, expected, err, evidence)
    if not stats:
        status = Status.NOT_APPLICABLE if t.missing == "not_applicable" else Status.FAIL
        return Verdict(status, expected, note or "no such file", evidence)
    bad = [s for s in stats if not ok(s)]
    shown = "; ".join(f"{s.get('path')} {show(s)}" for s in (bad or stats))
    return Verdict(Status.FAIL if bad else Status.PASS, expected, shown, evidence)
