"""Sealing records to the custodian (RFC 9180 HPKE, single shot) and opening them.

The suite is :data:`hotline.crypto.hpke.SUITE_ID` (ML-KEM-768 + X25519 hybrid KEM,
HKDF-SHA256, ChaCha20-Poly1305): records must stay secret for decades, so "harvest now,
decrypt later" matters. ``info`` binds the log id and the record id (:func:`record_info`), so a
sealed record cannot be replayed under another id or into another government's log. The suite
id is stored in every entry, so the suite can change later without ambiguity.
"""

from __future__ import annotations

from hotline.crypto.hpke import (
    SUITE_ID,
    CustodianPrivateKey,
    CustodianPublicKey,
    hpke_open,
    hpke_seal,
)
from hotline.wire.codec import decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import DecryptionFailed, MalformedInput
from hotline.wire.records import MAX_LEAF, Record, SealedRecord, record_info


def seal_record(custodian: CustodianPublicKey, record: Record) -> bytes:
    """The exact leaf bytes (JSON of :class:`SealedRecord`) for ``record``."""
    sealed = hpke_seal(custodian, encode(record), record_info(record.log_id, record.record_id))
    return encode(
        SealedRecord(
            v=1,
            record_id=record.record_id,
            log_id=record.log_id,
            suite=SUITE_ID,
            sealed=b64e(sealed),
        )
    )


def open_record(custodian: CustodianPrivateKey, leaf: bytes) -> Record:
    """Open one log entry with the custodian's private key.

    Raises:
        MalformedInput: not a sealed record, or an unknown suite.
        DecryptionFailed: not sealed to this key, or changed (also: the record inside names
            another id or log than the entry, which would be a substitution).
    """
    sealed = decode(leaf, SealedRecord, max_size=MAX_LEAF, what="sealed record")
    if sealed.suite != SUITE_ID:
        raise MalformedInput(f"unknown record suite {sealed.suite}")
    plaintext = hpke_open(
        custodian,
        b64d(sealed.sealed, field="sealed", max_len=MAX_LEAF),
        record_info(sealed.log_id, sealed.record_id),
    )
    record = decode(plaintext, Record, max_size=MAX_LEAF, what="record")
    if record.record_id != sealed.record_id or record.log_id != sealed.log_id:
        raise DecryptionFailed()
    return record
