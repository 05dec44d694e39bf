"""Typed errors of the calls layer (defined in :mod:`hotline.wire.errors`, re-exported here).

``WrongState`` — a call operation in a state that does not allow it — is the shared one.
"""

from __future__ import annotations

from hotline.wire.errors import CallError, CallFailed, DtlsFingerprintMismatch, NoSuchCall

__all__ = ["CallError", "CallFailed", "DtlsFingerprintMismatch", "NoSuchCall"]
