"""A verdict is never given on a fact that could not be observed.

Every catalog entry is judged on observations in which every collector it wants failed, and on a
real node's recording in which every command it runs failed; every kind on its own reports a failed
collector as an error naming it; and a lab node whose dockerd was stopped gives an error naming
that reason for every control that depends on the daemon, while the files are judged as before.

The recordings (tests/fixtures/observations) come from real lab nodes through `casemate verify
--level 2`, the probe's answer kept from the run directory (observations/HOST.json):
dockerd-running.json is a node hardened at level 2, dockerd-stopped.json the same node right after
`systemctl stop docker docker.socket`, k8s-fresh.json a fresh `lab up --profile k8s` node (kubeadm
layout, no kubelet process). cm_rt_3_3's command changed after they were made (the container test
left it for the probe's container reader): its answer was recorded again, by the probe, on nodes of
the same image, one of each profile. cm_host_4_17's command (which now also reads pam_pwquality's
options) and cm_host_4_22's probes (AIDE) came later too: their answers were recorded by the probe
on a bookworm lab node of the image with AIDE, hardened at level 2 (the answer to cm_host_4_17's
command is the same on a fresh node: Debian's pwquality line carries only retry=3).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from casemate.catalog.loader import load_catalog
from casemate.catalog.model import Entry
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Probe, Status, Verdict
from casemate.probe.collect import parse_answer
from casemate.verify import concerns, judge, wanted_probes

KINDS = builtin_kinds()
RECORDED = Path(__file__).parent.parent / "fixtures" / "observations"
ENTRIES = [
    e
    for e in select(load_catalog(None, KINDS), Selection(level=2, profile=None))
    if e.control.check is not None
]
DOCKER_GROUPS = ["docker_hosts"]
K8S_GROUPS = ["k8s_control_plane", "k8s_workers", "etcd"]
DOWN = "dockerd is not running: "


def recorded(name: str, groups: list[str]) -> Observations:
    obs, _ = parse_answer("node", (RECORDED / name).read_text())
    return Observations(obs.host, obs.facts, obs.data, {"group_names": groups})


def keys(entry: Entry) -> list[str]:
    return [p.key for p in wanted_probes([entry])]


def failed(key: str) -> dict[str, str]:
    return {"error": f"simulated failure of {key}"}


# --- every collector failed ---------------------------------------------------------------------


@pytest.mark.parametrize("container", ["", "docker"])
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_no_verdict_when_every_collector_failed(entry: Entry, container: str) -> None:
    data = {k: failed(k) for k in keys(entry)}
    v = judge(entry, Observations("h", {"container": container}, data))
    assert v.status is Status.ERROR, v
    assert "simulated failure of " in v.observed


def _kind_uses() -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every (kind, params) the catalog uses, the parts of all_of included."""
    for entry in ENTRIES:
        check = entry.control.check
        assert check is not None
        yield check.kind, check.params
        if check.kind == "all_of":
            for part in check.params["checks"]:
                yield part["kind"], part.get("params", {})


USES = list(_kind_uses())
# kinds the catalog does not use at the moment, with parameters of their own
USES += [(k, {"path": "/etc/x"}) for k in ("file_exists",) if k not in {u for u, _ in USES}]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_itself_reports_a_failed_collector(kind: str) -> None:
    uses = [params for name, params in USES if name == kind]
    assert uses, f"no parameters to try kind {kind} with"
    for params in uses:
        k = KINDS[kind]
        p = k.params.model_validate(params)
        data = {probe.key: failed(probe.key) for probe in k.wants(p)}
        for container in ("", "docker"):
            v = k.judge(p, Observations("h", {"container": container}, data))
            assert v.status is Status.ERROR, (params, v)
            assert "simulated failure of " in v.observed, (params, v)


