"""sshd_option: settings of the SSH server as sshd itself resolves them (`sshd -T`: the main file,
its drop-ins and the built-in defaults, Match blocks aside), not as one file states them."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.compare import MISSING, UNARY, Op, compare, describe, show

CONFIG = "/etc/ssh/sshd_config"
# sshd -T prints these as one comma-separated list
COMMA_LISTS = frozenset(
    {
        "kexalgorithms",
        "ciphers",
        "macs",
        "hostkeyalgorithms",
        "pubkeyacceptedalgorithms",
        "casignaturealgorithms",
        "hostbasedacceptedalgorithms",
    }
)
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


def value_of(options: dict[str, list[str]], option: str) -> Any:
    """The effective value of an option: a string, a list for list options, MISSING when unset."""
    values = options.get(option)
    if not values:
        return MISSING
    if option in COMMA_LISTS:
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
    sep = "," if rule.option in COMMA_LISTS else " "
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
        return Verdict(
            Status.PASS if ok else Status.FAIL,
            expected,
            "; ".join(dict.fromkeys(shown)) + " (effective, sshd -T)",
            (probe.key,),
        )
