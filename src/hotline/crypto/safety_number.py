"""Safety numbers: Signal's 60-digit numeric fingerprint of two identity keys. Hazmat layer.

Part of the labelled *hazmat* layer (STYLE.md §2). Follows Signal's
``NumericFingerprintGenerator`` (libsignal ``fingerprint.rs``) exactly, with SHA-512 from
``hashlib``:

* per party: ``h = version(2 bytes, big-endian) || key || stable_id``, then 5200 times
  ``h = SHA-512(h || key)``; the first 30 bytes of ``h`` form six 5-byte big-endian chunks,
  each reduced mod 100000 and printed as 5 digits, giving 30 digits;
* the safety number is the two 30-digit strings concatenated, smaller first, so both sides
  compute the same 60 digits.

In Hotline ``key`` is the 32-byte raw Ed25519 identity key and ``stable_id`` the UTF-8 handle
``name@domain``. (Signal hashes its 33-byte ``0x05``-prefixed key; :func:`fingerprint` takes any
bytes so libsignal's published vector can be checked.)
"""

from __future__ import annotations

import hashlib

from hotline.crypto.identity import IdentityPublicKey

__all__ = [
    "FINGERPRINT_DIGITS",
    "FINGERPRINT_VERSION",
    "ITERATIONS",
    "combine_fingerprints",
    "fingerprint",
    "format_safety_number",
    "safety_number",
]

FINGERPRINT_VERSION = 0
ITERATIONS = 5200
FINGERPRINT_DIGITS = 30
_CHUNKS = 6
_CHUNK_BYTES = 5


def fingerprint(
    identity_key_raw: bytes,
    stable_id: bytes,
    *,
    version: int = FINGERPRINT_VERSION,
    iterations: int = ITERATIONS,
) -> str:
    """One party's 30-digit displayable fingerprint."""
    digest = version.to_bytes(2, "big") + identity_key_raw + stable_id
    for _ in range(iterations):
        digest = hashlib.sha512(digest + identity_key_raw).digest()
    chunks = (digest[i * _CHUNK_BYTES : (i + 1) * _CHUNK_BYTES] for i in range(_CHUNKS))
    return "".join(f"{int.from_bytes(chunk, 'big') % 100000:05d}" for chunk in chunks)


def combine_fingerprints(mine: str, theirs: str) -> str:
    """Concatenate two 30-digit fingerprints in sorted order (the same on both sides)."""
    return mine + theirs if mine <= theirs else theirs + mine


def safety_number(
    my_key: IdentityPublicKey, my_id: bytes, their_key: IdentityPublicKey, their_id: bytes
) -> str:
    """The 60-digit safety number of two principals; symmetric in its two parties."""
    return combine_fingerprints(
        fingerprint(my_key.to_bytes(), my_id), fingerprint(their_key.to_bytes(), their_id)
    )


def format_safety_number(number: str) -> str:
    """Group a 60-digit safety number as 12 space-separated groups of 5 digits.

    Raises:
        ValueError: not exactly 60 decimal digits.
    """
    if len(number) != 2 * FINGERPRINT_DIGITS or not number.isascii() or not number.isdigit():
        raise ValueError("a safety number is exactly 60 decimal digits")
    return " ".join(number[i : i + 5] for i in range(0, len(number), 5))