def test_a_kind_that_ignores_a_failed_collector_is_overruled() -> None:
    # a kind may not turn a failed observation into a verdict: the collector's message wins
    entry = next(e for e in ENTRIES if e.id == "cis_docker_3_1")
    data = {
        "unit:docker.service": {"error": "systemctl show docker.service: Failed to connect to bus"}
    }

    class Careless:
        name = "file_owner"
        params = KINDS["file_owner"].params

        def wants(self, p: Any) -> list[Probe]:
            return [Probe("unit", "docker.service")]

        def judge(self, p: Any, obs: Observations) -> Verdict:
            return Verdict(Status.NOT_APPLICABLE, "owned by root:root", "no such file")

    assert entry.check is not None
    careless = replace(entry, check=replace(entry.check, kind=Careless()))
    v = judge(careless, Observations("h", {}, data))
    assert v == Verdict(
        Status.ERROR,
        "owned by root:root",
        "systemctl show docker.service: Failed to connect to bus",
        ("unit:docker.service",),
    )


# --- every command failed, on a real node's recording -------------------------------------------

CMD_FAILED = {"rc": 1, "stdout": "", "stderr": "simulated: the command failed"}
BASES = [("dockerd-running.json", DOCKER_GROUPS), ("k8s-fresh.json", K8S_GROUPS)]
# the recordings were made with the standard profile (SSH kept, hardened)
STANDARD = [e for e in ENTRIES if "standard" in e.control.profiles]
WITH_CMDS = [
    (e, name, groups)
    for name, groups in BASES
    for e in STANDARD
    if concerns(e, groups) and any(k.startswith(("cmd:", "proof:")) for k in keys(e))
]


@pytest.mark.parametrize(
    ("entry", "name", "groups"), WITH_CMDS, ids=lambda x: getattr(x, "id", str(x)[:6])
)
def test_a_failed_command_is_not_an_empty_answer(
    entry: Entry, name: str, groups: list[str]
) -> None:
    base = recorded(name, groups)
    assert set(keys(entry)) <= set(base.data), "the recording lacks what the entry wants"
    data = {k: CMD_FAILED if k.startswith(("cmd:", "proof:")) else v for k, v in base.data.items()}
    v = judge(entry, Observations("n", base.facts, data, base.vars))
    assert v.status is not Status.PASS, v
    if v.status in (Status.FAIL, Status.NOT_APPLICABLE, Status.MANUAL):
        # allowed only when the commands played no part: the same verdict as with them working
        # (an audit rule missing from the rule files, a watched path that does not exist)
        assert v == judge(entry, base), v


# --- a node whose dockerd was stopped -------------------------------------------------------------

RUNNING = recorded("dockerd-running.json", DOCKER_GROUPS)
STOPPED = recorded("dockerd-stopped.json", DOCKER_GROUPS)
ON_DOCKER = [e for e in STANDARD if concerns(e, DOCKER_GROUPS)]


def needs_dockerd(entry: Entry) -> bool:
    return "proc:dockerd" in keys(entry)


def test_the_recordings_are_the_same_node_with_and_without_dockerd() -> None:
    assert RUNNING.data["proc:dockerd"]["running"] is True
    assert STOPPED.data["proc:dockerd"] == {"running": False}
    assert RUNNING.facts["hostname"] == STOPPED.facts["hostname"]
    assert set(RUNNING.data) == set(STOPPED.data)
    assert set(RUNNING.data) >= {k for e in ON_DOCKER for k in keys(e)}


@pytest.mark.parametrize("entry", [e for e in ON_DOCKER if needs_dockerd(e)], ids=lambda e: e.id)
def test_every_control_that_asks_dockerd_is_an_error_naming_it(entry: Entry) -> None:
    v = judge(entry, STOPPED)
    check = entry.control.check
    assert check is not None
    if check.only_if is not None and "daemon" not in check.only_if.params:
        held = judge(entry, RUNNING)
        if held.status is Status.NOT_APPLICABLE and held.expected.startswith("only when"):
            assert v == held  # a precondition on the host itself (SELinux on RHEL) still decides
            return
    assert v.status is Status.ERROR, v
    assert v.observed.startswith(DOWN), v
    assert "proc:dockerd" in v.evidence


@pytest.mark.parametrize(
    "entry", [e for e in ON_DOCKER if not needs_dockerd(e)], ids=lambda e: e.id
)
def test_what_does_not_ask_dockerd_is_judged_as_before(entry: Entry) -> None:
    before, after = judge(entry, RUNNING), judge(entry, STOPPED)
    assert (after.status, after.expected, after.evidence) == (
        before.status,
        before.expected,
        before.evidence,
    )
    if not any(k.startswith("engines:") for k in keys(entry)):  # that lists running engines
        assert after.observed == before.observed


