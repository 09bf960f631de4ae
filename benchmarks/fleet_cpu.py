"""Benchmark: where the CPU of one `verify` / `drift` goes when a lab has several nodes, to tell
casemate's cost from the lab's. Medians, never assertions (docs/benchmarks.md).

    .venv/bin/python benchmarks/fleet_cpu.py [--nodes 2] [--runs 5] [--name benchf]
                                             [--commands verify,drift] [--before CHECKOUT]

Lab nodes are containers on the controller's own CPUs: each node's probe work (its python3, its
dockerd answering the Engine API, the container proofs) runs on the same cores as casemate. Per
sample this measures, besides the wall time:

- controller CPU: user + system of casemate and every process it waited for;
- node CPU: what every node container's cgroup used (cpuacct.usage, cgroup v1) beyond what the
  idle nodes use in as long (their systemd, dockerd and timers, measured over 10 s first): the
  remote side of the probe, which on a real fleet runs on each node's own CPUs;
- shim CPU: the containerd shims of those containers (they carry every `docker exec`).

The floor on this machine is (controller + node + shim CPU) / CPUs: no wall time below it is
possible here whatever casemate does. It boots a Docker lab of its own and hardens it at level 1
first (not measured). With `--before CHECKOUT` (another checkout's python/, as in verify.py) each
command is measured with that checkout's code too, runs alternating, so both meet the same load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from verify import environments, machine, run

TICK = os.sysconf("SC_CLK_TCK")
CGROUP = Path("/sys/fs/cgroup/cpuacct/docker")


@dataclass(frozen=True, slots=True)
class Spent:
    wall: float
    controller: float
    nodes: float
    shims: float

    @property
    def floor(self) -> float:
        return (self.controller + self.nodes + self.shims) / (os.cpu_count() or 1)


def container_ids(names: list[str]) -> list[str]:
    done = subprocess.run(
        ["docker", "inspect", "--format", "{{.Id}}", *names],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def node_cpu(ids: list[str]) -> float:
    """Seconds of CPU the containers' cgroups have used so far."""
    total = 0
    for cid in ids:
        usage = CGROUP / cid / "cpuacct.usage"
        if not usage.is_file():
            raise SystemExit(f"no cgroup v1 cpuacct for container {cid[:12]} ({usage})")
        total += int(usage.read_text())
    return total / 1e9


def shim_cpu(ids: list[str]) -> float:
    """Seconds of CPU the containerd shims of these containers have used so far."""
    total = 0
    wanted = set(ids)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if not argv or b"containerd-shim" not in argv[0]:
                continue
            args = [a.decode() for a in argv]
            if "-id" not in args or args[args.index("-id") + 1] not in wanted:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--name", default="benchf", help="lab name (default: benchf)")
    parser.add_argument(
        "--commands", default="verify,drift", help="comma-separated (default: verify,drift)"
    )
    parser.add_argument(
        "--before", type=Path, help="a checkout to measure beside this one, runs alternating"
    )
    opts = parser.parse_args()
    if opts.nodes < 1 or opts.runs < 1:
        raise SystemExit("--nodes and --runs must be at least 1")
    envs = environments(opts.before)
    env = envs[0]
    labels = ["this checkout", f"before ({opts.before})"][: len(envs)]
    rows: list[tuple[str, Spent]] = []
    with tempfile.TemporaryDirectory(prefix="casemate-bench-") as tmp:
        state = Path(tmp) / "state"
        inv = str(state / "lab" / opts.name / "inventory.yml")
        names = [f"casemate-{opts.name}-{i}" for i in range(1, opts.nodes + 1)]
        run(state, "lab", "up", "--name", opts.name, "--nodes", str(opts.nodes), ok=(0,), env=env)
        try:
            run(state, "harden", "-i", inv, ok=(0,), env=env)  # not measured
            ids = container_ids(names)
            began, idle = time.perf_counter(), node_cpu(ids)
            time.sleep(10)
            idle_rate = (node_cpu(ids) - idle) / (time.perf_counter() - began)
            print(f"idle nodes: {idle_rate:.3f} CPU-s per second", file=sys.stderr)
            for command in [(c,) for c in opts.commands.split(",")]:
                for one in envs:
                    run(state, *command, "-i", inv, env=one)  # warm; not counted
                samples: list[list[Spent]] = [[] for _ in envs]
                for _ in range(opts.runs):
                    for mine, one in zip(samples, envs, strict=True):  # alternating: same load
                        nodes, shims = node_cpu(ids), shim_cpu(ids)
                        took = run(state, *command, "-i", inv, env=one)
                        mine.append(
                            Spent(
                                took.wall,
                                took.cpu,
                                node_cpu(ids) - nodes - idle_rate * took.wall,
                                shim_cpu(ids) - shims,
                            )
                        )
                for label, mine in zip(labels, samples, strict=True):
                    spent = Spent(
                        *(
                            statistics.median(getattr(s, f) for s in mine)
                            for f in ("wall", "controller", "nodes", "shims")
                        )
                    )
                    name = f"{command[0]} (level 1)" + (f", {label}" if opts.before else "")
                    rows.append((name, spent))
                    print(f"{name}: {spent}", file=sys.stderr)
        finally:
            run(state, "lab", "down", "--name", opts.name, ok=(0,), env=env)
    print(f"machine: {machine()}")
    print(f"{opts.nodes} Docker node(s), level 1, median of {opts.runs} runs")
    print("| command | wall | controller CPU | node CPU | shim CPU | floor here (CPU / cores) |")
    print("|---|---|---|---|---|---|")
    for name, s in rows:
        print(
            f"| {name} | {s.wall:.2f} s | {s.controller:.2f} s | {s.nodes:.2f} s "
            f"| {s.shims:.2f} s | {s.floor:.2f} s |"
        )


if __name__ == "__main__":
    main()
