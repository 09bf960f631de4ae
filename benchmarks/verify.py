"""Benchmark: `casemate verify` as a whole process on hardened lab nodes, and `catalog list`.
Medians and ratios, never assertions: timings on a shared machine are for comparing, not for
pass/fail (docs/benchmarks.md keeps the figures and the machine they came from).

    .venv/bin/python benchmarks/verify.py [--profile docker|k8s] [--nodes 8] [--runs 7]
                                          [--before CHECKOUT]

It boots a lab of its own (`--name`, default `bench`), hardens every node at level 2 (not
measured), waits for the AIDE database build that harden starts on each node (settle), then
measures, `--runs` times each:

- `casemate verify --level 2` of one node (`--limit` the first), writing what verify always writes
  (the run record, report.json, junit.xml): wall time and the controller's CPU; the node keeps its
  container proofs from the run before (casemate_proof.py), as it does between two verifies of an
  unchanged host. The issue's target (<= 0.5 s) is for this row;
- the same with `--report-dir` (every report format: HTML, OSCAL, SARIF, CSV as well);
- that with `--fresh-proofs` (this checkout only: every container proof started anew);
- with `--nodes` > 1, every node with `--report-dir`: the controller's CPU per additional node
  (against the one-node row with every format);
- `casemate catalog list`: wall time (the loaded catalog kept in the state directory from the
  first, unmeasured run);
- the probe's one round trip to the first node, taken apart (this checkout only): the whole
  `transport.run` of verify's own transport and probe command, the time the remote script says
  it ran (`elapsed_ms`), and a bare `true` and `python3 -c pass` through the same transport: what
  is the host's work and what is the transport's.

With `--before CHECKOUT` (another checkout of casemate, e.g. `git worktree add /tmp/old main~3`)
every measurement is made with that checkout's code too, on the same lab, runs alternating, so the
two columns meet the same machine load. Python may write bytecode (PYTHONDONTWRITEBYTECODE is
dropped for the commands measured), as an installed casemate has it.

The controller's CPU is user + system time of casemate and every process it waited for (the
`docker exec` clients, ansible-inventory), read with getrusage(RUSAGE_CHILDREN) around each run.
The probe itself runs inside the node containers, whose processes are not casemate's children, so
its CPU is not counted: it is the node's, not the controller's.

docker-bench-security cannot be fetched here; the reference is the issue's figure for it on the
same kind of node (REFERENCE_S).
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CASEMATE = str(Path(sys.executable).parent / "casemate")
REFERENCE_S = 2.2  # docker-bench-security inside a hardened Docker lab node (the issue says)
TARGET_S = 0.5  # whole-process verify of one node
TARGET_CPU_PER_NODE_S = 0.05
TARGET_CATALOG_LIST_S = 0.3
# the row of one node with every report format; the eight-node row writes every format too, so the
# controller's CPU per additional node compares like with like
EVERY_FORMAT = "  ... every format"


@dataclass(frozen=True, slots=True)
class Sample:
    wall: float
    cpu: float  # controller: user + system of casemate and the processes it waited for


def run(state: Path, *args: str, ok: tuple[int, ...] = (0, 1), env: dict[str, str]) -> Sample:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        [CASEMATE, "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        raise SystemExit(f"casemate {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu)


def medians(
    runs: int, envs: list[dict[str, str]], once: Callable[[dict[str, str]], Sample]
) -> list[Sample]:
    """Per environment, the median of `runs` samples; environments alternate run by run."""
    for env in envs:
        once(env)  # warm the page cache, bytecode and casemate's own caches; not counted
    samples: list[list[Sample]] = [[] for _ in envs]
    for _ in range(runs):
        for i, env in enumerate(envs):
            samples[i].append(once(env))
    return [
        Sample(statistics.median(s.wall for s in mine), statistics.median(s.cpu for s in mine))
        for mine in samples
    ]


def round_trip(state: Path, inventory: str, host: str, runs: int) -> list[tuple[str, float]]:
    """Medians (seconds) of the probe's round trip to `host` through verify's own transport and
    command, beside what the remote script says it spent and a bare command's round trip."""
    from casemate.catalog.cache import cached_catalog  # noqa: PLC0415 - the checkout measured
    from casemate.catalog.select import Selection, select  # noqa: PLC0415
    from casemate.checks import builtin_kinds  # noqa: PLC0415
    from casemate.probe.collect import remote_command  # noqa: PLC0415
    from casemate.probe.transport import host_transport, interpreter_of  # noqa: PLC0415
    from casemate.runner import resolve_inventory  # noqa: PLC0415
    from casemate.verify import concerns, relevant_entries, wanted_probes  # noqa: PLC0415

    inv = resolve_inventory(Path(inventory), state)
    groups = inv.groups_of(host)
    entries = relevant_entries(
        select(cached_catalog(None, builtin_kinds(), state / "cache"), Selection(level=2)),
        groups,
    )
    interpreter = interpreter_of(inv.hostvars(host))
    command = remote_command(
        wanted_probes([e for e in entries if concerns(e, groups)]), interpreter
    )
    transport = host_transport(inv, host)
    timed: dict[str, list[float]] = {"whole": [], "script": [], "true": [], "python": []}
    for _ in range(runs):
        for name, cmd in (
            ("true", "true"),
            ("python", f"{interpreter} -c pass"),
            ("whole", command),
        ):
            began = time.perf_counter()
            done = transport.run(cmd)
            timed[name].append(time.perf_counter() - began)
            if name == "whole":
                timed["script"].append(
                    json.loads(done.stdout[done.stdout.find("{") :])["elapsed_ms"] / 1000
                )
    return [
        ("probe round trip (transport.run)", statistics.median(timed["whole"])),
        ("  the remote script's own elapsed_ms", statistics.median(timed["script"])),
        ("  `true` through the transport", statistics.median(timed["true"])),
        (f"  `{interpreter} -c pass` through it", statistics.median(timed["python"])),
        (f"  the command: {len(command)} bytes", 0.0),
    ]