def test_the_stopped_node_in_numbers() -> None:
    before = {e.id: judge(e, RUNNING) for e in ON_DOCKER}
    after = {e.id: judge(e, STOPPED) for e in ON_DOCKER}
    # the findings: 8 daemon settings passed "judged from daemon.json only", 2.6 and 5.1
    # passed on an unset value, and the container and image sections were "no containers"
    for cid in ("2_2", "2_3", "2_4", "2_5", "2_14", "2_15", "2_16", "2_18", "2_6", "5_1"):
        assert before[f"cis_docker_{cid}"].status is Status.PASS
        assert after[f"cis_docker_{cid}"].status is Status.ERROR
    workloads = [e.id for e in ON_DOCKER if e.control.check and e.control.check.kind in
                 ("container_field", "container_rule", "image_rule")]  # fmt: skip
    assert len(workloads) == 34
    assert {after[c].status for c in workloads} == {Status.ERROR}
    assert {after[c].observed for c in workloads} == {
        DOWN + "its containers cannot be listed",
        DOWN + "its images cannot be listed",
        DOWN + "cannot tell what it would run with",  # 5.3: its precondition asks docker info
    }
    # CIS section 3 audits the files themselves: judged from them with the daemon down, except
    # the TLS files, whose paths are daemon settings (set neither in daemon.json nor, visibly,
    # by a flag: the unit's flags cannot be seen with the daemon down)
    section3 = {
        e.id: after[e.id].status
        for e in ON_DOCKER
        if e.benchmark == "cis-docker" and e.section == "3"
    }
    tls = {f"cis_docker_3_{n}" for n in range(9, 15)}
    assert {c for c, s in section3.items() if s is Status.ERROR} == tls
    assert {c for c, s in section3.items() if s is Status.PASS} == {
        f"cis_docker_3_{n}" for n in (1, 2, 3, 4, 5, 6, 15, 16, 17, 18, 19, 20, 23, 24)
    }
    absent = {"cis_docker_3_7", "cis_docker_3_8", "cis_docker_3_21", "cis_docker_3_22"}
    assert {c for c, s in section3.items() if s is Status.NOT_APPLICABLE} == absent
    assert all(after[c].observed == "no such file" for c in absent)


def test_kubelet_settings_where_no_kubelet_runs_are_judged_from_its_unit_and_config() -> None:
    # the k8s lab: kubelet.service installed, never enabled or started, no kubelet binary
    node = recorded("k8s-fresh.json", K8S_GROUPS)
    svc = next(v for k, v in node.data.items() if k.startswith("svc_config:"))
    assert (svc["argv_source"], svc["unit"]["UnitFileState"], svc["unit"]["ActiveState"]) == (
        "unit",
        "disabled",
        "inactive",
    )
    kubelet = [
        e
        for e in ENTRIES
        if concerns(e, K8S_GROUPS)
        and e.control.check
        and e.control.check.kind == "kubelet_config_key"
    ]
    assert len(kubelet) >= 10
    for e in kubelet:
        v = judge(e, node)
        assert v.status in (Status.PASS, Status.FAIL), (e.id, v)
    # the same recording with the unit enabled and failing: a kubelet meant to run does not
    for state in ({"UnitFileState": "enabled", "ActiveState": "inactive"},
                  {"UnitFileState": "disabled", "ActiveState": "failed"}):  # fmt: skip
        data = {
            k: ({**v, "unit": {**v["unit"], **state}} if k.startswith("svc_config:") else v)
            for k, v in node.data.items()
        }
        broken = Observations("n", node.facts, data, node.vars)
        for e in kubelet:
            v = judge(e, broken)
            assert v.status is Status.ERROR, (e.id, v)
            assert v.observed.startswith("kubelet is not running though kubelet.service is ")


# --- commands that hid their failures -------------------------------------------------------------


def _command_outputs() -> Iterator[tuple[str, Mapping[str, Any]]]:
    for entry in ENTRIES:
        check = entry.control.check
        assert check is not None
        if check.kind == "command_output":
            yield entry.id, check.params
        if check.only_if is not None and check.only_if.kind == "command_output":
            yield entry.id, check.only_if.params
        for part in check.params.get("checks", []) if check.kind == "all_of" else []:
            if part["kind"] == "command_output":
                yield entry.id, part["params"]


