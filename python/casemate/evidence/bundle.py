"""Evidence bundles: build one from stored runs, write it as a deterministic tar.gz, read one back
safely, and check it against its signed manifest.

Layout (docs/evidence.md):

    manifest.json        the in-toto Statement v1: one subject (name, sha256) per other file,
                         and the run's meta as its predicate; the exact bytes the envelope signs
    envelope.dsse.json   the DSSE envelope (payloadType application/vnd.in-toto+json, Ed25519);
                         absent in an unsigned bundle
    run/...              every file of the run directory (report.json, junit.xml, observations,
                         the redacted inventory, run.json)
    reports/...          a verify run's report in every format (report/formats.py), rendered from
                         run/report.json at export: the same run gives the same bytes
    harden/...           every file of the harden run it followed (ansible-runner's events)
    catalog/*.yml        the catalog the run used (its digest is the run's)
    versions.json        casemate, Python, ansible-core, ansible-runner, the collections
    waivers/NAME         the waiver file run.json names, when there is one
    waivers/harden/NAME  the waiver file the harden run's run.json names, when there is one
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from casemate import private
from casemate.catalog.loader import catalog_digest, catalog_files
from casemate.errors import (
    BadInputError,
    EvidenceKeyError,
    EvidenceSignatureError,
    EvidenceTamperedError,
)
from casemate.evidence import dsse
from casemate.evidence.keys import keyid
from casemate.evidence.versions import versions
from casemate.harden import run_outcome
from casemate.redact import KEY_MARKER, MARKER, VAULT_MARKER, Redactor
from casemate.report import changes, document, formats
from casemate.rundir import RunDir

REPORTS = "reports"  # every report format, rendered from the run's report.json
MANIFEST = "manifest.json"
ENVELOPE = "envelope.dsse.json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://casemate.dev/evidence/v1"
MEMBER_MODE = 0o600  # a bundle holds a redacted inventory: unpacked, only its owner reads it
MAX_SIGNED_BYTES = 64 * 1024 * 1024  # manifest and envelope are read whole; nothing else is


@dataclass(frozen=True, slots=True)
class Exported:
    path: Path
    files: int  # subjects in the manifest
    keyid: str | None  # None: unsigned


@dataclass(frozen=True, slots=True)
class Checked:
    keyid: str
    files: int
    predicate: Mapping[str, Any]


# --- building -----------------------------------------------------------------------------------


def _canonical(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _tree(prefix: str, root: Path) -> dict[str, bytes]:
    """Every regular file under `root` (never a link, a fifo or a socket), as `prefix/relative`."""
    out: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_symlink() and path.is_file():
            out[f"{prefix}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return out


def _waiver_file(meta: Mapping[str, Any]) -> str | None:
    """The waiver file a run record names, if any: `waivers` as a path, or a mapping with a
    `file`/`path`/`source` path."""
    named = meta.get("waivers")
    if isinstance(named, Mapping):
        named = next(
            (named[k] for k in ("file", "path", "source") if isinstance(named.get(k), str)), None
        )
    return named if isinstance(named, str) and named else None


def _waivers(files: dict[str, bytes], meta: Mapping[str, Any], where: str) -> dict[str, Any] | None:
    """The waiver file a run record names, put in `files` under `where/` when it is still there
    (read now: a relative path from here); what the predicate says of it, or None."""
    named = _waiver_file(meta)
    if named is None:
        return None
    path = Path(named)
    bundled = f"{where}/{path.name}" if path.is_file() else None
    if bundled is not None:
        files[bundled] = path.read_bytes()
    return {"named": named, "bundled": bundled}


def _run_summary(run: RunDir, meta: Mapping[str, Any]) -> dict[str, Any]:
    # gate: the --fail-on gate verify applied and the exit status it gave (gate.Gate.record)
    keys = ("kind", "started", "finished", "inventory", "hosts", "level", "profile", "summary",
            "gate")  # fmt: skip
    return {"id": run.id, "outcome": run_outcome(meta)} | {k: meta[k] for k in keys if k in meta}


def _reports(run: RunDir) -> dict[str, bytes]:
    """A verify run's report in every format, each by its one renderer, from the run's own
    report.json (and the changes since the previous run beside it, as `verify --report-dir`
    renders them); nothing for a run without a report (a harden run, an interrupted verify)."""
    stored = run.path / "report.json"
    if not stored.is_file():
        return {}
    try:
        doc = run.read_json("report.json")
        document.validate(doc)
    except Exception as exc:  # not JSON, or not the schema: a report casemate cannot render
        why = getattr(exc, "message", None) or str(exc)
        raise BadInputError(f"{stored}: not a report casemate can render: {why}") from None
    rendered = formats.render(doc, formats.FORMATS, lambda: changes.since_previous(run.path, doc))
    return {f"{REPORTS}/{f.filename}": text.encode() for f, text in rendered}


def _secret_in(name: str, data: bytes) -> str | None:
    """What the redactor would take out of a file about to be bundled, or None. Run records pass
    through the redactor when written; this is the last guard, by its pattern rules (private
    keys, vault values, URL passwords, secret NAME=value assignments), applied as the run applied
    them: to each string of a JSON file, to the whole of any other."""
    text = data.decode("utf-8", "surrogateescape")
    try:
        parsed = json.loads(text)
    except ValueError:
        before, after = text, Redactor().text(text)
    else:
        scrubbed = Redactor().scrub(parsed)
        if scrubbed == parsed:
            return None
        before, after = json.dumps(parsed), json.dumps(scrubbed)
    if after == before:
        return None
    for marker, what in ((KEY_MARKER, "a private key"), (VAULT_MARKER, "a vault value")):
        if after.count(marker) > before.count(marker):
            return f"{name}: holds {what}"
    if after.count(MARKER) > before.count(MARKER):
        return f"{name}: holds a secret value (a URL password or a secret NAME=value)"
    return f"{name}: holds what the redactor would take out"


def collect(
    run: RunDir, harden: RunDir | None, catalog_dir: Path | None
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The bundle's files (name -> content) and its predicate. Refuses (bad input) when the
    catalog at hand is not the one the run used, or when a file holds what looks like a secret
    (the bundle is never written then)."""
    meta = run.read_json("run.json")
    files = _tree("run", run.path)
    predicate: dict[str, Any] = {"run": _run_summary(run, meta), "harden": None}
    reports = _reports(run)
    files |= reports
    predicate["reports"] = sorted(reports) or None
    if harden is not None:
        hmeta = harden.read_json("run.json")
        files |= _tree("harden", harden.path)
        predicate["harden"] = _run_summary(harden, hmeta) | {
            "catalog_digest": (hmeta.get("catalog") or {}).get("digest")
        }
    used = (meta.get("catalog") or {}).get("digest")
    catalog = {f"catalog/{p.name}": p.read_bytes() for p in catalog_files(catalog_dir)}
    digest = catalog_digest((name.removeprefix("catalog/"), raw) for name, raw in catalog.items())
    if not isinstance(used, str):
        raise BadInputError(
            f"run {run.id} records no catalog digest (an older casemate made it): "
            "which catalog it used cannot be told"
        )
    if used != digest:
        where = catalog_dir or "the shipped catalog"
        raise BadInputError(
            f"run {run.id} used catalog {used[:12]}, {where} is {digest[:12]}: "
            "pass --catalog with the catalog the run used"
        )
    files |= catalog
    benchmarks = (meta.get("catalog") or {}).get("benchmarks")
    predicate["catalog"] = {"digest": digest, "benchmarks": benchmarks}
    recorded = meta.get("versions")
    ran_with = recorded if isinstance(recorded, Mapping) else versions()
    files["versions.json"] = _canonical(ran_with)
    predicate["versions"] = ran_with
    predicate["versions_from"] = "run" if ran_with is recorded else "export"
    predicate["waivers"] = _waivers(files, meta, "waivers")
    if harden is not None:  # the waivers harden skipped controls by, when it had any
        predicate["harden"]["waivers"] = _waivers(files, hmeta, "waivers/harden")
    # reports/ is rendered from run/report.json, judged here string by string as the run's
    # redactor judged it; judged again as the text of a page, a JSON-escaped newline would run a
    # flag (`--enable-bootstrap-token-auth=true\n...`) on into the next line
    guarded = {n: d for n, d in files.items() if not n.startswith(f"{REPORTS}/")}
    found = [why for name, data in sorted(guarded.items()) if (why := _secret_in(name, data))]
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise BadInputError(f"not exported: {found[0]}{more}")
    return files, predicate


