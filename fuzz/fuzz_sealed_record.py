"""Fuzz the records decoders: a log leaf as the server checks it and the custodian opens it.

Each input is tried three ways:

* as a leaf submitted to the server (:meth:`hotline.server.records_log.RecordsLog.check_leaf`);
* as a leaf the custodian opens (:func:`hotline.records.sealing.open_record`);
* as the plaintext inside a seal: a malicious device can seal any bytes to the custodian, so
  the input is sealed for real and then opened, reaching the ``Record`` decoder.
"""

from __future__ import annotations

import contextlib

from runner import instrumented, main

with instrumented():
    from valid_encodings import CUSTODIAN, DESTINATION, LOG_ID, LOG_KEY

    from hotline.crypto.hpke import SUITE_ID, hpke_seal
    from hotline.records.sealing import open_record
    from hotline.server.records_log import ArchiveSettings, RecordsLog
    from hotline.wire.codec import encode
    from hotline.wire.encoding import b64e
    from hotline.wire.records import SealedRecord, record_info

LOG = RecordsLog(ArchiveSettings(LOG_KEY, CUSTODIAN.public.to_bytes()), DESTINATION)


def sealed_around(plaintext: bytes) -> bytes:
    """A genuine log leaf whose sealed content is ``plaintext`` (what a rogue device sends)."""
    sealed = hpke_seal(CUSTODIAN.public, plaintext, record_info(LOG_ID, "r-1"))
    return encode(SealedRecord(1, "r-1", LOG_ID, SUITE_ID, b64e(sealed)))


def test_one_input(data: bytes) -> None:
    """Check, open and unseal ``data``; only HotlineError may come out of each step."""
    from hotline.wire.errors import HotlineError

    for step in (LOG.check_leaf, lambda d: open_record(CUSTODIAN, d)):
        with contextlib.suppress(HotlineError):
            step(data)
    open_record(CUSTODIAN, sealed_around(data))


if __name__ == "__main__":
    main("sealed_record", test_one_input)