def test_every_command_that_asks_dockerd_says_so() -> None:
    asking = [(cid, p) for cid, p in _command_outputs() if re.search(r"\bdocker\s", p["cmd"])]
    assert len(asking) >= 20
    assert [cid for cid, p in asking if p.get("daemon") != "dockerd"] == []
    # and no command hides its failure behind `|| true`, `; true` or a discarded stderr of docker
    for cid, p in _command_outputs():
        assert not re.search(r"(\|\||;)\s*true\s*$", p["cmd"]), cid
        assert not re.search(r"docker [^|;&]*2>\s*/dev/null", p["cmd"]), cid


def test_on_error_cannot_make_a_failed_command_not_applicable() -> None:
    params = {"cmd": "x", "op": "present", "on_error": "not_applicable"}
    with pytest.raises(ValidationError):
        KINDS["command_output"].params.model_validate(params)


def _catalog_cmd(control_id: str) -> str:
    entry = next(e for e in ENTRIES if e.id == control_id)
    assert entry.control.check is not None
    return str(entry.control.check.params["cmd"])


def test_a_modprobe_file_grep_cannot_read_is_an_error(tmp_path: Path) -> None:
    # cm_host_3_20 ran `grep -s ... ; true`: a file grep could not read looked like a clean one
    dirs = ["/etc/modprobe.d", "/run/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"]
    cmd = _catalog_cmd("cm_host_3_20")
    for i, d in enumerate(dirs):
        assert f"{d}/*.conf" in cmd
        cmd = cmd.replace(f"{d}/*.conf", f"{tmp_path}/{i}/*.conf")
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "a.conf").write_text("options loop max_loop=8\n")

    def answer() -> dict[str, Any]:
        done = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=False)
        return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}

    entry = next(e for e in ENTRIES if e.id == "cm_host_3_20")
    key = f"cmd:{_catalog_cmd('cm_host_3_20')}"
    engines = next(k for k in keys(entry) if k != key)
    dockerd = {"commands": {"dockerd": "/usr/sbin/dockerd"}, "running": [], "interfaces": []}
    on_engine_host = {engines: dockerd}

    def verdict() -> Verdict:
        return judge(entry, Observations("h", {}, {key: answer(), **on_engine_host}))

    assert verdict().status is Status.PASS
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "b.conf").write_text("blacklist br_netfilter\n")
    assert verdict().status is Status.FAIL
    (tmp_path / "1" / "b.conf").unlink()
    (tmp_path / "2" / "c.conf").mkdir(parents=True)  # grep: c.conf: Is a directory
    v = verdict()
    assert v.status is Status.ERROR
    assert "Is a directory" in v.observed


@pytest.mark.parametrize(
    ("answer", "status", "seen"),
    [
        ({"rc": 0, "stdout": "SWMKEY (set)\n", "stderr": ""}, Status.PASS, "SWMKEY (set)"),
        ({"rc": 0, "stdout": "no unlock key\n", "stderr": ""}, Status.FAIL, "no unlock key"),
        (
            {"rc": 1, "stdout": "", "stderr": "could not fetch unlock key: This node is not a swarm manager.\n"},
            Status.ERROR,
            "not a swarm manager",
        ),
    ],
)  # fmt: skip
def test_swarm_autolock_tells_no_key_from_a_failure(
    answer: dict[str, Any], status: Status, seen: str
) -> None:
    # cis_docker_7_5 ran `docker swarm unlock-key -q 2>/dev/null | sed ... || true`
    entry = next(e for e in ENTRIES if e.id == "cis_docker_7_5")
    info = '{"Swarm": {"LocalNodeState": "active"}}'
    data = {
        f"cmd:{_catalog_cmd('cis_docker_7_5')}": answer,
        "cmd:docker info --format '{{json .}}'": {"rc": 0, "stdout": info, "stderr": ""},
        "proc:dockerd": {"running": True, "argv": ["/usr/sbin/dockerd"]},
    }
    assert set(data) == set(keys(entry))
    v = judge(entry, Observations("h", {}, data))
    assert v.status is status
    assert seen in v.observed
