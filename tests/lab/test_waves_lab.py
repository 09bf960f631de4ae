"""A staged rollout on 4 real nodes (`harden --waves 1,2,100%`: node 1, then node 2, then nodes 3
and 4) where node 2's daemon.json is not JSON, so docker_daemon refuses to touch it and harden
fails there: the rollout stops after wave 2 with exit 3, naming the wave and the node; node 1 is
hardened and verified; nodes 3 and 4 are untouched (every file under /etc and /var/backups
byte-identical, no host lock, no backup directory), and the run record lists each wave."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Lab, lab_name, open_lab, report_of

BROKEN = '{"icc": false,\n'  # cut short: not JSON
FOOTPRINT = (
    "find /etc /var/backups -xdev -type f -exec sha256sum {} + | sort; "
    "ls -la /run/casemate /var/backups/casemate 2>&1 || true"
)


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, lab_name("waves"), 4) as lab:
        yield lab


def runs_of(lab: Lab, kind: str) -> list[Path]:
    return sorted((lab.state / "runs").glob(f"*-{kind}-*"))


def meta_of(run: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((run / "run.json").read_text())
    return loaded


def test_a_failed_second_wave_stops_the_rollout_and_later_waves_are_untouched(bed: Lab) -> None:
    first, second, *later = bed.nodes
    bed.sh(second, "cat > /etc/docker/daemon.json", stdin=BROKEN)
    before = {n: bed.sh(n, FOOTPRINT) for n in later}
    assert "No such file or directory" in before[later[0]]  # neither lock nor backups yet

    done = bed.casemate("harden", "-i", str(bed.inventory), "--waves", "1,2,100%", check=3)
    said = done.stdout + done.stderr
    assert f"wave 2 of 3: {second}" in said
    assert "rollout stopped" in done.stdout
    assert "wave 2 of 3 failed" in done.stdout
    assert second in done.stdout.split("rollout stopped", 1)[1]

    # the later waves' nodes: nothing ran there, nothing changed
    assert {n: bed.sh(n, FOOTPRINT) for n in later} == before

    # two harden runs (waves 1 and 2), one verify (wave 1: wave 2 failed harden)
    hardens, verifies = runs_of(bed, "harden"), runs_of(bed, "verify")
    assert [meta_of(r)["hosts"] for r in hardens] == [[first], [second]]
    assert len(verifies) == 1
    rollout = meta_of(hardens[-1])["rollout"]
    assert meta_of(hardens[0])["rollout"] | {"wave": 2} == rollout  # each run ends with it all
    assert (rollout["outcome"], rollout["stopped_at"], rollout["wave"]) == ("stopped", 2, 2)
    assert rollout["spec"] == "waves 1,2,100%"
    one, two, three = rollout["waves"]
    assert one["hosts"] == [first]
    assert (one["verdict"], one["failed"], one["verify"]) == ("passed", {}, "verified")
    assert one["harden_run"] == hardens[0].name
    assert one["verify_run"] == verifies[0].name
    assert two["hosts"] == [second]
    assert two["verdict"] == "failed"
    assert two["harden_run"] == hardens[1].name
    assert "is not valid JSON" in two["failed"][second]
    assert two["verify"] == "skipped: no host left to verify"
    assert three == {"wave": 3, "hosts": later, "verdict": "not_started"}
    assert second in rollout["why"]

    # wave 1's node: hardened, and its verify found nothing failing
    assert bed.daemon_json(first)["icc"] is False
    report = report_of(verifies[0])
    assert {h["name"] for h in report["hosts"]} == {first}
    failing = [
        r["control_id"]
        for r in report["results"]
        if r["automated"] and r["status"] in ("fail", "error")
    ]
    assert failing == []
    # wave 2's node: the file docker_daemon refused is as it was
    assert bed.sh(second, "cat /etc/docker/daemon.json") == BROKEN