def statement(files: Mapping[str, bytes], predicate: Mapping[str, Any]) -> bytes:
    """The in-toto Statement v1 whose subjects are `files`: the bundle's manifest."""
    return _canonical(
        {
            "_type": STATEMENT_TYPE,
            "subject": [
                {"name": name, "digest": {"sha256": hashlib.sha256(data).hexdigest()}}
                for name, data in sorted(files.items())
            ],
            "predicateType": PREDICATE_TYPE,
            "predicate": dict(predicate),
        }
    )


def pack(files: Mapping[str, bytes]) -> bytes:
    """A deterministic tar.gz: manifest and envelope first, then the rest by name; every member
    a regular file with mtime 0, root:root, mode 0600; no name or time in the gzip header."""
    order = [n for n in (MANIFEST, ENVELOPE) if n in files]
    order += sorted(n for n in files if n not in (MANIFEST, ENVELOPE))
    out = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in order:
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = MEMBER_MODE
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    return out.getvalue()


def _started(run: RunDir) -> str:
    """When a run started (UTC, ISO 8601, as run.json records it; else from its id)."""
    started = run.read_json("run.json").get("started")
    if isinstance(started, str):
        return started
    stamp = run.id[:16]  # 20261205T120501Z
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}"


def export(
    run: RunDir,
    output: Path,
    *,
    harden: RunDir | None = None,
    key: Ed25519PrivateKey | None = None,
    catalog_dir: Path | None = None,
) -> Exported:
    """Write `run`'s bundle to `output` (0600, replaced whole), signed with `key` when given."""
    if harden is not None:
        if run.read_json("run.json").get("kind") != "verify":
            raise BadInputError(f"--harden goes with a verify run; {run.id} is not one")
        if harden.read_json("run.json").get("kind") != "harden":
            raise BadInputError(f"--harden {harden.id}: not a harden run")
        if _started(harden) > _started(run):
            raise BadInputError(f"--harden {harden.id}: started after verify run {run.id}")
    files, predicate = collect(run, harden, catalog_dir)
    manifest = statement(files, predicate)
    bundle = dict(files)
    bundle[MANIFEST] = manifest
    signer = None
    if key is not None:
        bundle[ENVELOPE] = _canonical(dsse.sign(dsse.IN_TOTO, manifest, key))
        signer = keyid(key.public_key())
    private.write(output, pack(bundle))
    return Exported(output, len(files), signer)


