"""A hardened node whose dockerd is stopped (`systemctl stop docker docker.socket`): verify gives no
verdict on what the daemon would run with, runs or stores. It exits 1; no control that asks the
daemon passes, no container or image control is not_applicable, and each names the reason; CIS
Docker section 3 still judges the files themselves, as with the daemon running. Own lab: the daemon
of a node of the shared lab is never stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from casemate.catalog.loader import load_catalog
from casemate.catalog.model import Entry
from casemate.checks import builtin_kinds
from casemate.verify import wanted_probes

from .conftest import Lab, lab_name, open_lab, report_of, results

LAB = lab_name("dockerdown")
KINDS = builtin_kinds()
ENTRIES = {e.id: e for e in load_catalog(None, KINDS).entries}
DOWN = "dockerd is not running: "
WORKLOAD_KINDS = ("container_field", "container_rule", "image_rule")


def asks_dockerd(entry: Entry) -> bool:
    return entry.control.check is not None and "proc:dockerd" in {
        p.key for p in wanted_probes([entry])
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, LAB, 1) as bed:
        yield bed


def verify(lab: Lab, out: Path, check: int) -> dict[str, dict[str, Any]]:
    lab.casemate("verify", "-i", str(lab.inventory), "--level", "2", "--report-dir", str(out),
                 check=check)  # fmt: skip
    return results(report_of(out), lab.nodes[0])


def test_a_stopped_daemon_is_an_error_naming_it_and_files_are_still_judged(
    lab: Lab, tmp_path: Path
) -> None:
    node = lab.nodes[0]
    lab.casemate("harden", "-i", str(lab.inventory), "--level", "2", check=0)
    up = verify(lab, tmp_path / "up", check=1)
    failing = {
        c
        for c, r in up.items()
        if r["automated"]
        and r["benchmark"] in ("cis-docker", "casemate-runtime")
        and r["status"] in ("fail", "error")
    }
    assert failing == {"cis_docker_2_12"}  # Docker ships no authorization plugin

    lab.sh(node, "systemctl stop docker docker.socket")
    assert lab.sh(node, "systemctl is-active docker docker.socket || true").split() == [
        "inactive",
        "inactive",
    ]
    down = verify(lab, tmp_path / "down", check=1)
    assert set(down) == set(up)

    daemon = [c for c in down if asks_dockerd(ENTRIES[c])]
    assert {"cis_docker_2_2", "cis_docker_2_6", "cis_docker_5_1", "cis_docker_4_1"} <= set(daemon)
    for c in daemon:
        r = down[c]
        if r["status"] == "not_applicable":  # a precondition on the host itself (RHEL only)
            assert str(r["expected"]).startswith("only when") and up[c] == r, (c, r)
            continue
        assert r["status"] == "error", (c, r)
        assert str(r["observed"]).startswith(DOWN), (c, r)
    workloads = [
        c for c, e in ENTRIES.items() if e.control.check and e.control.check.kind in WORKLOAD_KINDS
    ]
    assert len(workloads) == 34 and set(workloads) <= set(down)
    assert {down[c]["status"] for c in workloads} == {"error"}
    # before the daemon stopped these were judged; now none passes on daemon.json alone
    assert [c for c in daemon if down[c]["status"] == "pass"] == []
    assert up["cis_docker_2_2"]["status"] == "pass"

    # section 3: the files themselves, judged as before (the TLS files' paths are daemon settings:
    # with no TLS in daemon.json only the running daemon's flags could say they are unset)
    tls = {f"cis_docker_3_{n}" for n in range(9, 15)}
    files = [c for c in down if c.startswith("cis_docker_3_") and c not in tls]
    assert len(files) == 18
    for c in files:
        assert (down[c]["status"], down[c]["observed"]) == (up[c]["status"], up[c]["observed"])
        assert down[c]["status"] in ("pass", "not_applicable"), (c, down[c])
    assert {c for c in files if down[c]["status"] == "pass"} == {
        f"cis_docker_3_{n}" for n in (1, 2, 3, 4, 5, 6, 15, 16, 17, 18, 19, 20, 23, 24)
    }
    for c in tls:
        assert down[c]["status"] == "error"
        assert down[c]["observed"].startswith(DOWN + "cannot tell whether a flag names its tls")
    # nothing that does not ask the daemon changed its verdict
    others = [c for c in down if c not in daemon]
    assert {c: down[c]["status"] for c in others} == {c: up[c]["status"] for c in others}

    lab.sh(node, "systemctl start docker")
    again = verify(lab, tmp_path / "again", check=1)
    assert {c: r["status"] for c, r in again.items()} == {c: r["status"] for c, r in up.items()}
