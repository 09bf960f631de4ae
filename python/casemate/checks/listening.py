"""listening: whether anything listens on a TCP port of the host, read from /proc/net/tcp and
/proc/net/tcp6 (the host's own network namespace), so no tool on the host is needed."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of


class ListeningParams(Params):
    port: int = Field(ge=1, le=65535)
    listening: bool = False  # false: nothing may listen on the port


class Listening:
    name: ClassVar[str] = "listening"
    params: ClassVar[type[ListeningParams]] = ListeningParams

    def wants(self, p: ListeningParams) -> list[Probe]:
        return [Probe("listening", "tcp")]

    def judge(self, p: ListeningParams, obs: Observations) -> Verdict:
        probe = Probe("listening", "tcp")
        expected = f"{'a listener' if p.listening else 'nothing listening'} on TCP port {p.port}"
        raw = obs.get(probe)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        sockets = raw.get("sockets")
        if not isinstance(sockets, list):
            return Verdict(Status.ERROR, expected, "no socket table in the probe", (probe.key,))
        on_port = [s for s in sockets if isinstance(s, dict) and s.get("port") == p.port]
        shown = ", ".join(
            f"[{s.get('addr')}]:{p.port}"
            if s.get("family") == "ipv6"
            else f"{s.get('addr')}:{p.port}"
            for s in on_port
        )
        observed = f"listening on {shown}" if on_port else f"nothing listens on TCP port {p.port}"
        ok = bool(on_port) == p.listening
        return Verdict(Status.PASS if ok else Status.FAIL, expected, observed, (probe.key,))
