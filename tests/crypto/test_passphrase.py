"""Keystore at rest: passphrase sealing and subkeys."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.crypto.passphrase import (
    DEFAULT_SCRYPT,
    HEADER_SIZE,
    MAGIC,
    OVERHEAD,
    KeystoreKey,
    ScryptParams,
    derive_subkey,
    open_with_passphrase,
    seal_with_passphrase,
)
from hotline.wire.errors import WrongPassphrase

CHEAP = ScryptParams(log2_n=4, r=8, p=1)  # tests only: 16 KiB, microseconds
PASS = "correct horse battery staple"


def seal(plaintext: bytes, aad: bytes = b"") -> bytes:
    return seal_with_passphrase(PASS, plaintext, aad=aad, scrypt=CHEAP)


BLOB = seal(b"keystore contents", b"ctx")


def test_default_params():
    assert (DEFAULT_SCRYPT.n, DEFAULT_SCRYPT.r, DEFAULT_SCRYPT.p) == (2**15, 8, 1)


@given(st.binary(max_size=256), st.binary(max_size=32))
@settings(max_examples=30, deadline=None)
def test_round_trip(plaintext, aad):
    blob = seal(plaintext, aad)
    assert len(blob) == len(plaintext) + OVERHEAD
    assert open_with_passphrase(PASS, blob, aad=aad) == plaintext


def test_header_layout():
    assert BLOB[:4] == MAGIC
    assert BLOB[4:9] == bytes([1, 1, 4, 8, 1])
    assert HEADER_SIZE == 37


def test_wrong_passphrase():
    with pytest.raises(WrongPassphrase):
        open_with_passphrase("wrong", BLOB, aad=b"ctx")


def test_wrong_aad():
    with pytest.raises(WrongPassphrase):
        open_with_passphrase(PASS, BLOB, aad=b"other")


def test_nfc_normalised():
    blob = seal_with_passphrase("caf\u00e9", b"x", scrypt=CHEAP)
    assert open_with_passphrase("cafe\u0301", blob) == b"x"


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_any_single_bit_flip_refused(data):
    bit = data.draw(st.integers(min_value=0, max_value=len(BLOB) * 8 - 1))
    blob = bytearray(BLOB)
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(WrongPassphrase):
        open_with_passphrase(PASS, bytes(blob), aad=b"ctx")


@pytest.mark.parametrize("cut", [0, 1, HEADER_SIZE, OVERHEAD - 1, len(BLOB) - 1])
def test_truncated_refused(cut):
    with pytest.raises(WrongPassphrase):
        open_with_passphrase(PASS, BLOB[:cut], aad=b"ctx")


@pytest.mark.parametrize(
    ("log2_n", "r", "p"),
    [(36, 1, 1), (20, 8, 1), (25, 8, 1), (15, 8, 200), (0, 8, 1), (15, 0, 1), (15, 8, 0)],
)
def test_malicious_header_params_refused_before_kdf(log2_n, r, p):
    # e.g. N = 2**25, r = 8 would need 32 GiB: refused without running scrypt.
    blob = bytearray(BLOB)
    struct.pack_into(">BBB", blob, 6, log2_n, r, p)
    with pytest.raises(WrongPassphrase):
        open_with_passphrase(PASS, bytes(blob), aad=b"ctx")


def test_params_bounds():
    with pytest.raises(ValueError):
        ScryptParams(log2_n=22, r=8, p=1)
    assert ScryptParams(log2_n=18, r=8, p=1).within_bounds()


def test_derive_subkey():
    master = bytes(range(32))
    a = derive_subkey(master, "olm-pickle")
    assert len(a) == 32
    assert a == derive_subkey(master, "olm-pickle")
    assert a != derive_subkey(master, "other")
    assert a != derive_subkey(bytes(32), "olm-pickle")
    with pytest.raises(ValueError):
        derive_subkey(b"short", "olm-pickle")
    with pytest.raises(ValueError):
        derive_subkey(master, "")


def test_keystore_key():
    key = KeystoreKey.generate()
    blob = key.seal(PASS, scrypt=CHEAP)
    again = KeystoreKey.open(PASS, blob)
    assert again.to_bytes() == key.to_bytes()
    assert again.subkey("olm-pickle") == derive_subkey(key.to_bytes(), "olm-pickle")
    assert key.to_bytes().hex() not in repr(key)
    with pytest.raises(WrongPassphrase):
        KeystoreKey.open("nope", blob)
    with pytest.raises(WrongPassphrase):
        KeystoreKey.open(PASS, seal(b"not 32 bytes"))
    with pytest.raises(ValueError):
        KeystoreKey.from_bytes(b"short")
