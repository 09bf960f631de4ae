"""Which kubelet is this host's (finding 4): the main process of its systemd unit while the unit
is active, never a process called kubelet in some other PID namespace (a pod running kind). The
roles' lookup (roles/kube_node/module_utils/kube_process.py) and the probe's (svc_config) on a
made-up /proc; static pods are still found in any namespace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from .assembled import probe_module
from .test_kube_kubelet_preflight import preflight_calls
from .test_kube_manifest import _load

ROOT = content_root()
kp = _load(ROOT / "roles" / "kube_node" / "module_utils" / "kube_process.py", "kube_process_utils")
remote = probe_module()

HOST_KUBELET = ["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"]
POD_KUBELET = ["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml", "--fail-swap-on=false"]


def fake_proc(root: Path, procs: dict[int, tuple[list[str], int]]) -> Path:
    """A /proc with pid -> (argv, start ticks)."""
    for pid, (argv, start) in procs.items():
        d = root / str(pid)
        d.mkdir(parents=True)
        (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        (d / "comm").write_text(Path(argv[0]).name[:15] + "\n")  # the kernel cuts comm at 15
        rest = ["S", *["0"] * 18, str(start)]  # field 22 of stat is the start time
        (d / "stat").write_text(f"{pid} ({Path(argv[0]).name}) {' '.join(rest)}\n")
    return root


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    # 100: the host's kubelet (older); 200: a kubelet inside a kind pod (newer)
    return fake_proc(tmp_path / "proc", {100: (HOST_KUBELET, 5000), 200: (POD_KUBELET, 9000)})


def test_an_active_unit_gives_its_main_process(proc: Path) -> None:
    found = kp.unit_process({"active_state": "active", "main_pid": 100}, str(proc))
    assert found == {"pid": 100, "start": 5000, "argv": HOST_KUBELET}


def test_a_stopped_unit_is_not_running_whatever_else_is_called_kubelet(proc: Path) -> None:
    # the old lookup picked the newest process called kubelet, the pod's
    assert kp.pick(kp.processes_named("kubelet", str(proc)), [])["pid"] == 200
    for unit in (
        {"active_state": "inactive", "main_pid": 0},
        {"active_state": "failed", "main_pid": 0},
        {"active_state": "active", "main_pid": 0},
        {"active_state": "active", "main_pid": 4242},  # gone meanwhile
    ):
        assert kp.unit_process(unit, str(proc)) is None, unit


def test_unit_state_reads_systemctl_show() -> None:
    def run(argv: list[str]) -> tuple[int, str, str]:
        assert argv[:3] == ["systemctl", "show", "kubelet"]
        return 0, "ActiveState=active\nMainPID=100\n", ""

    assert kp.unit_state(run, "kubelet") == {"active_state": "active", "main_pid": 100}
    assert kp.unit_state(lambda argv: (1, "", "no"), "kubelet") == {
        "active_state": "",
        "main_pid": 0,
    }


def test_static_pods_are_still_found_in_any_namespace(proc: Path) -> None:
    assert {p["pid"] for p in kp.processes_named("kubelet", str(proc))} == {100, 200}


def test_the_kubelet_role_asks_for_the_unit_not_a_name() -> None:
    tasks = yaml.safe_load((ROOT / "roles/kube_kubelet/tasks/main.yml").read_text())
    read = next(t for t in tasks if t["name"].startswith("Preflight | Read the kubelet's unit"))
    assert read["kube_kubelet_preflight"]["service"] == "{{ kube_kubelet_service }}"
    # the preflight action asks kube_node_facts for the unit's main process, never a name
    (first, *_) = preflight_calls()
    assert first[0] == "kube_node_facts"
    assert first[1]["services"] == {"kubelet": "kubelet"}
    assert "processes" not in first[1]
    apply = yaml.safe_load((ROOT / "roles/kube_kubelet/tasks/apply.yml").read_text())
    waits = [
        t["kube_component_wait"]
        for block in apply
        for t in [*block.get("block", []), *block.get("rescue", [])]
        if "kube_component_wait" in t
    ]
    assert len(waits) == 2 and all(w["unit"] == "{{ kube_kubelet_service }}" for w in waits)


# --- the probe: svc_config --------------------------------------------------------------------

SPEC = json.dumps(
    {
        "config": "/nonexistent/config.yaml",
        "config_flag": "--config",
        "process": "kubelet",
        "unit": "kubelet.service",
    }
)


def _probe(monkeypatch: pytest.MonkeyPatch, unit: dict[str, str], own_ns: list[Any]) -> Any:
    def run(argv: list[str]) -> dict[str, Any]:
        if "ExecStart" in argv:
            return {"rc": 0, "stdout": "LoadState=loaded\nExecStart={ path=/usr/bin/kubelet ; argv[]=/usr/bin/kubelet --unit-flag ; }\n", "stderr": ""}  # fmt: skip
        return {"rc": 0, "stdout": "".join(f"{k}={v}\n" for k, v in unit.items()), "stderr": ""}

    calls: list[tuple[str, bool]] = []

    def processes(name: str, any_ns: bool = False) -> list[Any]:
        calls.append((name, any_ns))
        return own_ns

    monkeypatch.setattr(remote, "run_command", run)
    monkeypatch.setattr(remote, "processes", processes)
    out = remote.c_svc_config(SPEC)
    assert all(not any_ns for _, any_ns in calls), "searched other PID namespaces"
    return out


def test_probe_reads_the_units_main_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pid = Path("/proc/self").resolve().name  # a process that surely exists: this one
    out = _probe(monkeypatch, {"ActiveState": "active", "MainPID": pid}, [])
    assert out["argv_source"] == "process"
    assert out["argv"] == Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_probe_never_judges_another_namespaces_kubelet(monkeypatch: pytest.MonkeyPatch) -> None:
    # stopped unit, no kubelet in our own namespace (a pod's kubelet would only be found with
    # any_ns): the unit's command line is judged
    out = _probe(monkeypatch, {"ActiveState": "inactive", "MainPID": "0"}, [])
    assert (out["argv_source"], out["argv"]) == ("unit", ["/usr/bin/kubelet", "--unit-flag"])
    # a kubelet run outside systemd in our own namespace is still this host's
    out = _probe(monkeypatch, {"ActiveState": "inactive", "MainPID": "0"}, [(1, 7, HOST_KUBELET)])
    assert (out["argv_source"], out["argv"]) == ("process", HOST_KUBELET)
