"""Benchmark: the host-reader library's first load when many host threads ask for it at once.

    .venv/bin/python benchmarks/library_load.py [--threads 8] [--runs 15] [--before CHECKOUT]

Each run is a fresh Python process: it imports casemate.readers, then `--threads` threads meet at
a barrier and each asks for `library_module("casemate_engine").engine_socket()`, as verify's
host threads do at their first probe. Printed: the median process CPU after the import (the
library's load), for this checkout and, with `--before`, another one (its `python/` first on
PYTHONPATH), runs alternating. Medians, never assertions (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import threading, time
from casemate import readers
began = time.process_time()
barrier = threading.Barrier({threads})
def ask():
    barrier.wait()
    readers.library_module("casemate_engine").engine_socket()
threads = [threading.Thread(target=ask) for _ in range({threads})]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(time.process_time() - began)
"""


def once(env: dict[str, str], threads: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(threads=threads)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--before", type=Path, help="a checkout to measure beside this one")
    opts = parser.parse_args()
    here = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    envs = {"now": here}
    if opts.before is not None:
        envs["before"] = here | {"PYTHONPATH": str(opts.before / "python")}
    samples: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(opts.runs):
        for name, env in envs.items():
            samples[name].append(once(env, opts.threads))
    print(f"{opts.threads} threads asking at once, process CPU, median of {opts.runs}:")
    for name, got in samples.items():
        print(f"  {name:<7} {statistics.median(got) * 1000:6.1f} ms "
              f"({min(got) * 1000:.1f}-{max(got) * 1000:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
