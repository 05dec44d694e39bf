"""Records sealing: HPKE (RFC 9180) to the custodian."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.crypto.hpke import (
    ENC_SIZE,
    OVERHEAD,
    PRIVATE_KEY_SIZE,
    PUBLIC_KEY_SIZE,
    SUITE_ID,
    CustodianPrivateKey,
    CustodianPublicKey,
    hpke_open,
    hpke_seal,
)
from hotline.wire.errors import DecryptionFailed, MalformedInput

CUSTODIAN = CustodianPrivateKey.generate()
INFO = b"hotline/v1/record\x00log-1\x00record-42"


def test_suite_and_sizes():
    assert SUITE_ID == "MLKEM768X25519-HKDFSHA256-CHACHA20POLY1305"
    assert ENC_SIZE == 1120
    assert OVERHEAD == ENC_SIZE + 16 == 1136
    assert PRIVATE_KEY_SIZE == 96
    assert PUBLIC_KEY_SIZE == 1216


@given(st.binary(max_size=2048))
@settings(max_examples=20, deadline=None)
def test_round_trip_and_overhead(plaintext):
    sealed = hpke_seal(CUSTODIAN.public, plaintext, INFO)
    assert len(sealed) - len(plaintext) == OVERHEAD
    assert hpke_open(CUSTODIAN, sealed, INFO) == plaintext


def test_sealing_is_randomised():
    assert hpke_seal(CUSTODIAN.public, b"x", INFO) != hpke_seal(CUSTODIAN.public, b"x", INFO)


def test_wrong_info_fails():
    sealed = hpke_seal(CUSTODIAN.public, b"record", INFO)
    with pytest.raises(DecryptionFailed):
        hpke_open(CUSTODIAN, sealed, INFO + b"3")


def test_wrong_key_fails():
    sealed = hpke_seal(CUSTODIAN.public, b"record", INFO)
    with pytest.raises(DecryptionFailed):
        hpke_open(CustodianPrivateKey.generate(), sealed, INFO)


@given(st.data())
@settings(max_examples=30, deadline=None)
def test_bit_flip_fails(data):
    sealed = bytearray(hpke_seal(CUSTODIAN.public, b"record body", INFO))
    bit = data.draw(st.integers(min_value=0, max_value=len(sealed) * 8 - 1))
    sealed[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(DecryptionFailed):
        hpke_open(CUSTODIAN, bytes(sealed), INFO)


@pytest.mark.parametrize("cut", [0, 1, ENC_SIZE, OVERHEAD - 1])
def test_truncated_fails(cut):
    sealed = hpke_seal(CUSTODIAN.public, b"record", INFO)
    with pytest.raises(DecryptionFailed):
        hpke_open(CUSTODIAN, sealed[:cut], INFO)


def test_private_key_round_trip():
    raw = CUSTODIAN.to_bytes()
    assert len(raw) == PRIVATE_KEY_SIZE
    again = CustodianPrivateKey.from_bytes(raw)
    assert again.public == CUSTODIAN.public
    assert hpke_open(again, hpke_seal(CUSTODIAN.public, b"r", INFO), INFO) == b"r"
    assert raw.hex() not in repr(CUSTODIAN)


def test_public_key_round_trip():
    raw = CUSTODIAN.public.to_bytes()
    assert len(raw) == PUBLIC_KEY_SIZE
    pub = CustodianPublicKey.from_bytes(raw)
    assert pub == CUSTODIAN.public
    assert hash(pub) == hash(CUSTODIAN.public)
    assert hpke_open(CUSTODIAN, hpke_seal(pub, b"r", INFO), INFO) == b"r"


@pytest.mark.parametrize("raw", [b"", b"\x00" * 95, b"\x00" * 97])
def test_bad_private_key(raw):
    with pytest.raises(MalformedInput):
        CustodianPrivateKey.from_bytes(raw)


@pytest.mark.parametrize("raw", [b"", b"\x00" * 1215, b"\xff" * 1216])
def test_bad_public_key(raw):
    with pytest.raises(MalformedInput):
        CustodianPublicKey.from_bytes(raw)
