"""Benchmark: `casemate harden` as a whole process on lab nodes, first harden and idempotent
re-harden, per Ansible strategy. Medians, never assertions: timings on a shared machine are for
comparing, not for pass/fail (docs/benchmarks.md keeps the figures and the machine they came from).

    .venv/bin/python benchmarks/harden.py [--nodes 1,2,4] [--k8s/--no-k8s] [--runs 5]
                                          [--slow-runs 3] [--strategies linear,mitogen_linear]
                                          [--level 1]
    .venv/bin/python benchmarks/harden.py --roles RUN_DIR    # per-role figures of one stored run

For each Docker node count (and the k8s node), per strategy, runs alternating:

- **first harden**: a fresh lab of its own each time (`lab up`, harden, `lab down`), so every
  sample starts from the same untouched node;
- **re-harden**: the same selection again on the compliant nodes (the first harden of the last
  sample leaves them so; one warm-up run is not counted): the daily no-change case.

Slow rows (a first harden of more than two nodes, and the k8s node) take `--slow-runs` samples,
the others `--runs`. Each sample's controller CPU is user + system time of casemate and every
process it waited for (ansible-playbook and its workers, the `docker exec` clients), read with
getrusage(RUSAGE_CHILDREN); the nodes' own processes are not counted. The table gives it per host.

After the table, the per-role figures of the last sample of each row, read from the run's stored
ansible-runner events (each task's ok/changed/skipped per host, and the wall time from one task's
start to the next task's, summed per role): the tasks that stand between a run and its target.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

CASEMATE = str(Path(sys.executable).parent / "casemate")
# the targets (medians, level 1): a compliant node's re-harden, 8 of them, the k8s node,
# and a first harden of 8 nodes against one
TARGET_REHARDEN_1_S = 6.0
TARGET_REHARDEN_8_S = 20.0
TARGET_REHARDEN_K8S_S = 10.0
TARGET_FIRST_8_RATIO = 3.0
# inotify instances in use machine-wide above which 8 more nodes may not boot
INOTIFY_LIMIT_FOR_8 = 50


@dataclass(frozen=True, slots=True)
class Sample:
    wall: float
    cpu: float  # controller: user + system of casemate and the processes it waited for
    run_dir: Path


@dataclass(slots=True)
class Row:
    profile: str  # docker or k8s
    nodes: int
    kind: str  # "first" or "re-harden"
    strategy: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu_per_host(self) -> float:
        return statistics.median(s.cpu for s in self.samples) / self.nodes


def casemate(state: Path, *args: str, ok: tuple[int, ...] = (0,)) -> Sample:
    """Run casemate; its wall time, its controller CPU, and the run it stored (if any)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    known = set((state / "runs").glob("*")) if (state / "runs").is_dir() else set()
    began = time.perf_counter()
    done = subprocess.run(
        [CASEMATE, "--state-dir", str(state), *args], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise SystemExit(f"casemate {' '.join(args)} exited {done.returncode}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    new = sorted(set((state / "runs").glob("*")) - known) if (state / "runs").is_dir() else []
    return Sample(wall, cpu, new[-1] if new else Path())


@dataclass(slots=True)
class RoleFigures:
    tasks: int = 0  # task results, all hosts
    ok: int = 0
    changed: int = 0
    skipped: int = 0
    seconds: float = 0.0  # wall time from each of its tasks' start to the next task's start


def role_figures(run_dir: Path) -> dict[str, RoleFigures]:
    """Per role, from a stored run's ansible-runner events: task results and wall time."""
    events = []
    for path in run_dir.glob("ansible/artifacts/*/job_events/*.json"):
        raw = json.loads(path.read_text())
        events.append(raw)
    events.sort(key=lambda e: int(e.get("counter", 0)))
    roles: dict[str, RoleFigures] = {}
    starts: list[tuple[datetime, str]] = []
    end: datetime | None = None
    for e in events:
        data = e.get("event_data") or {}
        role = str(data.get("role") or "(play)")
        created = datetime.fromisoformat(str(e["created"]))
        kind = str(e.get("event"))
        if kind in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            starts.append((created, role))
        elif kind == "playbook_on_stats":
            end = created
        result = {
            "runner_on_ok": "ok",
            "runner_on_skipped": "skipped",
            "runner_on_failed": "failed",
        }.get(kind)
        if result is None:
            continue
        fig = roles.setdefault(role, RoleFigures())
        fig.tasks += 1
        if result == "ok" and (data.get("res") or {}).get("changed"):
            fig.changed += 1
        elif result == "ok":
            fig.ok += 1
        elif result == "skipped":
            fig.skipped += 1
    for i, (began, role) in enumerate(starts):
        until = starts[i + 1][0] if i + 1 < len(starts) else end
        if until is not None:
            roles.setdefault(role, RoleFigures()).seconds += (until - began).total_seconds()
    return roles


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), load average {load}"


def inotify_in_use() -> int:
    """inotify instances open machine-wide (every systemd node container holds several)."""
    count = 0
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if str(fd.readlink()) == "anon_inode:inotify":
                count += 1
        except OSError:
            continue
    return count


class Bench:
    def __init__(self, opts: argparse.Namespace, state: Path) -> None:
        self.opts = opts
        self.state = state
        self.rows: list[Row] = []

    def inventory(self, lab: str) -> str:
        return str(self.state / "lab" / lab / "inventory.yml")

    def harden(self, lab: str, strategy: str) -> Sample:
        level = str(self.opts.level)
        return casemate(
            self.state, "harden", "-i", self.inventory(lab), "--level", level,
            "--strategy", strategy, "--no-waivers",
        )  # fmt: skip

    def lab(self, lab: str, nodes: int, profile: str, up: bool) -> None:
        if up:
            casemate(self.state, "lab", "up", "--name", lab, "--nodes", str(nodes),
                     "--profile", profile)  # fmt: skip
        else:
            casemate(self.state, "lab", "down", "--name", lab)

    def measure(self, profile: str, nodes: int) -> None:
        strategies: list[str] = self.opts.strategies
        slow = profile == "k8s" or nodes > 2
        lab = f"{self.opts.name}{nodes}{profile[0]}"
        first = {s: Row(profile, nodes, "first", s) for s in strategies}
        again = {s: Row(profile, nodes, "re-harden", s) for s in strategies}
        runs_first = self.opts.slow_runs if slow else self.opts.runs
        runs_again = self.opts.slow_runs if profile == "k8s" else self.opts.runs
        kept = False
        try:
            for i in range(runs_first):
                for j, strategy in enumerate(strategies):
                    last = i == runs_first - 1 and j == len(strategies) - 1
                    kept = True  # taken down below even when `lab up` fails half-way
                    self.lab(lab, nodes, profile, up=True)
                    took = self.harden(lab, strategy)
                    first[strategy].samples.append(took)
                    say(f"{profile} x{nodes} first {strategy}: {took.wall:.1f} s")
                    if not last:
                        self.lab(lab, nodes, profile, up=False)
                        kept = False
            self.harden(lab, strategies[0])  # warm-up on the compliant nodes; not counted
            for _ in range(runs_again):
                for strategy in strategies:
                    took = self.harden(lab, strategy)
                    again[strategy].samples.append(took)
                    say(f"{profile} x{nodes} re-harden {strategy}: {took.wall:.1f} s")
        finally:
            if kept:
                self.lab(lab, nodes, profile, up=False)
        self.rows += [*first.values(), *again.values()]


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def table(rows: list[Row]) -> str:
    out = [
        "| run | nodes | strategy | wall (median) | controller CPU per host | samples | target |",
        "|---|---|---|---|---|---|---|",
    ]
    one_first = {r.strategy: r.wall for r in rows if r.kind == "first" and r.nodes == 1
                 and r.profile == "docker"}  # fmt: skip
    for r in rows:
        target = ""
        if r.kind == "re-harden" and r.profile == "docker" and r.nodes == 1:
            target = f"≤ {TARGET_REHARDEN_1_S:g} s"
        elif r.kind == "re-harden" and r.profile == "docker" and r.nodes == 8:
            target = f"≤ {TARGET_REHARDEN_8_S:g} s"
        elif r.kind == "re-harden" and r.profile == "k8s":
            target = f"≤ {TARGET_REHARDEN_K8S_S:g} s"
        elif (
            r.kind == "first" and r.profile == "docker" and r.nodes > 1 and r.strategy in one_first
        ):
            ratio = r.wall / one_first[r.strategy]
            target = f"{ratio:.1f}x one node" + (
                f" (target ≤ {TARGET_FIRST_8_RATIO:g}x)" if r.nodes == 8 else ""
            )
        what = f"{'Docker' if r.profile == 'docker' else 'k8s'} {r.kind}"
        out.append(
            f"| {what} | {r.nodes} | {r.strategy} | {r.wall:.1f} s | {r.cpu_per_host:.1f} s "
            f"| {len(r.samples)} | {target} |"
        )
    return "\n".join(out)


def roles_table(run_dir: Path) -> str:
    figures = role_figures(run_dir)
    out = [
        "| role | task results | ok (unchanged) | changed | skipped | seconds |",
        "|---|---|---|---|---|---|",
    ]
    total = RoleFigures()
    for role, f in sorted(figures.items(), key=lambda kv: -kv[1].seconds):
        out.append(f"| {role} | {f.tasks} | {f.ok} | {f.changed} | {f.skipped} | {f.seconds:.2f} |")
        total.tasks += f.tasks
        total.ok += f.ok
        total.changed += f.changed
        total.skipped += f.skipped
        total.seconds += f.seconds
    out.append(
        f"| **all** | {total.tasks} | {total.ok} | {total.changed} | {total.skipped} "
        f"| {total.seconds:.2f} |"
    )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--nodes", default="1,2,4", help="Docker node counts (default: 1,2,4)")
    parser.add_argument("--k8s", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--slow-runs", type=int, default=3)
    parser.add_argument("--strategies", default="linear,mitogen_linear")
    parser.add_argument("--level", type=int, default=1, choices=(1, 2))
    parser.add_argument("--name", default="hb", help="lab name prefix (default: hb)")
    parser.add_argument("--roles", type=Path, help="print the per-role figures of a stored run")
    opts = parser.parse_args()
    if opts.roles is not None:
        print(roles_table(opts.roles))
        return
    opts.strategies = [s for s in opts.strategies.split(",") if s]
    counts = [int(n) for n in opts.nodes.split(",") if n]
    if min(counts, default=1) < 1 or opts.runs < 1 or opts.slow_runs < 1 or not opts.strategies:
        raise SystemExit(
            "--nodes, --runs and --slow-runs must be at least 1, --strategies not empty"
        )
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="casemate-bench-") as tmp:
        bench = Bench(opts, Path(tmp) / "state")
        for n in counts:
            if n >= 8 and (used := inotify_in_use()) >= INOTIFY_LIMIT_FOR_8:
                say(f"skipping {n} nodes: {used} inotify instances in use")
                continue
            bench.measure("docker", n)
        if opts.k8s:
            bench.measure("k8s", 1)
        print(f"level {opts.level}; machine after: {machine()}")
        print(table(bench.rows))
        for r in bench.rows:
            print(f"\nper role, last sample of: {r.profile} x{r.nodes} {r.kind} {r.strategy} "
                  f"({r.samples[-1].wall:.1f} s)")  # fmt: skip
            print(roles_table(r.samples[-1].run_dir))


if __name__ == "__main__":
    main()