# --- reading and checking -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contents:
    digests: dict[str, str]  # every file but the manifest and the envelope: name -> sha256
    manifest: bytes | None
    envelope: bytes | None


def _safe_name(bundle: Path, member: tarfile.TarInfo) -> str:
    """A member's name, when it is a plain relative path inside the bundle; otherwise bad input
    (what tarfile's `data` filter refuses: absolute paths, `..`, links, devices)."""
    name = member.name
    parts = PurePosixPath(name).parts
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or any(p in ("", ".", "..") for p in name.split("/"))
        or not parts
    ):
        raise BadInputError(f"{bundle}: unsafe member name {name!r} (not a casemate bundle)")
    if not (member.isfile() or member.isdir()):
        kind = "link" if member.issym() or member.islnk() else "special file"
        raise BadInputError(f"{bundle}: {name} is a {kind} (a bundle holds only files)")
    return name


def read_bundle(bundle: Path) -> Contents:
    """The digest of every file in a bundle, and its manifest and envelope. Never extracts."""
    digests: dict[str, str] = {}
    kept: dict[str, bytes] = {}
    try:
        with tarfile.open(bundle, "r:*") as tar:
            for member in tar:
                name = _safe_name(bundle, member)
                if member.isdir():
                    continue
                if name in digests or name in kept:
                    raise BadInputError(f"{bundle}: {name} appears twice (not a casemate bundle)")
                handle = tar.extractfile(member)
                if handle is None:  # pragma: no cover - a regular file always has data
                    raise BadInputError(f"{bundle}: {name}: unreadable")
                if name in (MANIFEST, ENVELOPE):
                    if member.size > MAX_SIGNED_BYTES:
                        raise BadInputError(f"{bundle}: {name} is too large to be casemate's")
                    kept[name] = handle.read()
                    continue
                digest = hashlib.sha256()
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                digests[name] = digest.hexdigest()
    except FileNotFoundError:
        raise BadInputError(f"{bundle}: no such file") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise BadInputError(f"{bundle}: cannot read it ({exc.strerror})") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BadInputError(f"{bundle}: not a tar.gz bundle ({exc})") from None
    return Contents(digests, kept.get(MANIFEST), kept.get(ENVELOPE))


