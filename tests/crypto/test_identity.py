"""Identity keys: Ed25519 with domain-separated signatures."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.crypto.identity import (
    DOMAIN_ALLOWLIST,
    DOMAIN_AUTH,
    DOMAIN_CARD,
    DOMAIN_DEVICE_LIST,
    DOMAIN_ONE_TIME_KEY,
    IdentityKey,
    IdentityPublicKey,
    domain_separated,
)
from hotline.wire.errors import BadSignature, MalformedInput

KEY = IdentityKey.generate()


def test_sign_verify_round_trip():
    sig = KEY.sign(DOMAIN_CARD, b"payload")
    assert len(sig) == 64
    KEY.public.verify(DOMAIN_CARD, b"payload", sig)


def test_signature_is_over_domain_nul_payload():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig = KEY.sign(DOMAIN_AUTH, b"challenge")
    raw = Ed25519PublicKey.from_public_bytes(KEY.public.to_bytes())
    raw.verify(sig, b"hotline/v1/auth\x00challenge")


def test_domain_constants():
    assert DOMAIN_CARD == b"hotline/v1/card"
    assert DOMAIN_DEVICE_LIST == b"hotline/v1/device-list"
    assert DOMAIN_ALLOWLIST == b"hotline/v1/allowlist"
    assert DOMAIN_AUTH == b"hotline/v1/auth"
    assert DOMAIN_ONE_TIME_KEY == b"hotline/v1/one-time-key"


def test_wrong_domain_rejected():
    sig = KEY.sign(DOMAIN_CARD, b"payload")
    with pytest.raises(BadSignature):
        KEY.public.verify(DOMAIN_ALLOWLIST, b"payload", sig)


def test_domain_payload_boundary_is_unambiguous():
    # "card" + "\x00x" must not verify as "card\x00" ... the NUL ban makes this impossible.
    with pytest.raises(ValueError, match="NUL"):
        domain_separated(b"hotline/v1/card\x00", b"x")
    with pytest.raises(ValueError):
        KEY.sign(b"", b"x")


def test_wrong_key_rejected():
    sig = KEY.sign(DOMAIN_CARD, b"payload")
    with pytest.raises(BadSignature):
        IdentityKey.generate().public.verify(DOMAIN_CARD, b"payload", sig)


@pytest.mark.parametrize("sig", [b"", b"\x00" * 63, b"\x00" * 65, b"\x00" * 64])
def test_malformed_signature_is_bad_signature(sig):
    with pytest.raises(BadSignature):
        KEY.public.verify(DOMAIN_CARD, b"payload", sig)


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=64 * 8 - 1))
def test_any_bit_flip_in_signature_rejected(payload, bit):
    sig = bytearray(KEY.sign(DOMAIN_CARD, payload))
    sig[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(BadSignature):
        KEY.public.verify(DOMAIN_CARD, payload, bytes(sig))


@given(st.binary(max_size=64), st.binary(min_size=1, max_size=64))
def test_other_payload_rejected(payload, other):
    sig = KEY.sign(DOMAIN_CARD, payload)
    if other != payload:
        with pytest.raises(BadSignature):
            KEY.public.verify(DOMAIN_CARD, other, sig)


def test_private_key_round_trip():
    raw = KEY.to_bytes()
    assert len(raw) == 32
    again = IdentityKey.from_bytes(raw)
    assert again.public == KEY.public
    KEY.public.verify(DOMAIN_CARD, b"x", again.sign(DOMAIN_CARD, b"x"))


def test_public_key_round_trip_eq_hash():
    pub = IdentityPublicKey.from_bytes(KEY.public.to_bytes())
    assert pub == KEY.public
    assert hash(pub) == hash(KEY.public)
    assert {pub, KEY.public} == {pub}
    assert pub != IdentityKey.generate().public
    assert pub != object()


@pytest.mark.parametrize("raw", [b"", b"\x01" * 31, b"\x01" * 33])
def test_wrong_length_keys_malformed(raw):
    with pytest.raises(MalformedInput):
        IdentityPublicKey.from_bytes(raw)
    with pytest.raises(MalformedInput):
        IdentityKey.from_bytes(raw)


def test_repr_hides_secret():
    assert KEY.to_bytes().hex() not in repr(KEY)
