"""daemon_tls: if the daemon listens on TCP, it verifies clients with TLS (CA, cert and key)."""

from __future__ import annotations

from typing import ClassVar

from casemate.checks.base import Observations, Params, Probe, Status, Verdict
from casemate.checks.compare import MISSING
from casemate.checks.daemon_view import daemon_probes, daemon_view

_FILES = ("tlscacert", "tlscert", "tlskey")


class DaemonTlsParams(Params):
    config: str = "/etc/docker/daemon.json"
    process: str = "dockerd"


class DaemonTls:
    name: ClassVar[str] = "daemon_tls"
    params: ClassVar[type[DaemonTlsParams]] = DaemonTlsParams

    def wants(self, p: DaemonTlsParams) -> list[Probe]:
        return daemon_probes(p.config, p.process)

    def judge(self, p: DaemonTlsParams, obs: Observations) -> Verdict:
        evidence = tuple(probe.key for probe in self.wants(p))
        expected = "every tcp:// listener has tlsverify with tlscacert, tlscert and tlskey"
        view = daemon_view(obs, p.config, p.process)
        if view.error:
            return Verdict(Status.ERROR, expected, view.error, evidence)
        flag_hosts, _ = view.setting(None, ["-H", "--host"], "list")
        cfg_hosts, _ = view.setting("hosts", [], "list")
        hosts = [str(h) for part in (flag_hosts, cfg_hosts) if part is not MISSING for h in part]
        tcp = [h for h in hosts if h.startswith("tcp://")]
        if not tcp:
            return Verdict(
                Status.NOT_APPLICABLE,
                expected,
                f"no TCP listener (hosts: {hosts or 'default'})",
                evidence,
            )
        verify, _ = view.setting("tlsverify", ["--tlsverify"], "bool")
        missing = [f for f in _FILES if view.setting(f, [f"--{f}"], "str")[0] in (MISSING, "")]
        problems = ([] if verify is True else ["tlsverify is not true"]) + [
            f"{f} not set" for f in missing
        ]
        observed = f"listeners {', '.join(tcp)}: " + (
            "; ".join(problems) or "tlsverify with CA, cert, key"
        )
        return Verdict(Status.FAIL if problems else Status.PASS, expected, observed, evidence)
