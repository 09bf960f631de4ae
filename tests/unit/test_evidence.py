"""Signed evidence bundles: a real verify run (judged on a recorded probe answer) and a harden run
are exported, signed, and checked; every way of tampering is told apart by its exit code and
named; bad input is one line, exit 2. The envelope is standard DSSE: openssl checks it too."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tarfile
from collections.abc import Callable
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from trestle.oscal.assessment_results import AssessmentResults

from casemate import __version__, cli
from casemate.catalog.loader import default_catalog_dir, load_catalog
from casemate.checks import builtin_kinds
from casemate.evidence import bundle, dsse
from casemate.evidence.keys import keyid, load_private, load_public
from casemate.harden import HardenPlan, run_harden
from casemate.inventory import Inventory
from casemate.rundir import RunDir, new_run, now_utc

from .test_report_formats import SARIF_SCHEMA
from .test_verify_record import verify

Files = dict[str, bytes]


def casemate(state: Path, *args: str) -> int:
    with pytest.raises(SystemExit) as done:
        cli.main(["--state-dir", str(state), *args])
    return int(done.value.code or 0)


def one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("casemate: error: "), err
    for word in words:
        assert word in err, err
    return err


def harden_run(state: Path, catalog_digest: str) -> RunDir:
    """A harden run as run_harden leaves it: run.json and ansible-runner's artifacts."""
    run = new_run(state, "harden")
    run.write_json(
        "run.json",
        {"kind": "harden", "state": "finished", "outcome": "succeeded", "hosts": ["n1"],
         "started": now_utc().isoformat(),
         "catalog": {"digest": catalog_digest, "benchmarks": {}}},
    )  # fmt: skip
    event = {"event": "runner_on_ok", "event_data": {"host": "n1", "task": "Make x"}}
    run.write_json("ansible/artifacts/abc/job_events/1-x.json", event)
    run.write_text("ansible/artifacts/abc/stdout", "PLAY RECAP n1 ok=1\n")
    return run


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state directory holding a harden run, then a verify run, and a key pair."""
    digest = load_catalog(None, builtin_kinds()).digest
    harden_run(tmp_path / "state", digest)
    verify(tmp_path, ["n1"])  # tmp_path/state/runs/...-verify-...
    assert casemate(tmp_path / "state", "evidence", "keygen") == 0
    return tmp_path / "state"


def export(state: Path, out: Path, *extra: str) -> int:
    key = str(state / "keys" / "evidence.key")
    return casemate(
        state, "evidence", "export", "latest-verify", "--harden", "latest-harden",
        "--key", key, "-o", str(out), *extra,
    )  # fmt: skip


def check(state: Path, path: Path, pub: Path | None = None) -> int:
    return casemate(
        state, "evidence", "verify", str(path), "--pub", str(pub or state / "keys/evidence.pub")
    )


def members(path: Path) -> Files:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def repack(path: Path, files: Files) -> None:
    """A tar.gz of `files` written by plain tarfile (not by casemate's writer)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_pae_is_the_dsse_spec_vector() -> None:
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_signed_bundle_verifies_and_holds_the_runs_catalog_and_versions(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "evidence.tar.gz"
    assert export(state, out) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert check(state, out) == 0
    said = capsys.readouterr().out
    assert "verified:" in said and "verify, succeeded" in said

    files = members(out)
    verify_run = next((state / "runs").glob("*-verify-*"))
    for rel in ("run.json", "inventory.json", "report.json", "junit.xml", "observations/n1.json"):
        assert files[f"run/{rel}"] == (verify_run / rel).read_bytes(), rel
    assert "harden/ansible/artifacts/abc/job_events/1-x.json" in files
    assert "harden/ansible/artifacts/abc/stdout" in files
    shipped = sorted(p.name for p in (default_catalog_dir()).glob("*.yml"))
    assert sorted(n.removeprefix("catalog/") for n in files if n.startswith("catalog/")) == shipped
    ran_with = json.loads(files["versions.json"])
    assert {"casemate", "python", "ansible-core", "collections"} <= set(ran_with)
    assert "community.docker" in ran_with["collections"]

    # the manifest is an in-toto Statement whose subjects are every other file, and it is
    # exactly what the DSSE envelope signs
    statement = json.loads(files["manifest.json"])
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == bundle.PREDICATE_TYPE
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    others = {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    del others["manifest.json"], others["envelope.dsse.json"]
    assert subjects == others
    predicate = statement["predicate"]
    assert predicate["run"]["kind"] == "verify" and predicate["run"]["outcome"] == "succeeded"
    assert predicate["harden"]["kind"] == "harden"
    assert predicate["catalog"]["digest"] == load_catalog(None, builtin_kinds()).digest
    assert predicate["versions_from"] == "run"  # verify recorded what it ran with
    envelope = json.loads(files["envelope.dsse.json"])
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(envelope["payload"]) == files["manifest.json"]
    pub = load_public(state / "keys" / "evidence.pub")
    assert envelope["signatures"][0]["keyid"] == keyid(pub)


def test_two_exports_of_one_run_are_byte_identical(state: Path, tmp_path: Path) -> None:
    assert export(state, tmp_path / "a.tar.gz") == 0
    assert export(state, tmp_path / "b.tar.gz") == 0
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        assert {(m.mtime, m.uid, m.gid, m.mode, m.type) for m in tar} == {
            (0, 0, 0, 0o600, tarfile.REGTYPE)
        }


REPORTS = {
    "json": "reports/report.json",
    "junit": "reports/junit.xml",
    "html": "reports/report.html",
    "oscal": "reports/assessment-results.json",
    "sarif": "reports/report.sarif",
    "csv": "reports/report.csv",
}


def test_the_bundle_holds_every_report_format_each_parseable(state: Path, tmp_path: Path) -> None:
    """HTML, OSCAL, SARIF and CSV beside report.json and JUnit, rendered from the run's own
    report.json, listed in the signed manifest and the predicate, each read back by what reads
    that format: OSCAL through trestle, SARIF against the vendored 2.1.0 schema."""
    out = tmp_path / "evidence.tar.gz"
    assert export(state, out) == 0
    files = members(out)
    statement = json.loads(files["manifest.json"])
    subjects = {s["name"] for s in statement["subject"]}
    assert set(REPORTS.values()) <= subjects
    assert statement["predicate"]["reports"] == sorted(REPORTS.values())
    assert check(state, out) == 0

    verify_run = next((state / "runs").glob("*-verify-*"))
    doc = json.loads((verify_run / "report.json").read_text())
    # the run's own report and JUnit, rendered again, are the bytes the run wrote
    assert files[REPORTS["json"]] == (verify_run / "report.json").read_bytes()
    assert files[REPORTS["junit"]] == (verify_run / "junit.xml").read_bytes()
    oscal = json.loads(files[REPORTS["oscal"]])
    ar = AssessmentResults.parse_obj(oscal["assessment-results"])
    assert len(ar.results[0].observations) == len(doc["results"])
    assert ar.results[0].start.isoformat() == doc["started"]
    log = json.loads(files[REPORTS["sarif"]])
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    assert log["runs"][0]["automationDetails"]["id"] == f"casemate/{doc['run_id']}"
    rows = list(csv.DictReader(io.StringIO(files[REPORTS["csv"]].decode(), newline="")))
    assert [(r["host"], r["control_id"], r["status"]) for r in rows] == [
        (r["host"], r["control_id"], r["status"]) for r in doc["results"]
    ]
    results: list[str] = []

    class Rows(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "tr" and dict(attrs).get("class") == "result":
                results.append(str(dict(attrs).get("data-status")))

    Rows().feed(files[REPORTS["html"]].decode())
    assert sorted(results) == sorted(r["status"] for r in doc["results"])


def test_a_run_without_a_report_bundles_no_rendering(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "harden.tar.gz"
    assert casemate(state, "evidence", "export", "latest-harden", "-o", str(out)) == 0
    files = members(out)
    assert not [n for n in files if n.startswith("reports/")]
    assert json.loads(files["manifest.json"])["predicate"]["reports"] is None


def test_a_stored_report_casemate_cannot_render_is_one_line_exit_2(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    verify_run = next((state / "runs").glob("*-verify-*"))
    doc = json.loads((verify_run / "report.json").read_text())
    del doc["results"][0]["status"]
    (verify_run / "report.json").write_text(json.dumps(doc))
    out = tmp_path / "e.tar.gz"
    capsys.readouterr()
    assert export(state, out) == 2
    one_line_error(capsys, "report.json: not a report casemate can render", "'status'")
    assert not out.exists()


def exporting(state: Path, out: Path, hash_seed: str) -> None:
    """`casemate evidence export` in a process of its own (its own clock, hash seed, imports)."""
    argv = [sys.executable, "-m", "casemate.cli", "--state-dir", str(state), "evidence", "export",
            "latest-verify", "--harden", "latest-harden", "--key",
            str(state / "keys" / "evidence.key"), "-o", str(out)]  # fmt: skip
    env = os.environ | {"PYTHONHASHSEED": hash_seed}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr


def test_one_run_exported_by_two_processes_gives_byte_identical_bundles(
    state: Path, tmp_path: Path
) -> None:
    """Every report format in it depends on the run alone: no render time, no random or
    clock-made id, no set order (two hash seeds)."""
    exporting(state, tmp_path / "a.tar.gz", "1")
    exporting(state, tmp_path / "b.tar.gz", "2")
    a, b = members(tmp_path / "a.tar.gz"), members(tmp_path / "b.tar.gz")
    assert set(REPORTS.values()) <= set(a)
    assert [n for n in sorted(a.keys() | b.keys()) if a.get(n) != b.get(n)] == []
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def edit_html_byte(files: Files) -> None:
    data = bytearray(files["reports/report.html"])
    data[len(data) // 2] ^= 0x01
    files["reports/report.html"] = bytes(data)


def edit_report_byte(files: Files) -> None:
    data = bytearray(files["run/report.json"])
    data[len(data) // 2] ^= 0x01
    files["run/report.json"] = bytes(data)


def add_file(files: Files) -> None:
    files["run/observations/n9.json"] = b"{}\n"


def remove_file(files: Files) -> None:
    del files["run/junit.xml"]


def edit_manifest(files: Files) -> None:
    files["manifest.json"] = files["manifest.json"].replace(b"junit.xml", b"junit.xmL")


def swap_signature(files: Files) -> None:
    """The signature replaced by the same key's valid signature of another statement."""
    envelope = json.loads(files["envelope.dsse.json"])
    envelope["signatures"][0]["sig"] = OTHER_SIGNATURE[0]
    files["envelope.dsse.json"] = json.dumps(envelope).encode()


def edit_signed_statement(files: Files) -> None:
    """A file changed and its digest changed in the signed payload to match: the signature no
    longer verifies."""
    edit_report_byte(files)
    statement = json.loads(files["manifest.json"])
    for subject in statement["subject"]:
        if subject["name"] == "run/report.json":
            subject["digest"]["sha256"] = hashlib.sha256(files["run/report.json"]).hexdigest()
    payload = json.dumps(statement).encode()
    envelope = json.loads(files["envelope.dsse.json"])
    envelope["payload"] = base64.b64encode(payload).decode()
    files["envelope.dsse.json"] = json.dumps(envelope).encode()
    files["manifest.json"] = payload


def unsign(files: Files) -> None:
    del files["envelope.dsse.json"]


OTHER_SIGNATURE: list[str] = []  # the key's signature of another statement, made per test


@pytest.mark.parametrize(
    ("tamper", "code", "words"),
    [
        (edit_report_byte, 5, ("changed run/report.json",)),
        (edit_html_byte, 5, ("changed reports/report.html",)),
        (add_file, 5, ("added run/observations/n9.json",)),
        (remove_file, 5, ("removed run/junit.xml",)),
        (edit_manifest, 5, ("changed manifest.json",)),
        (swap_signature, 4, ("bad signature", "does not verify")),
        (edit_signed_statement, 4, ("bad signature",)),
        (unsign, 4, ("not signed",)),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_each_way_of_tampering_is_detected(
    state: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    tamper: Callable[[Files], None],
    code: int,
    words: tuple[str, ...],
) -> None:
    out = tmp_path / "evidence.tar.gz"
    assert export(state, out) == 0
    files = members(out)
    repack(tmp_path / "plain.tar.gz", files)  # repacked untouched by another writer: still fine
    assert check(state, tmp_path / "plain.tar.gz") == 0
    key = load_private(state / "keys" / "evidence.key")
    OTHER_SIGNATURE[:] = [dsse.sign(dsse.IN_TOTO, b"{}", key)["signatures"][0]["sig"]]
    tamper(files)
    repack(out, files)
    capsys.readouterr()
    assert check(state, out) == code
    one_line_error(capsys, *words)


def test_a_bundle_signed_by_another_key_is_a_wrong_key(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "evidence.tar.gz"
    assert export(state, out) == 0
    assert casemate(state, "evidence", "keygen", "-o", str(tmp_path / "other")) == 0
    capsys.readouterr()
    assert check(state, out, tmp_path / "other" / "evidence.pub") == 6
    one_line_error(capsys, "wrong key", "not by the given key")


def rsa_pem(private: bool) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if private:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (lambda: rsa_pem(False), ("--pub", "a RSA key, not an Ed25519 one")),
        (lambda: b"garbage\n", ("--pub", "not a PEM public key")),
    ],
    ids=["rsa", "garbage"],
)
def test_verify_with_a_key_of_the_wrong_type_is_one_line_exit_2(
    state: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: Callable[[], bytes],
    words: tuple[str, ...],
) -> None:
    out = tmp_path / "evidence.tar.gz"
    assert export(state, out) == 0
    (tmp_path / "bad.pub").write_bytes(content())
    capsys.readouterr()
    assert check(state, out, tmp_path / "bad.pub") == 2
    one_line_error(capsys, *words)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (lambda: rsa_pem(True), "a RSA key, not an Ed25519 one"),
        (lambda: b"garbage\n", "not a PEM private key"),
        (lambda: rsa_pem(False), "not a PEM private key"),  # a public key given as --key
    ],
    ids=["rsa", "garbage", "public"],
)
def test_export_with_a_key_of_the_wrong_type_is_one_line_exit_2_and_writes_nothing(
    state: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: Callable[[], bytes],
    words: str,
) -> None:
    (tmp_path / "bad.key").write_bytes(content())
    out = tmp_path / "evidence.tar.gz"
    capsys.readouterr()
    assert casemate(state, "evidence", "export", "latest-verify", "--key",
                    str(tmp_path / "bad.key"), "-o", str(out)) == 2  # fmt: skip
    one_line_error(capsys, "--key", words)
    assert not out.exists()


def link_member(path: Path) -> None:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("run/report.json")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        tar.addfile(info)


def dotdot_member(path: Path) -> None:
    repack(path, {"../escape.json": b"{}"})


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_text("not a tar at all\n"), ("not a tar.gz bundle",)),
        (lambda p: p.write_bytes(b"\x1f\x8b\x08\x00garbage"), ("not a tar.gz bundle",)),
        (link_member, ("run/report.json is a link",)),
        (dotdot_member, ("unsafe member name",)),
    ],
    ids=["text", "broken-gzip", "link", "dotdot"],
)
def test_a_bundle_that_is_not_a_safe_tar_is_one_line_exit_2(
    state: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], None],
    words: tuple[str, ...],
) -> None:
    path = tmp_path / "bad.tar.gz"
    make(path)
    capsys.readouterr()
    assert check(state, path) == 2
    one_line_error(capsys, *words)


def test_keygen_never_overwrites_and_keeps_the_private_key_private(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = state / "keys"
    before = (keys / "evidence.key").read_bytes()
    assert stat.S_IMODE((keys / "evidence.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((keys / "evidence.pub").stat().st_mode) == 0o644
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert (
        b"BEGIN PRIVATE KEY" in before
        and b"BEGIN PUBLIC KEY" in (keys / "evidence.pub").read_bytes()
    )
    capsys.readouterr()
    assert casemate(state, "evidence", "keygen") == 2
    one_line_error(capsys, "already exists")
    assert (keys / "evidence.key").read_bytes() == before


KEY_BLOCK = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("notes.txt", KEY_BLOCK, "holds a private key"),
        ("observations/n2.json", json.dumps({"env": ["X=1", KEY_BLOCK]}), "holds a private key"),
        (
            "observations/n3.json",
            json.dumps({"argv": "--db-password=b3BlbnNzaC1y"}),
            "holds a secret value",
        ),
        (
            "observations/n4.json",
            json.dumps({"proxy": "http://u:b3BlbnNzaC1y@proxy:3128"}),
            "holds a secret value",
        ),
    ],
    ids=["key-in-text", "key-in-json", "assignment-in-json", "url-password"],
)
def test_export_refuses_a_run_file_holding_a_secret(
    state: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    *,
    name: str,
    content: str,
    words: str,
) -> None:
    """The last guard: a file that slipped past redaction is never bundled, and the message
    names the file, never the secret."""
    verify_run = next((state / "runs").glob("*-verify-*"))
    (verify_run / name).write_text(content)
    out = tmp_path / "evidence.tar.gz"
    capsys.readouterr()
    assert export(state, out) == 2
    err = one_line_error(capsys, f"not exported: run/{name}: {words}")
    assert "b3BlbnNzaC1y" not in err
    assert not out.exists()


def test_export_refuses_a_catalog_other_than_the_one_the_run_used(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = tmp_path / "catalog"
    shutil.copytree(default_catalog_dir(), changed)
    (changed / "docker.yml").write_text((changed / "docker.yml").read_text() + "\n# edited\n")
    capsys.readouterr()
    assert export(state, tmp_path / "e.tar.gz") == 0  # the shipped catalog is the one it used
    capsys.readouterr()
    code = casemate(state, "--catalog", str(changed), "evidence", "export", "latest-verify",
                    "-o", str(tmp_path / "f.tar.gz"))  # fmt: skip
    assert code == 2
    one_line_error(capsys, "pass --catalog with the catalog the run used")


def test_harden_must_be_a_harden_run_that_came_first(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "e.tar.gz"
    capsys.readouterr()
    assert casemate(state, "evidence", "export", "latest-verify", "--harden", "latest-verify",
                    "-o", str(out)) == 2  # fmt: skip
    one_line_error(capsys, "not a harden run")
    later = harden_run(state, "x")
    assert casemate(state, "evidence", "export", "latest-verify", "--harden", later.id,
                    "-o", str(out)) == 2  # fmt: skip
    one_line_error(capsys, "started after verify run")
    assert not out.exists()


def test_the_waiver_file_a_run_names_is_bundled(state: Path, tmp_path: Path) -> None:
    waivers = tmp_path / "casemate-waivers.yml"
    waivers.write_text("- controls: [cis_docker_2_2]\n  reason: accepted\n")
    verify_run = RunDir(next((state / "runs").glob("*-verify-*")))
    meta = verify_run.read_json("run.json")
    verify_run.write_json("run.json", meta | {"waivers": {"file": str(waivers), "used": 1}})
    out = tmp_path / "e.tar.gz"
    assert export(state, out) == 0
    files = members(out)
    assert files["waivers/casemate-waivers.yml"] == waivers.read_bytes()
    assert json.loads(files["manifest.json"])["predicate"]["waivers"] == {
        "named": str(waivers),
        "bundled": "waivers/casemate-waivers.yml",
    }
    waivers.unlink()  # gone since the run: the bundle says so, and still holds the run record
    assert export(state, out) == 0
    files = members(out)
    assert not [n for n in files if n.startswith("waivers/")]
    assert json.loads(files["manifest.json"])["predicate"]["waivers"]["bundled"] is None


def test_the_waiver_file_of_the_harden_run_is_bundled_too(state: Path, tmp_path: Path) -> None:
    """Harden skipped controls by its waivers; the verify after it may have used another file
    (or none): both are evidence, each under its own name."""
    used = tmp_path / "casemate-waivers.yml"
    used.write_text("- controls: [cis_docker_2_2]\n  reason: accepted at harden\n")
    harden = RunDir(next((state / "runs").glob("*-harden-*")))
    meta = harden.read_json("run.json")
    harden.write_json("run.json", meta | {"waivers": {"file": str(used), "waived": {}}})
    out = tmp_path / "e.tar.gz"
    assert export(state, out) == 0
    assert check(state, out) == 0
    files = members(out)
    assert files["waivers/harden/casemate-waivers.yml"] == used.read_bytes()
    predicate = json.loads(files["manifest.json"])["predicate"]
    assert predicate["harden"]["waivers"] == {
        "named": str(used),
        "bundled": "waivers/harden/casemate-waivers.yml",
    }
    assert predicate["waivers"] is None  # the verify run applied none


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_another_tool_checks_the_envelope_openssl_and_sha256sum(
    state: Path, tmp_path: Path
) -> None:
    """docs/evidence.md's recipe: PAE built by hand, the signature checked by openssl, every
    subject by sha256sum."""
    out = tmp_path / "e.tar.gz"
    assert export(state, out) == 0
    unpacked = tmp_path / "x"
    unpacked.mkdir()
    with tarfile.open(out) as tar:
        tar.extractall(unpacked, filter="data")
    envelope = json.loads((unpacked / "envelope.dsse.json").read_text())
    payload = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    (tmp_path / "pae").write_bytes(b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload))
    (tmp_path / "sig").write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
    pub = state / "keys" / "evidence.pub"
    openssl = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin"]
    good = subprocess.run([*openssl, "-in", str(tmp_path / "pae"), "-sigfile", str(tmp_path / "sig")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert good.returncode == 0, good.stdout + good.stderr
    (tmp_path / "pae").write_bytes(
        (tmp_path / "pae").read_bytes().replace(b"report.json", b"report.jsoN", 1)
    )
    bad = subprocess.run([*openssl, "-in", str(tmp_path / "pae"), "-sigfile", str(tmp_path / "sig")],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode != 0
    sums = "".join(
        f"{s['digest']['sha256']}  {s['name']}\n" for s in json.loads(payload)["subject"]
    )
    checked = subprocess.run(["sha256sum", "--check", "--quiet"], input=sums, cwd=unpacked,
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pub), "-outform", "DER"],
                         capture_output=True, check=True).stdout  # fmt: skip
    assert envelope["signatures"][0]["keyid"] == hashlib.sha256(der).hexdigest()


def test_a_flag_set_to_true_in_a_harden_diff_is_no_secret(state: Path, tmp_path: Path) -> None:
    """The guard judges a JSON file string by string, as the run's redactor did: a diff line
    `--enable-bootstrap-token-auth=true` inside an event is a setting, not a secret (judged on
    the raw JSON text, the value would run on into the escaped newline)."""
    harden = RunDir(next((state / "runs").glob("*-harden-*")))
    diff = "     - --enable-bootstrap-token-auth=true\n+    - --encryption-provider-config=/e\n"
    event = {"event": "runner_on_ok", "event_data": {"res": {"diff": [{"after": diff}]}}}
    harden.write_json("ansible/artifacts/abc/job_events/2-y.json", event)
    assert (harden.path / "ansible/artifacts/abc/job_events/2-y.json").read_text().count("=true\\n")
    assert export(state, tmp_path / "e.tar.gz") == 0


def test_a_flag_in_an_observation_rendered_into_a_report_is_no_secret(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kube-apiserver manifest observed on a node shows `--enable-bootstrap-token-auth=true`
    on one line of a multi-line string; the HTML page shows that string JSON-escaped. The
    reports are judged where they come from (run/report.json, string by string), so the bundle
    is exported; a real secret in report.json is still refused."""
    verify_run = RunDir(next((state / "runs").glob("*-verify-*")))
    doc = verify_run.read_json("report.json")
    manifest = "    - --enable-bootstrap-token-auth=true\n    - --encryption-provider-config=/e\n"
    doc["hosts"][0]["observations"]["file:/etc/kubernetes/manifests/kube-apiserver.yaml"] = {
        "content": manifest
    }
    verify_run.write_json("report.json", doc)
    out = tmp_path / "e.tar.gz"
    assert export(state, out) == 0
    assert b"--enable-bootstrap-token-auth=true\\n" in members(out)["reports/report.html"]
    doc["hosts"][0]["observations"]["file:/etc/site.env"] = {"content": "DB_PASSWORD=b3BlbnNz\n"}
    (verify_run.path / "report.json").write_text(json.dumps(doc))  # past the run's redactor
    capsys.readouterr()
    assert export(state, out) == 2
    one_line_error(capsys, "not exported: run/report.json: holds a secret value")


def test_runs_record_the_versions_they_ran_with(tmp_path: Path) -> None:
    """verify and harden keep what they ran with in run.json, so a bundle exported later
    carries the run's versions, not the exporter's."""
    catalog = load_catalog(None, builtin_kinds())
    run_dir, _ = verify(tmp_path, ["n1"])
    verified = json.loads((run_dir / "run.json").read_text())["versions"]
    inventory = Inventory(Path("site/inventory.yml"), {"docker_hosts": {"hosts": ["n1"]}})
    run = new_run(tmp_path / "state", "harden")
    entries = [e for e in catalog.entries if e.id == "cis_docker_2_2"]
    run_harden(  # n1 did not answer before the play: no task runs, Ansible is not started
        run=run, content=Path(), catalog=catalog, inventory=inventory,
        harden_plan=HardenPlan(["n1"], ["cis_docker_2_2"], entries), level=1,
        profile="standard", check=False, diff=False, strategy="linear", forks=1,
        command=["casemate", "harden"], on_event=lambda e: None, unreachable={"n1": "down"},
    )  # fmt: skip
    hardened = run.read_json("run.json")["versions"]
    for ran_with in (verified, hardened):
        assert ran_with["casemate"] == __version__
        assert ran_with["ansible-core"] == metadata.version("ansible-core")
        assert ran_with["python"] == platform.python_version()
        assert ran_with["collections"]["community.docker"] == _collection("community", "docker")


def _collection(namespace: str, name: str) -> str:
    import ansible_collections  # the collections installed beside Ansible

    manifest = Path(next(iter(ansible_collections.__path__)), namespace, name, "MANIFEST.json")
    return str(json.loads(manifest.read_text())["collection_info"]["version"])
