"""The controller's host readers (casemate.readers) judged from many threads at once, as verify
judges its hosts: the first use loads a library file, and no thread may see it half loaded (a
check kind then crashed with "module 'casemate._readers.casemate_host' has no attribute
'flag_values'" and the control became an error on some hosts of a multi-host verify)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import threading
from casemate import readers

barrier = threading.Barrier(32)
failed = []

def judge():
    barrier.wait()
    try:
        readers.flag_values(["dockerd", "--icc=false"], ["--icc"], "bool")
        readers.sshd_comma_lists()
        readers.audit_watches("-w /etc/passwd -p wa -k identity")
    except Exception as exc:
        failed.append(repr(exc))

threads = [threading.Thread(target=judge) for _ in range(32)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("FAILED:", len(failed), failed[:1])
"""


@pytest.mark.parametrize("attempt", range(5))
def test_readers_first_used_from_many_threads_are_whole(attempt: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    assert "FAILED: 0 []" in done.stdout, (attempt, done.stdout)
