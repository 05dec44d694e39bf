"""Fuzz the end-to-end envelope decoder: the plaintext an Olm message decrypts to.

A malicious contact controls these bytes completely (they pass the encryption), so the
receiving client must refuse anything malformed with a typed error.
Target: :func:`hotline.client.inbox.decode_envelope`.
"""

from __future__ import annotations

from runner import instrumented, main

with instrumented():
    from hotline.client.inbox import decode_envelope


def test_one_input(data: bytes) -> None:
    """Decode ``data`` as an envelope; only HotlineError may come out."""
    decode_envelope(data)


if __name__ == "__main__":
    main("envelope", test_one_input)
