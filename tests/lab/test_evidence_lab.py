"""A signed evidence bundle of a real run holds no secret and verifies. On a kubeadm-style node
whose inventory holds the lab's SSH test password (as connection and become password) and a
private key, the encryption-at-rest controls are hardened with --diff (a fresh aescbc key is
written on the node), then verified; the verify run and the harden it followed are exported,
signed and checked with `casemate evidence verify` (exit 0). The run directories and the unpacked
bundle are then searched for `PRIVATE KEY`, the SSH password, the encryption key, `aescbc:` and
`secret:` (the key's lines in an EncryptionConfiguration). `aescbc` alone is not searched for: the
catalog and the report name the provider, never a key."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .conftest import Lab, lab_name, last_run, open_lab
from .ssh import PASSWORD

LAB = lab_name("evid")
CONTROLS = "cis_k8s_1_2_27,cis_k8s_1_2_28"  # --encryption-provider-config, a strong provider
KEY_FILE = "/etc/kubernetes/encryption/encryption-config.yaml"


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with open_lab(tmp_path_factory, LAB, 1, "--profile", "k8s") as lab:
        yield lab


def private_key_pem() -> str:
    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def hits(root: Path, needles: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        text = path.read_bytes().decode("utf-8", "replace")
        seen = [n for n in needles if n in text]
        if seen:
            found[str(path.relative_to(root))] = seen
    return found


def test_bundle_of_a_real_run_verifies_and_holds_no_secret(bed: Lab, tmp_path: Path) -> None:
    node = bed.nodes[0]
    inventory = yaml.safe_load(bed.inventory.read_text())
    inventory["all"]["vars"] |= {
        "ansible_password": PASSWORD,  # the docker connection ignores it
        # the lab's inventory enters as root without become (docs/lab.md); this one becomes root
        # through sudo with a password, as a site's would (sudo as root never asks for it)
        "ansible_become": True,
        "ansible_become_method": "sudo",
        "ansible_become_password": PASSWORD,
        "site_tls_key": private_key_pem(),
    }
    site = tmp_path / "inventory.yml"
    site.write_text(yaml.safe_dump(inventory))

    bed.casemate("harden", "-i", str(site), "--controls", CONTROLS, "--diff", check=0)
    verified = bed.casemate("verify", "-i", str(site), "--controls", CONTROLS)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    keys = tmp_path / "keys"
    bed.casemate("evidence", "keygen", "-o", str(keys), check=0)
    out = tmp_path / "evidence.tar.gz"
    exported = bed.casemate(
        "evidence", "export", "latest-verify", "--harden", "latest-harden",
        "--key", str(keys / "evidence.key"), "-o", str(out), check=0,
    )  # fmt: skip
    assert str(out) in exported.stdout
    checked = bed.casemate(
        "evidence", "verify", str(out), "--pub", str(keys / "evidence.pub"), check=0
    )
    assert "verified:" in checked.stdout

    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with tarfile.open(out) as tar:
        tar.extractall(unpacked, filter="data")
    # what the bundle must hold: the harden's events, the probe's answer, the reports
    assert list(unpacked.glob("harden/ansible/artifacts/*/job_events/*.json"))
    assert (unpacked / "run" / "observations" / f"{node}.json").is_file()
    report = json.loads((unpacked / "run" / "report.json").read_text())
    assert {r["control_id"]: r["status"] for r in report["results"]} == {
        "cis_k8s_1_2_27": "pass",
        "cis_k8s_1_2_28": "pass",
    }
    # every report format, rendered from that report (the secrets search below covers them)
    rendered = ("report.json", "junit.xml", "report.html", "assessment-results.json",
                "report.sarif", "report.csv")  # fmt: skip
    assert sorted(p.name for p in (unpacked / "reports").iterdir()) == sorted(rendered)
    assert (unpacked / "reports" / "report.json").read_bytes() == (
        unpacked / "run" / "report.json"
    ).read_bytes()
    # the secrets reached casemate, and the node holds the key the records must not show
    stored = json.loads((unpacked / "run" / "inventory.json").read_text())
    hostvars = stored["_meta"]["hostvars"][node]
    assert hostvars["ansible_become_password"] == "<redacted: secret>"
    assert hostvars["ansible_become"] is True
    assert hostvars["site_tls_key"].strip() == "<redacted: private key>"
    key = bed.sh(node, f"sed -n 's/^ *secret: //p' {KEY_FILE}").split()
    assert len(key) == 1 and len(key[0]) == 44, "one base64 32-byte key"

    needles = ("PRIVATE KEY", PASSWORD, key[0], "aescbc:", "secret:")
    assert hits(unpacked, needles) == {}
    assert hits(last_run(bed.state, "verify"), needles) == {}
    assert hits(last_run(bed.state, "harden"), needles) == {}
    printed = exported.stdout + exported.stderr + checked.stdout + checked.stderr
    assert [n for n in needles if n in printed] == []
