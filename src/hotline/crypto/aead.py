"""Symmetric authenticated encryption with a 32-byte key. Hazmat layer.

ChaCha20-Poly1305 (RFC 8439) from ``cryptography``, with a random 96-bit nonce prepended to the
ciphertext. Used for the keystore state under a subkey of the keystore master key; the master
key itself is sealed under the passphrase by :mod:`hotline.crypto.passphrase`.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from hotline.wire.errors import DecryptionFailed

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16


def aead_seal(key: bytes, plaintext: bytes, *, aad: bytes = b"") -> bytes:
    """``nonce || ciphertext || tag`` under ``key`` (32 bytes)."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def aead_open(key: bytes, sealed: bytes, *, aad: bytes = b"") -> bytes:
    """Open what :func:`aead_seal` produced.

    Raises:
        DecryptionFailed: wrong key, wrong ``aad`` or any changed byte.
    """
    if len(sealed) < NONCE_SIZE + TAG_SIZE:
        raise DecryptionFailed()
    try:
        return ChaCha20Poly1305(key).decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], aad)
    except InvalidTag as exc:
        raise DecryptionFailed() from exc
