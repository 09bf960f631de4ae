"""Benchmark: the continuous-compliance loop on hardened lab nodes — `verify`, `drift`,
`harden --only-drifted` and a full re-harden, as whole processes. Medians, never assertions
(docs/benchmarks.md keeps the figures and the machine they came from).

    .venv/bin/python benchmarks/drift.py [--nodes 1] [--runs 5] [--name benchd] [--drifted-only]
        [--before OTHER_CHECKOUT]

It boots a Docker lab of its own, hardens every node at level 1 (not measured), then measures,
`--runs` times each, on every node of the lab:

- `verify` (level 1), `drift` and `harden --only-drifted` of the compliant nodes, for two
  selections: the whole of level 1, and the level-1 controls the probe can judge on a lab node
  ("judgeable": a container cannot load audit rules, enforce AppArmor or own kernel.*/fs.*
  sysctls, so those controls are not_verifiable there and drift must run their tasks in check
  mode — on a real host the probe judges them and the check-mode run is not needed);
- the full idempotent re-harden (`harden`, level 1);
- with one drifted control per node (daemon.json `icc` edited by hand, dockerd restarted before
  each sample): `drift`, then `harden --only-drifted` (which fixes it for the next sample).

`--drifted-only` measures only `harden --only-drifted` with one drifted control. `--before` runs
another checkout's code (its python/ on PYTHONPATH, its playbooks and roles) beside this one,
sample by sample, on the same nodes.

The controller's CPU is user + system time of casemate and every process it waited for (see
benchmarks/verify.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from verify import Sample, environments, machine, medians, run

DRIFTED = "cis_docker_2_2"  # daemon.json icc: edited by hand on every node before each sample
SPOIL = (
    "python3 -c \"import json; p='/etc/docker/daemon.json'; d=json.load(open(p)); d['icc']=True; "
    "json.dump(d, open(p, 'w'), indent=2)\" "
    # dockerd restarts twice per sample (here, and when harden fixes it): past systemd's start
    # limit for docker.service, so the counter is reset first
    "&& systemctl reset-failed docker.service && systemctl restart docker"
)


def judgeable(state: Path, inv: str, env: dict[str, str]) -> list[str]:
    """The level-1 controls the probe judged (pass or fail) on every node of the lab."""
    out = state / "judgeable"
    run(state, "verify", "-i", inv, "--report-dir", str(out), "--format", "json", env=env)
    doc = json.loads((out / "report.json").read_text())
    seen: dict[str, set[str]] = {}
    for r in doc["results"]:
        seen.setdefault(r["control_id"], set()).add(r["status"])
    return sorted(c for c, statuses in seen.items() if statuses <= {"pass", "fail"})


def measured(
    runs: int, envs: list[dict[str, str]], once: Callable[[dict[str, str]], Sample]
) -> list[Sample]:
    """Per environment (this checkout, then --before's), the median of `runs` samples."""
    return medians(runs, envs, once)


def spoil(nodes: list[str]) -> None:
    for node in nodes:
        subprocess.run(["docker", "exec", node, "sh", "-c", SPOIL], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--name", default="benchd", help="lab name (default: benchd)")
    parser.add_argument(
        "--drifted-only",
        action="store_true",
        help="only harden --only-drifted with one drifted control",
    )
    parser.add_argument("--before", type=Path, help="a checkout to measure beside this one")
    opts = parser.parse_args()
    if opts.nodes < 1 or opts.runs < 1:
        raise SystemExit("--nodes and --runs must be at least 1")
    envs = environments(opts.before)
    env = envs[0]
    rows: list[tuple[str, list[Sample]]] = []

    def add(name: str, samples: list[Sample]) -> None:  # said at once: a run that breaks keeps them
        rows.append((name, samples))
        said = " | ".join(f"{x.wall:.2f} s wall, {x.cpu:.2f} s CPU" for x in samples)
        print(f"{name}: {said}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="casemate-bench-") as tmp:
        state = Path(tmp) / "state"
        inv = str(state / "lab" / opts.name / "inventory.yml")
        nodes = [f"casemate-{opts.name}-{i}" for i in range(1, opts.nodes + 1)]
        lab = ("lab", "up", "--name", opts.name, "--nodes", str(opts.nodes))
        run(state, *lab, ok=(0,), env=env)
        try:
            run(state, "harden", "-i", inv, ok=(0,), env=env)  # not measured
            ids = ",".join(judgeable(state, inv, env))
            selections = (("level 1", ()), ("judgeable", ("--controls", ids)))
            commands: tuple[tuple[str, ...], ...] = (
                ("verify",),
                ("drift",),
                ("harden", "--only-drifted"),
            )
            if opts.drifted_only:
                selections, commands = selections[1:], ()
            for label, more in selections:
                for command in commands:
                    args = (*command, "-i", inv, *more)
                    add(
                        f"{' '.join(command)} ({label})",
                        measured(opts.runs, envs, lambda e, a=args: run(state, *a, env=e)),
                    )
            if not opts.drifted_only:
                reharden = ("harden", "-i", inv)
                add(
                    "harden (re-harden)",
                    measured(opts.runs, envs, lambda e: run(state, *reharden, env=e)),
                )

            def drifted(command: tuple[str, ...], e: dict[str, str]) -> Sample:
                spoil(nodes)
                sample = run(state, *command, "-i", inv, "--controls", ids, env=e)
                if command[0] == "drift":  # put it right for the next sample (not measured)
                    run(state, "harden", "--only-drifted", "-i", inv, "--controls", ids, env=env)
                return sample

            for command in (("drift",), ("harden", "--only-drifted"))[opts.drifted_only :]:
                add(
                    f"{' '.join(command)}, {DRIFTED} drifted",
                    measured(opts.runs, envs, lambda e, c=command: drifted(c, e)),
                )
        finally:
            run(state, "lab", "down", "--name", opts.name, ok=(0,), env=env)
    table(rows, opts.nodes, opts.runs, opts.before)


def table(rows: list[tuple[str, list[Sample]]], nodes: int, runs: int, before: Path | None) -> None:
    print(f"machine: {machine()}")
    print(f"{nodes} Docker node(s), level 1, median of {runs} runs")
    head = "| command | wall | controller CPU | CPU per node |"
    if before is not None:
        head += f" before ({before}): wall, CPU |"
    print(head)
    print("|---" * head.count(" | ") + "|---|")
    for name, samples in rows:
        here = samples[0]
        cells = [f"{here.wall:.2f} s", f"{here.cpu:.2f} s", f"{here.cpu / nodes:.2f} s"]
        cells += [f"{x.wall:.2f} s, {x.cpu:.2f} s" for x in samples[1:]]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
