"""ssh_host_keys: no weak host key (DSA, RSA below a size) is loaded by sshd or left in /etc/ssh,
and at least one host key remains."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of

CONFIG = "/etc/ssh/sshd_config"


class SshHostKeysParams(Params):
    min_rsa_bits: int = Field(default=3072, ge=1024)
    forbidden_types: list[str] = Field(default_factory=lambda: ["dsa"])
    config: str = CONFIG


def label(key: dict[str, object]) -> str:
    where = "" if key.get("configured") else ", not loaded"
    return f"{key.get('path')} ({key.get('type') or 'unreadable'} {key.get('bits') or '?'}{where})"


class SshHostKeys:
    name: ClassVar[str] = "ssh_host_keys"
    params: ClassVar[type[SshHostKeysParams]] = SshHostKeysParams

    def wants(self, p: SshHostKeysParams) -> list[Probe]:
        return [Probe("ssh_host_keys", p.config)]

    def judge(self, p: SshHostKeysParams, obs: Observations) -> Verdict:
        probe = Probe("ssh_host_keys", p.config)
        expected = (
            f"no {', '.join(t.upper() for t in p.forbidden_types)} host key and no RSA host key "
            f"under {p.min_rsa_bits} bits; at least one host key loaded"
        )
        raw = obs.get(probe)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        if not raw.get("installed"):
            return Verdict(
                Status.NOT_APPLICABLE, expected, "no SSH server (sshd) on this host", (probe.key,)
            )
        keys = [k for k in raw.get("keys", []) if isinstance(k, dict) and k.get("exists")]
        weak = [
            k
            for k in keys
            if k.get("type") in p.forbidden_types
            or (k.get("type") == "rsa" and int(k.get("bits") or 0) < p.min_rsa_bits)
        ]
        unreadable = [k for k in keys if not k.get("type")]
        loaded = [k for k in keys if k.get("configured")]
        if weak:
            return Verdict(
                Status.FAIL, expected, "weak: " + ", ".join(label(k) for k in weak), (probe.key,)
            )
        if not loaded:
            return Verdict(Status.FAIL, expected, "sshd loads no host key", (probe.key,))
        if unreadable:
            return Verdict(
                Status.ERROR,
                expected,
                "cannot tell the type of " + ", ".join(str(k.get("path")) for k in unreadable),
                (probe.key,),
            )
        return Verdict(Status.PASS, expected, ", ".join(label(k) for k in keys), (probe.key,))