def probe_ms(report_dir: Path) -> list[int]:
    doc = json.loads((report_dir / "report.json").read_text())
    return [int(h["probe_elapsed_ms"] or 0) for h in doc["hosts"]]


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), load average {load}"


def environments(before: Path | None) -> list[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if before is None:
        return [env]
    if not (before / "python" / "casemate" / "cli.py").is_file():
        raise SystemExit(f"--before {before}: not a casemate checkout (no python/casemate/cli.py)")
    old = env | {"PYTHONPATH": os.pathsep.join([str(before / "python"), env.get("PYTHONPATH", "")])}
    return [env, old]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=("docker", "k8s"), default="docker")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--name", default="bench", help="lab name (default: bench)")
    parser.add_argument("--before", type=Path, help="a checkout to measure beside this one")
    opts = parser.parse_args()
    if opts.nodes < 1 or opts.runs < 1:
        raise SystemExit("--nodes and --runs must be at least 1")
    envs = environments(opts.before)
    here = envs[0]
    rows: list[tuple[str, list[Sample]]] = []
    probed: list[int] = []
    trip: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="casemate-bench-") as tmp:
        state = Path(tmp) / "state"
        reports = Path(tmp) / "reports"
        inv = str(state / "lab" / opts.name / "inventory.yml")
        first = f"casemate-{opts.name}-1"
        listing = medians(opts.runs, envs, lambda env: run(state, "catalog", "list", env=env))
        rows.append(("catalog list", listing))
        lab = ("lab", "up", "--name", opts.name, "--nodes", str(opts.nodes))
        try:
            # inside the try: a lab that came up only in part (a node too slow) is taken down too
            run(state, *lab, "--profile", opts.profile, ok=(0,), env=here)
            run(state, "harden", "-i", inv, "--level", "2", ok=(0,), env=here)  # not measured
            settle(opts.name, opts.nodes)

            def verify(env: dict[str, str], *more: str, formats: bool = True) -> Sample:
                out = reports / str(envs.index(env))  # each checkout's last report
                written = ("--report-dir", str(out)) if formats else ()
                args = ("verify", "-i", inv, "--level", "2", *written, *more)
                return run(state, *args, env=env)

            plain = medians(
                opts.runs, envs, lambda env: verify(env, "--limit", first, formats=False)
            )
            rows.append((f"verify 1 {opts.profile} node", plain))
            one = medians(opts.runs, envs, lambda env: verify(env, "--limit", first))
            rows.append((EVERY_FORMAT, one))
            probed = [probe_ms(reports / str(i))[0] for i in range(len(envs))]
            fresh = medians(
                opts.runs, [here], lambda env: verify(env, "--limit", first, "--fresh-proofs")
            )
            rows.append(("  ... --fresh-proofs", fresh))
            probed.append(probe_ms(reports / "0")[0])
            if opts.nodes > 1:
                rows.append(
                    (f"verify {opts.nodes} {opts.profile} nodes", medians(opts.runs, envs, verify))
                )
            trip = round_trip(state, inv, first, opts.runs)
        finally:
            run(state, "lab", "down", "--name", opts.name, ok=(0,), env=here)
    report(opts, rows, probed, trip)


