"""`casemate rollback` on a real node: harden, then rollback leaves every file, directory and link
under /etc (and PAM's profiles and state) as it was before the harden (content, mode, owner, group, hashed before and after) with
dockerd and sshd running; `--check` changes nothing; a rollback over a file that changed again
since the run is refused with its diff and changes nothing, and goes through with --force."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .conftest import Lab, lab_name, last_run, open_lab

LAB = lab_name("rb")
# every file, directory and link under /etc and PAM's profiles and pam-auth-update's state (the
# host baseline's PAM controls change them): type, mode, owner, group, link target; then each
# regular file's sha256
TREES = "/etc /usr/share/pam-configs /var/lib/pam"
META = rf"find {TREES} -xdev \( -type f -o -type d -o -type l \) -printf '%p\t%y %m %u %g %l\n'"
HASHES = f"find {TREES} -xdev -type f -print0 | xargs -0 sha256sum"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, LAB, 1) as lab:
        yield lab


def fingerprint(lab: Lab) -> dict[str, str]:
    """path -> its type, mode, owner, group (and link target, or content hash) on the node."""
    found = dict(line.split("\t", 1) for line in lab.sh(lab.nodes[0], META).splitlines())
    for line in lab.sh(lab.nodes[0], HASHES).splitlines():
        digest, path = line.split("  ", 1)
        found[path] += f" sha256:{digest}"
    return found


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def services_answer(lab: Lab) -> None:
    lab.sh(lab.nodes[0], "systemctl is-active --quiet docker && systemctl is-active --quiet ssh")
    lab.sh(lab.nodes[0], "docker version >/dev/null && /usr/sbin/sshd -t")


def harden(lab: Lab) -> str:
    lab.casemate("harden", "-i", str(lab.inventory), "--level", "1", check=0)
    return last_run(lab.state, "harden").name


def test_harden_then_rollback_leaves_every_file_as_before_with_dockerd_and_sshd_running(
    bed: Lab,
) -> None:
    before = fingerprint(bed)
    run_id = harden(bed)
    hardened = fingerprint(bed)
    assert changed(before, hardened), "harden changed nothing: the test proves nothing"
    recorded = json.loads((bed.state / "runs" / run_id / "run.json").read_text())
    manifest = recorded["files_changed"][bed.nodes[0]]
    assert {c["path"] for c in manifest} == set(changed(before, hardened))

    looked = bed.casemate("rollback", run_id, "--check", check=0)
    assert "would restore" in looked.stdout
    assert fingerprint(bed) == hardened, "rollback --check changed something"

    done = bed.casemate("rollback", run_id, check=0)
    assert changed(before, fingerprint(bed)) == []
    services_answer(bed)
    assert "restored" in done.stdout
    assert " -> fail" in done.stdout  # verified again: what harden fixed is back as it was
    meta = json.loads((last_run(bed.state, "rollback") / "run.json").read_text())
    assert meta["kind"] == "rollback"
    assert meta["rolls_back"] == run_id
    assert meta["outcome"] == "succeeded"
    assert "docker.service" in meta["restored"][bed.nodes[0]]["restarted"]


def test_rollback_of_a_file_changed_since_the_run_is_refused_then_forced(bed: Lab) -> None:
    before = fingerprint(bed)
    run_id = harden(bed)
    bed.sh(bed.nodes[0], "echo '# changed after the run' >> /etc/login.defs")
    edited = fingerprint(bed)

    refused = bed.casemate("rollback", run_id)
    assert refused.returncode == 3, refused.stderr
    assert "changed again since run" in refused.stdout
    assert "+# changed after the run" in refused.stdout  # the diff is shown
    assert fingerprint(bed) == edited, "a refused rollback changed something"
    services_answer(bed)

    bed.casemate("rollback", run_id, "--force", check=0)
    assert changed(before, fingerprint(bed)) == []
    services_answer(bed)