def _subjects(payload: bytes, bundle: Path) -> tuple[dict[str, str], Mapping[str, Any]]:
    """name -> sha256 of the signed Statement's subjects, and its predicate."""
    try:
        doc = json.loads(payload)
        kinds = (doc["_type"], doc["predicateType"])
        subjects = {str(s["name"]): str(s["digest"]["sha256"]) for s in doc["subject"]}
        predicate = doc["predicate"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"{bundle}: the signed statement is not casemate's ({exc})") from None
    if kinds != (STATEMENT_TYPE, PREDICATE_TYPE) or not isinstance(predicate, Mapping):
        raise BadInputError(f"{bundle}: the signed statement is not casemate's ({kinds})")
    return subjects, predicate


def check(bundle: Path, key: Ed25519PublicKey) -> Checked:
    """A bundle's signature under `key`, then each of its files against the signed manifest.
    Raises EvidenceSignatureError (missing or bad signature), EvidenceKeyError (signed by another
    key), EvidenceTamperedError (a file changed, added or removed: each named), BadInputError
    (not a bundle)."""
    contents = read_bundle(bundle)
    if contents.envelope is None:
        raise EvidenceSignatureError(f"{bundle}: not signed (no {ENVELOPE})")
    try:
        signed = dsse.verify(contents.envelope, key)
    except EvidenceSignatureError as exc:
        raise EvidenceSignatureError(f"{bundle}: bad signature: {exc}") from None
    except EvidenceKeyError as exc:
        raise EvidenceKeyError(f"{bundle}: wrong key: {exc}") from None
    if signed.payload_type != dsse.IN_TOTO:
        raise EvidenceSignatureError(
            f"{bundle}: bad signature: payload type {signed.payload_type}, not {dsse.IN_TOTO}"
        )
    subjects, predicate = _subjects(signed.payload, bundle)
    found = contents.digests
    changed = sorted(n for n in subjects.keys() & found.keys() if subjects[n] != found[n])
    added = sorted(contents.digests.keys() - subjects.keys())
    removed = sorted(subjects.keys() - contents.digests.keys())
    if contents.manifest is None:
        removed.insert(0, MANIFEST)
    elif contents.manifest != signed.payload:
        changed.insert(0, MANIFEST)
    problems = [f"changed {n}" for n in changed] + [f"added {n}" for n in added]
    problems += [f"removed {n}" for n in removed]
    if problems:
        raise EvidenceTamperedError(
            f"{bundle}: {len(problems)} file(s) differ from the signed manifest: "
            + "; ".join(problems)
        )
    return Checked(signed.keyid, len(subjects), predicate)
