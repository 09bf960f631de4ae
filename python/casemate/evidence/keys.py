"""Ed25519 signing keys for evidence bundles: PEM files (PKCS#8 private, SubjectPublicKeyInfo
public), made once and never overwritten. A key's id is the SHA-256 of its public key's DER
encoding (SubjectPublicKeyInfo), in hex, as DSSE tools derive it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from casemate import private
from casemate.errors import BadInputError

PRIVATE_NAME = "evidence.key"
PUBLIC_NAME = "evidence.pub"
PUBLIC_MODE = 0o644


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: Path
    public: Path
    keyid: str


def keyid(public: Ed25519PublicKey) -> str:
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _create(path: Path, data: bytes, mode: int) -> None:
    """Write a new file with `mode`; never replace one (O_EXCL), never follow a link."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise BadInputError(f"{path}: already exists (a key is never overwritten)") from None
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, mode)  # the umask cut the mode os.open gave
        handle.write(data)


def generate(directory: Path) -> KeyPair:
    """A fresh key pair in `directory` (made 0700 when missing): evidence.key 0600 and
    evidence.pub 0644. Refuses when either file exists, before writing anything."""
    pair = KeyPair(directory / PRIVATE_NAME, directory / PUBLIC_NAME, "")
    for path in (pair.private, pair.public):
        if path.exists() or path.is_symlink():
            raise BadInputError(f"{path}: already exists (a key is never overwritten)")
    private.make_dir(directory, own=False)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key()
    _create(pair.private, pem, private.FILE_MODE)
    _create(
        pair.public,
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        PUBLIC_MODE,
    )
    return KeyPair(pair.private, pair.public, keyid(public))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{what} {path}: {exc.strerror or exc}") from None


def load_private(path: Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key (PEM, PKCS#8); anything else is bad input."""
    data = _read(path, "--key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnicodeError) as exc:
        why = "encrypted" if "encrypted" in str(exc).lower() else "not a PEM private key"
        raise BadInputError(f"--key {path}: {why} (need casemate evidence keygen's)") from None
    if not isinstance(key, Ed25519PrivateKey):
        kind = type(key).__name__.removesuffix("PrivateKey").lstrip("_")
        raise BadInputError(f"--key {path}: a {kind} key, not an Ed25519 one")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key (PEM, SubjectPublicKeyInfo); anything else is bad input."""
    data = _read(path, "--pub")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnicodeError):
        raise BadInputError(f"--pub {path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        kind = type(key).__name__.removesuffix("PublicKey").lstrip("_")
        raise BadInputError(f"--pub {path}: a {kind} key, not an Ed25519 one")
    return key
