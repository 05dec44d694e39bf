"""Safety numbers (Signal NumericFingerprintGenerator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hotline.crypto.identity import IdentityKey
from hotline.crypto.safety_number import (
    combine_fingerprints,
    fingerprint,
    format_safety_number,
    safety_number,
)

VECTORS = Path(__file__).parent / "vectors" / "safety_number.json"

ALICE = IdentityKey.generate().public
BOB = IdentityKey.generate().public
A_ID = b"alice@ottawa.example"
B_ID = b"bob@canberra.example"


def test_libsignal_vector():
    vector = json.loads(VECTORS.read_text())
    mine = fingerprint(bytes.fromhex(vector["alice_key"]), vector["alice_id"].encode())
    theirs = fingerprint(bytes.fromhex(vector["bob_key"]), vector["bob_id"].encode())
    assert combine_fingerprints(mine, theirs) == vector["displayable"]
    assert combine_fingerprints(theirs, mine) == vector["displayable"]


def test_symmetric_and_sixty_digits():
    number = safety_number(ALICE, A_ID, BOB, B_ID)
    assert number == safety_number(BOB, B_ID, ALICE, A_ID)
    assert len(number) == 60
    assert number.isdigit()


def test_changes_when_either_key_changes():
    number = safety_number(ALICE, A_ID, BOB, B_ID)
    other = IdentityKey.generate().public
    assert safety_number(other, A_ID, BOB, B_ID) != number
    assert safety_number(ALICE, A_ID, other, B_ID) != number


def test_stable_id_matters():
    number = safety_number(ALICE, A_ID, BOB, B_ID)
    assert safety_number(ALICE, b"alice@evil.example", BOB, B_ID) != number
    assert safety_number(ALICE, A_ID, BOB, b"bob@evil.example") != number


def test_fingerprint_is_thirty_digits_and_version_matters():
    fp = fingerprint(ALICE.to_bytes(), A_ID)
    assert len(fp) == 30
    assert fp.isdigit()
    assert fingerprint(ALICE.to_bytes(), A_ID, version=1) != fp


def test_format():
    number = safety_number(ALICE, A_ID, BOB, B_ID)
    shown = format_safety_number(number)
    groups = shown.split(" ")
    assert len(groups) == 12
    assert all(len(g) == 5 for g in groups)
    assert "".join(groups) == number


@pytest.mark.parametrize("bad", ["", "1" * 59, "1" * 61, "a" * 60, "\u0661" * 60])
def test_format_rejects_non_numbers(bad):
    with pytest.raises(ValueError):
        format_safety_number(bad)
