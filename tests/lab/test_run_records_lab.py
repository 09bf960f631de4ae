"""No secret in any run record or report, on a real node: an inventory with a become password and a
vault value (no vault password given: ansible-inventory never decrypts an inline one), a container
and an image whose environments hold secrets, /etc/environment holding one; then harden (with
--diff), verify, and the stored verify run
rendered again as JSON and JUnit. Every file under the state directory and the report directory is
searched for the secrets, and every mode under the state directory is checked."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from casemate.report.formats import FORMATS

from .conftest import Lab, lab_name, last_run, open_lab

LAB = lab_name("rec")
BECOME = "BecomePw-lab-4141"  # Ansible holds it for sudo; sudo as root never asks
# the lab's own inventory enters its nodes as root without become (docs/lab.md); this one becomes
# root through sudo with a password, as a site's inventory would, so the password is in play
SUDO = {"ansible_become": True, "ansible_become_method": "sudo", "ansible_become_password": BECOME}
VAULT_PLAIN = "VaultPlain-lab-5252"
CONTAINER_SECRET = "ContainerPw-lab-6363"  # in a running container's environment
# in the node's /etc/environment, under a name no rule knows: the file's content must not reach
# the record at all (docker_client reads and edits the file)
ENV_FILE_SECRET = "EnvFile-lab-8282"
IMAGE_SECRET = "ImageToken-lab-7474"  # in an image's ENV
ANSIBLE_VAULT = str(Path(sys.executable).parent / "ansible-vault")
INNER = """
set -e
mkdir -p /root/bb && cp /bin/busybox /root/bb/busybox
docker image inspect cm-secret-img >/dev/null 2>&1 || tar -C /root/bb -c . |
  docker import --change 'ENV API_TOKEN={image}' - cm-secret-img >/dev/null
docker rm -f cm-secret >/dev/null 2>&1 || true
docker run -d --name cm-secret -e DB_PASSWORD={container} --pull never cm-secret-img \
  /busybox sleep 3600 >/dev/null
"""


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, LAB, 1) as lab:
        yield lab


def vaulted(tmp_path: Path, name: str, plain: str) -> str:
    """`name: !vault |...`, made by ansible-vault with a password nobody keeps."""
    password = tmp_path / "vault-password"
    password.write_text("lab-vault-password-not-kept\n")
    done = subprocess.run(
        [ANSIBLE_VAULT, "encrypt_string", "--vault-password-file", str(password), plain,
         "--name", name],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    password.unlink()
    return done.stdout


def leaks(root: Path, secrets: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        text = path.read_bytes().decode("utf-8", "replace")
        hits = [s for s in secrets if s in text]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def loose_modes(root: Path) -> list[str]:
    bad = []
    for path in [root, *sorted(root.rglob("*"))]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if not path.is_symlink() and mode != (0o700 if path.is_dir() else 0o600):
            bad.append(f"{path.relative_to(root)} {mode:o}")
    return bad


def test_run_records_and_reports_hold_no_secret(bed: Lab, tmp_path: Path) -> None:
    node = bed.nodes[0]
    site = tmp_path / "site"
    (site / "host_vars").mkdir(parents=True)
    inventory = bed.inventory_with(site / "inventory.yml", {node: SUDO})
    block = vaulted(tmp_path, "site_db_secret", VAULT_PLAIN)
    (site / "host_vars" / f"{node}.yml").write_text(block)
    cipher = tuple(line.strip() for line in block.splitlines()[2:])  # the ciphertext's lines
    bed.sh(node, f"echo SITE_NOTE={ENV_FILE_SECRET} >> /etc/environment")
    env_file = base64.b64encode(bed.sh(node, "cat /etc/environment").encode()).decode()
    secrets = (BECOME, VAULT_PLAIN, CONTAINER_SECRET, IMAGE_SECRET, ENV_FILE_SECRET, env_file, *cipher)  # fmt: skip
    reports = tmp_path / "reports"

    hardened = bed.casemate(
        "harden", "-i", str(inventory), "--level", "2", "--diff"
    )  # 2: cis_docker_4_5
    assert hardened.returncode == 0, hardened.stdout + hardened.stderr
    bed.sh(node, INNER.format(image=IMAGE_SECRET, container=CONTAINER_SECRET))
    verified = bed.casemate("verify", "-i", str(inventory), "--report-dir", str(reports))
    assert verified.returncode in (0, 1), (
        verified.stdout + verified.stderr
    )  # 1: the container's findings
    as_json = bed.casemate("report", "latest-verify", "--format", "json")
    as_junit = bed.casemate("report", "latest-verify", "--format", "junit")
    assert as_json.returncode == verified.returncode
    assert as_junit.returncode == verified.returncode

    # the secrets reached casemate, and the evidence that would have shown them is there
    stored = json.loads((last_run(bed.state, "verify") / "inventory.json").read_text())
    hostvars = stored["_meta"]["hostvars"][node]
    assert hostvars["ansible_become_password"] == "<redacted: secret>"
    assert hostvars["ansible_become"] is True
    assert hostvars["site_db_secret"] == "<redacted: vault value>"
    report = json.loads(as_json.stdout)
    evidence = json.dumps([h["observations"] for h in report["hosts"]])
    assert "cm-secret" in evidence and "DB_PASSWORD=<redacted: secret>" in evidence
    assert "API_TOKEN=<redacted: secret>" in evidence

    printed = {
        "harden": hardened.stdout + hardened.stderr,
        "verify": verified.stdout + verified.stderr,
        "report --format json": as_json.stdout,
        "report --format junit": as_junit.stdout,
    }
    assert {k: [s for s in secrets if s in v] for k, v in printed.items() if any(s in v for s in secrets)} == {}  # fmt: skip
    assert leaks(bed.state, secrets) == {}
    # every report format was written, and none holds a secret
    assert sorted(p.name for p in reports.iterdir()) == sorted(f.filename for f in FORMATS)
    assert leaks(reports, secrets) == {}
    assert loose_modes(bed.state) == []
    assert bed.inventory.is_relative_to(bed.state)  # the lab's own inventory was checked too
    assert {stat.S_IMODE(p.stat().st_mode) for p in reports.iterdir()} == {0o600}
    assert stat.S_IMODE(reports.stat().st_mode) == 0o700  # made by casemate
