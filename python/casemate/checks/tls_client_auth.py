"""tls_client_auth: a TLS endpoint refuses clients without a certificate and serves one with.

Two live requests from the host itself: one presenting no client certificate (it must be refused,
by the handshake or by the answer), one presenting the given certificate (it must succeed and its
answer match `healthy`). Both verify the server against `ca`. This proves client-certificate
authentication is in force, which a flag in a file cannot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of


class TlsClientAuthParams(Params):
    url: str
    ca: str
    cert: str
    key: str
    healthy: str = ""  # a regex the certified answer's body must match


def tls_probe(p: TlsClientAuthParams) -> Probe:
    spec = {"url": p.url, "ca": p.ca, "cert": p.cert, "key": p.key}
    return Probe("tls_auth", json.dumps(spec, sort_keys=True))


def _said(attempt: Mapping[str, Any]) -> str:
    if attempt.get("error"):
        return str(attempt["error"])
    body = " ".join(str(attempt.get("body", "")).split())[:120]
    return f"HTTP {attempt.get('status')} {body}".strip()


def _succeeded(attempt: Mapping[str, Any]) -> bool:
    status = attempt.get("status")
    return not attempt.get("error") and isinstance(status, int) and 200 <= status < 300


class TlsClientAuth:
    name: ClassVar[str] = "tls_client_auth"
    params: ClassVar[type[TlsClientAuthParams]] = TlsClientAuthParams

    def wants(self, p: TlsClientAuthParams) -> list[Probe]:
        return [tls_probe(p)]

    def judge(self, p: TlsClientAuthParams, obs: Observations) -> Verdict:
        probe = tls_probe(p)
        expected = f"{p.url} refuses a client without a certificate and serves {p.cert}"
        raw = obs.get(probe)
        err = error_of(raw)
        if err:
            return Verdict(Status.ERROR, expected, err, (probe.key,))
        anonymous = raw.get("anonymous") or {}
        certified = raw.get("certified") or {}
        if not _succeeded(certified):
            return Verdict(
                Status.FAIL,
                expected,
                f"with the certificate: {_said(certified)}",
                (probe.key,),
            )
        if p.healthy and not re.search(p.healthy, str(certified.get("body", ""))):
            return Verdict(
                Status.FAIL,
                expected,
                f"with the certificate the answer is not healthy: {_said(certified)}",
                (probe.key,),
            )
        if _succeeded(anonymous):
            return Verdict(
                Status.FAIL,
                expected,
                f"a client without a certificate was served: {_said(anonymous)}",
                (probe.key,),
            )
        return Verdict(
            Status.PASS,
            expected,
            f"without a certificate: refused ({_said(anonymous)}); with it: {_said(certified)}",
            (probe.key,),
        )
