"""DSSE, the Dead Simple Signing Envelope (github.com/secure-systems-lab/dsse, protocol v1): the
signature covers PAE(payloadType, payload), never the payload alone, so a signature made for one
payload type never passes for another."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from casemate.errors import EvidenceKeyError, EvidenceSignatureError
from casemate.evidence.keys import keyid

IN_TOTO = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The pre-authentication encoding:
    "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in bytes, in ASCII decimal."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def sign(payload_type: str, payload: bytes, key: Ed25519PrivateKey) -> dict[str, Any]:
    """A DSSE envelope (JSON-ready) with one signature by `key`."""
    signature = key.sign(pae(payload_type, payload))
    return {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": payload_type,
        "signatures": [
            {"keyid": keyid(key.public_key()), "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }


@dataclass(frozen=True, slots=True)
class Verified:
    payload_type: str
    payload: bytes  # exactly the bytes the signature covers
    keyid: str


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise EvidenceSignatureError(f"{what} is not base64 text")
    try:  # DSSE accepts standard and URL-safe base64
        return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise EvidenceSignatureError(f"{what} is not base64") from None


def verify(envelope: bytes, key: Ed25519PublicKey) -> Verified:
    """The payload of `envelope` when a signature in it verifies under `key`. A malformed envelope
    or a signature that fails is EvidenceSignatureError; an envelope signed only by other keys
    (every signature fails and none names this key's id) is EvidenceKeyError."""
    try:
        doc = json.loads(envelope)
    except (ValueError, UnicodeError):
        raise EvidenceSignatureError("the envelope is not JSON") from None
    if not isinstance(doc, dict):
        raise EvidenceSignatureError("the envelope is not a JSON object")
    payload_type = doc.get("payloadType")
    if not isinstance(payload_type, str) or not payload_type:
        raise EvidenceSignatureError("the envelope has no payloadType")
    payload = _b64(doc.get("payload"), "the envelope's payload")
    signatures = doc.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise EvidenceSignatureError("the envelope holds no signature")
    mine = keyid(key)
    message = pae(payload_type, payload)
    named: list[str] = []
    for entry in signatures:
        if not isinstance(entry, dict):
            raise EvidenceSignatureError("a signature in the envelope is not an object")
        sig = _b64(entry.get("sig"), "a signature")
        try:
            key.verify(sig, message)
        except InvalidSignature:
            named.append(str(entry.get("keyid") or ""))
            continue
        return Verified(payload_type, payload, mine)
    if mine in named:
        raise EvidenceSignatureError(f"the signature by key {mine[:16]} does not verify")
    if any(named):
        others = ", ".join(sorted({k[:16] for k in named if k}))
        raise EvidenceKeyError(f"signed by key {others}, not by the given key {mine[:16]}")
    raise EvidenceSignatureError(f"no signature verifies under the given key {mine[:16]}")