def settle(lab: str, nodes: int) -> None:
    """Wait until the work a level-2 harden leaves running on every node has ended: the first
    AIDE database build (cm_host_4_22, casemate-aide-init.service) keeps a core busy per node for
    a while, and measured beside it every figure is that machine's load, not casemate's."""
    wait = "while systemctl is-active --quiet casemate-aide-init.service; do sleep 1; done"
    for n in range(1, nodes + 1):
        subprocess.run(["docker", "exec", f"casemate-{lab}-{n}", "sh", "-c", wait], check=True)


def report(
    opts: argparse.Namespace,
    rows: list[tuple[str, list[Sample]]],
    probed: list[int],
    trip: list[tuple[str, float]],
) -> None:
    before = opts.before is not None
    print(f"machine: {machine()}")
    print(f"median of {opts.runs} runs; controller CPU = user + sys of casemate and its children")
    head = f"  {'command':<24} {'wall':>8} {'ctl CPU':>8}"
    print(
        head + (f" {'before':>8} {'ctl CPU':>8} {'wall ratio':>10}" if before else "") + "  notes"
    )
    for name, samples in rows:
        now = samples[0]
        line = f"  {name:<24} {now.wall:7.3f}s {now.cpu:7.3f}s"
        if before and len(samples) > 1:
            old = samples[1]
            line += f" {old.wall:7.3f}s {old.cpu:7.3f}s {now.wall / old.wall:9.2f}x"
        if name.startswith("verify 1"):
            line += (
                f"  {now.wall / REFERENCE_S:.2f}x docker-bench's {REFERENCE_S} s (target "
                f"<= {TARGET_S} s); probe {' / '.join(map(str, probed[:-1]))} ms on the node"
            )
        elif name == EVERY_FORMAT:
            line += "  every report format written (--report-dir)"
        elif name.endswith("--fresh-proofs"):
            line += f"  probe {probed[-1]} ms on the node"
        elif name == "catalog list":
            line += f"  target <= {TARGET_CATALOG_LIST_S} s"
        print(line)
    if opts.nodes > 1:
        for i, label in enumerate(["", "before: "] if before else [""]):
            one = next(r[1][i] for r in rows if r[0] == EVERY_FORMAT)
            many = next(r[1][i] for r in rows if r[0].startswith(f"verify {opts.nodes} "))
            per_node = (many.cpu - one.cpu) / (opts.nodes - 1)
            print(
                f"  {label}controller CPU per additional node: {per_node:.3f} s "
                f"(target <= {TARGET_CPU_PER_NODE_S} s)"
            )
    print(f"the probe's round trip to the first node, median of {opts.runs}:")
    for name, seconds in trip:
        print(f"  {name:<40} {seconds:7.3f}s" if seconds else f"  {name}")


if __name__ == "__main__":
    main()
