"""Signed evidence bundles: a run's records, the harden it followed, the catalog it used and the
versions it ran with, in one deterministic tar.gz whose manifest is an in-toto Statement signed in
a DSSE envelope (Ed25519). docs/evidence.md describes the layout and how any DSSE tool checks it."""
