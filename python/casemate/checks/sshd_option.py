"""sshd_option: settings of the SSH server as sshd itself resolves them (`sshd -T`: the main file,
its drop-ins and the built-in defaults), not as one file states them. `sshd -T` leaves Match blocks
out, so what a Match block sets (in the main file or a file it includes) is judged too: a Match
block can give some or all connections back what the global setting takes away."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, model_validator

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import MISSING, UNARY, Op, compare, describe, show
from casemate.readers import sshd_comma_lists, sshd_seconds, sshd_time_options

CONFIG = "/etc/ssh/sshd_config"
# sshd -T prints these once per value (and a value may hold several words)
MULTI = frozenset(
    {"allowusers", "allowgroups", "denyusers", "denygroups", "authorizedkeysfile", "hostkey"}
)


class Rule(Params):
    option: str = Field(pattern=r"^[a-z0-9]+$")  # as sshd -T prints it: lowercase
    op: Op | None = None
    value: Any = None
    subset_of: list[str] | None = None  # every listed item must be one of these

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if (self.op is None) == (self.subset_of is None):
            raise ValueError("give either op (with value) or subset_of")
        if self.op is not None and self.op not in UNARY and self.value is None:
            raise ValueError(f"op '{self.op}' needs a value")
        return self


class SshdOptionParams(Params):
    expect: list[Rule] = Field(min_length=1)
    any_of: bool = False  # one rule holding is enough (e.g. AllowUsers or AllowGroups)
    config: str = CONFIG
    # the option names a file (Banner) that must exist and not be empty
    nonempty_file: str | None = Field(default=None, pattern=r"^[a-z0-9]+$")


def as_sshd_prints(option: str, text: str) -> str:
    """A value as written in a configuration file, the way sshd -T would print it (the lists and
    the time format are the host readers': roles/host_common/module_utils/casemate_sshd.py)."""
    if option in sshd_comma_lists():
        return text.strip()
    words = " ".join(text.split())
    if option in sshd_time_options() and (secs := sshd_seconds(words)) is not None:
        return secs
    return words if option in MULTI else words.lower()


def match_findings(p: SshdOptionParams, raw: Mapping[str, Any]) -> list[str]:
    """Options a Match block sets to a value the rules do not accept, with file, line and Match."""
    if p.any_of:  # a Match block can only narrow an allow list further
        return []
    out = []
    for entry in raw.get("match") or []:
        if not isinstance(entry, dict):
            continue
        option = str(entry.get("option", ""))
        for rule in p.expect:
            if rule.option != option:
                continue
            value = value_of(
                {option: [as_sshd_prints(option, str(entry.get("value", "")))]}, option
            )
            if not holds(rule, value):
                out.append(
                    f"{observed_of(rule, value)} in {entry.get('file')} line {entry.get('line')}"
                    f" ({entry.get('match')})"
                )
                break
    return out


def file_finding(p: SshdOptionParams, options: dict[str, list[str]], raw: Mapping[str, Any]) -> str:
    """Why the file the option names is no good ('' when it exists and is not empty)."""
    if p.nonempty_file is None:
        return ""
    files = raw.get("files") or {}
    for path in options.get(p.nonempty_file) or []:
        if path == "none":
            continue
        seen = files.get(path)
        if not isinstance(seen, dict):
            return f"{p.nonempty_file} {path}: not examined"
        if not seen.get("exists"):
            return f"{p.nonempty_file} {path} does not exist ({seen.get('error', 'missing')})"
        if not seen.get("size"):
            return f"{p.nonempty_file} {path} is empty"
    return ""


def value_of(options: dict[str, list[str]], option: str) -> Any:
    """The effective value of an option: a string, a list for list options, MISSING when unset."""
    values = options.get(option)
    if not values:
        return MISSING
    if option in sshd_comma_lists():
        return [a for a in values[0].split(",") if a]
    if option in MULTI:
        return [w for v in values for w in v.split()]
    return values[0]


def holds(rule: Rule, observed: Any) -> bool:
    if rule.subset_of is not None:
        items = observed if isinstance(observed, list) else []
        return bool(items) and all(i in rule.subset_of for i in items)
    assert rule.op is not None
    return compare(rule.op, observed, rule.value)


def expected_of(rule: Rule) -> str:
    if rule.subset_of is not None:
        return f"{rule.option} only from {', '.join(rule.subset_of)}"
    assert rule.op is not None
    return f"{rule.option} {describe(rule.op, rule.value)}"


def observed_of(rule: Rule, observed: Any) -> str:
    sep = "," if rule.option in sshd_comma_lists() else " "
    text = sep.join(observed) if isinstance(observed, list) else show(observed)
    if rule.subset_of is not None and isinstance(observed, list):
        extra = [i for i in observed if i not in rule.subset_of]
        if extra:
            return f"{rule.option} {text} (not allowed: {', '.join(extra)})"
    return f"{rule.option} {text}"


class SshdOption:
    name: ClassVar[str] = "sshd_option"
    params: ClassVar[type[SshdOptionParams]] = SshdOptionParams

    def wants(self, p: SshdOptionParams) -> list[Probe]:
        return [Probe("sshd_effective", p.config)]

    def judge(self, p: SshdOptionParams, obs: Observations) -> Verdict:
        probe = Probe("sshd_effective", p.config)
        joiner = " or " if p.any_of else "; "
        expected = joiner.join(expected_of(r) for r in p.expect)
        raw = obs.get(probe)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        if not raw.get("installed"):
            return Verdict(
                Status.NOT_APPLICABLE, expected, "no SSH server (sshd) on this host", (probe.key,)
            )
        options = raw.get("options")
        if not isinstance(options, dict):
            return Verdict(Status.ERROR, expected, "sshd -T printed no options", (probe.key,))
        seen = [(r, value_of(options, r.option)) for r in p.expect]
        results = [holds(r, v) for r, v in seen]
        ok = any(results) if p.any_of else all(results)
        shown = [observed_of(r, v) for r, v in seen]
        if not ok and not p.any_of:  # name the settings that are wrong
            shown = [s for s, good in zip(shown, results, strict=True) if not good]
        said = "; ".join(dict.fromkeys(shown)) + " (effective, sshd -T)"
        if not ok:
            return Verdict(Status.FAIL, expected, said, (probe.key,))
        in_match = match_findings(p, raw)
        if in_match:
            return Verdict(
                Status.FAIL, expected, f"{said}, but {'; '.join(in_match)}", (probe.key,)
            )
        bad_file = file_finding(p, options, raw)
        if bad_file:
            return Verdict(Status.FAIL, expected, f"{said}, but {bad_file}", (probe.key,))
        if "match" not in raw or raw.get("match_error"):
            why = raw.get("match_error") or "the probe did not read the Match blocks"
            return Verdict(
                Status.NOT_VERIFIABLE,
                expected,
                f"{said}; Match blocks not judged: {why}",
                (probe.key,),
            )
        return Verdict(Status.PASS, expected, said, (probe.key,))
