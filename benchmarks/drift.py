"""Benchmark: the continuous-compliance loop on hardened lab nodes — `verify`, `drift`,
`harden --only-drifted` and a full re-harden, as whole processes. Medians, never assertions
(docs/benchmarks.md keeps the figures and the machine they came from).

    .venv/bin/python benchmarks/drift.py [--nodes 1] [--runs 5] [--name benchd] [--drifted-only]

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

`--drifted-only` measures only `verify (judgeable)` and the two drifted rows.

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


def measured(runs: int, env: dict[str, str], once: Callable[[], Sample]) -> Sample:
    return medians(runs, [env], lambda _env: once())[0]


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
        help="only the rows with one drifted control (and verify, for scale)",
    )
    opts = parser.parse_args()
    if opts.nodes < 1 or opts.runs < 1:
        raise SystemExit("--nodes and --runs must be at least 1")
    (env,) = environments(None)
    rows: list[tuple[str, Sample]] = []

    def add(row: tuple[str, Sample]) -> None:  # said at once too: a run that breaks keeps them
        rows.append(row)
        print(f"{row[0]}: {row[1].wall:.2f} s wall, {row[1].cpu:.2f} s CPU", file=sys.stderr)

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
                selections, commands = selections[1:], commands[:1]
            for label, more in selections:
                for command in commands:
                    name = f"{' '.join(command)} ({label})"
                    args = (*command, "-i", inv, *more)
                    add((name, measured(opts.runs, env, lambda a=args: run(state, *a, env=env))))
            if not opts.drifted_only:
                add(
                    (
                        "harden (re-harden)",
                        medians(opts.runs, [env], lambda e: run(state, "harden", "-i", inv, env=e))[
                            0
                        ],
                    )
                )

            def drifted(*command: str) -> Sample:
                spoil(nodes)
                sample = run(state, *command, "-i", inv, "--controls", ids, env=env)
                if command[0] == "drift":  # put it right for the next sample (not measured)
                    run(state, "harden", "--only-drifted", "-i", inv, "--controls", ids, env=env)
                return sample

            add(
                (
                    f"drift, {DRIFTED} drifted",
                    measured(opts.runs, env, lambda: drifted("drift")),
                )
            )
            add(
                (
                    f"harden --only-drifted, {DRIFTED} drifted",
                    measured(opts.runs, env, lambda: drifted("harden", "--only-drifted")),
                )
            )
        finally:
            run(state, "lab", "down", "--name", opts.name, ok=(0,), env=env)
    print(f"machine: {machine()}")
    print(f"{opts.nodes} Docker node(s), level 1, median of {opts.runs} runs")
    print("| command | wall | controller CPU | CPU per node |")
    print("|---|---|---|---|")
    for name, sample in rows:
        per_node = sample.cpu / opts.nodes
        print(f"| {name} | {sample.wall:.2f} s | {sample.cpu:.2f} s | {per_node:.2f} s |")


if __name__ == "__main__":
    main()
