"""Benchmark: wall time of `casemate harden` (a no-change run, the daily drift-check case) per
Ansible strategy, and of `casemate verify`, on lab nodes. Medians and ratios, never assertions:
timings on a shared machine are for comparing, not for pass/fail.

    .venv/bin/python benchmarks/strategies.py [--nodes 2] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASEMATE = str(Path(sys.executable).parent / "casemate")


def timed(state: Path, *args: str) -> float:
    began = time.monotonic()
    done = subprocess.run(
        [CASEMATE, "--state-dir", str(state), *args], capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"casemate {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="casemate-bench-") as tmp:
        state = Path(tmp)
        inv = str(state / "lab" / "bench" / "inventory.yml")
        timed(state, "lab", "up", "--name", "bench", "--nodes", str(opts.nodes))
        try:
            timed(
                state, "harden", "-i", inv, "--level", "2"
            )  # first run changes things; not measured
            rows = []
            for strategy in ("linear", "mitogen_linear"):
                runs = [
                    timed(state, "harden", "-i", inv, "--level", "2", "--strategy", strategy)
                    for _ in range(opts.runs)
                ]
                rows.append((f"harden --strategy {strategy}", statistics.median(runs)))
            runs = [timed(state, "verify", "-i", inv, "--level", "2") for _ in range(opts.runs)]
            rows.append(("verify (one probe per host)", statistics.median(runs)))
        finally:
            timed(state, "lab", "down", "--name", "bench")
    base = rows[0][1]
    print(f"{opts.nodes} node(s), median of {opts.runs} runs")
    for name, median in rows:
        print(f"  {name:<34} {median:6.2f} s   {base / median:5.1f}x vs linear")


if __name__ == "__main__":
    main()
