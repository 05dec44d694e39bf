"""The one written-down error tree of Hotline.

Every failure a peer, a server or a user can see is a :class:`HotlineError` subclass with a
stable ``code`` (shown on the wire as ``application/problem+json`` and by the CLI) and an HTTP
``status``. Codes never change meaning once released; add new ones instead.

Crypto failures deliberately carry no detail a peer could use as an oracle (STYLE.md §7):
the ``detail`` of :class:`DecryptionFailed` is fixed, the precise cause is logged locally.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HotlineError(Exception):
    """Base of every Hotline error.

    Attributes:
        code: stable machine-readable code, e.g. ``not_a_contact``.
        status: HTTP status the server answers with.
        title: short human summary, constant per code.
        detail: what happened this time and, where useful, what to do next.
        extra: structured evidence (never secrets) put in the problem document.
    """

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)

    def to_problem(self) -> dict[str, Any]:
        """Render as an RFC 9457 problem document."""
        doc: dict[str, Any] = {
            "type": f"https://hotline.invalid/errors/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.extra:
            doc["extra"] = self.extra
        return doc


# --- input shape ------------------------------------------------------------------------------
class MalformedInput(HotlineError):
    """Bytes that do not decode into the expected structure."""

    code = "malformed"
    status = 400
    title = "Malformed input"


class BodyTooLarge(HotlineError):
    """A request body or field over its size cap."""

    code = "too_large"
    status = 413
    title = "Body too large"


class UnsupportedVersion(HotlineError):
    """A struct with a version this build does not speak."""

    code = "unsupported_version"
    status = 400
    title = "Unsupported version"


# --- signatures, cards, identities -------------------------------------------------------------
class BadSignature(HotlineError):
    """A signature that does not verify over the exact bytes received."""

    code = "bad_signature"
    status = 400
    title = "Signature does not verify"


class MalformedCard(HotlineError):
    """A contact card that is not a well-formed ``hotline:`` URI."""

    code = "malformed_card"
    status = 400
    title = "Malformed contact card"


class CardExpired(HotlineError):
    """A contact card past its expiry."""

    code = "card_expired"
    status = 403
    title = "Contact card expired"


class InviteInvalid(HotlineError):
    """An invite secret that is unknown, revoked, expired or wrong."""

    code = "invite_invalid"
    status = 403
    title = "Invite not valid"


class IdentityChanged(HotlineError):
    """A contact's identity key differs from the one pinned; sending is blocked."""

    code = "identity_changed"
    status = 409
    title = "Contact's identity key changed"


class StaleVersion(HotlineError):
    """A signed list (device list, allowlist) whose version does not go up."""

    code = "stale_version"
    status = 409
    title = "Version must increase"


# --- authentication and authorisation ---------------------------------------------------------
class Unauthenticated(HotlineError):
    """No valid session token."""

    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class ChallengeInvalid(HotlineError):
    """An auth challenge that is unknown, expired or already used (replay)."""

    code = "challenge_invalid"
    status = 401
    title = "Challenge invalid or already used"


class EnrolmentInvalid(HotlineError):
    """An enrolment token that is unknown, expired or already used."""

    code = "enrolment_invalid"
    status = 403
    title = "Enrolment token invalid"


class LinkInvalid(HotlineError):
    """A device link (enrolment code) that is unknown or whose secret is wrong: one message
    for both, so the answer is no oracle for guessing link ids."""

    code = "link_invalid"
    status = 403
    title = "Device link not valid"


class LinkExpired(HotlineError):
    """A device link past its expiry (10 minutes); start again with ``hotline devices join``."""

    code = "link_expired"
    status = 410
    title = "Device link expired"


class LinkUsed(HotlineError):
    """A device link that was already approved (or its bundle collected): single use."""

    code = "link_used"
    status = 409
    title = "Device link already used"


class NotAContact(HotlineError):
    """The sender is not on the recipient's signed allowlist."""

    code = "not_a_contact"
    status = 403
    title = "Not a contact"


class NotAGroupMember(HotlineError):
    """The sender (or the caller) is not on the group's current roster as the recipient holds it."""

    code = "not_a_group_member"
    status = 403
    title = "Not a group member"


class UnknownGroup(HotlineError):
    """No group of this device matches the name or id given."""

    code = "unknown_group"
    status = 404
    title = "Unknown group"


class RosterRefused(HotlineError):
    """A group roster is not signed by a current admin (or by the member leaving), or it
    changes the group in a way its signer may not."""

    code = "roster_refused"
    status = 403
    title = "Group roster refused"


class NotDelegated(HotlineError):
    """The sender claims to act for a principal without an active grant from them (none,
    expired, revoked, not signed by the principal, or without the needed right)."""

    code = "not_delegated"
    status = 403
    title = "Not delegated"


class DeviceBlocked(HotlineError):
    """The device was removed by the server's administrator (a lost device); it may not log in
    and may not be put back on a device list."""

    code = "device_blocked"
    status = 403
    title = "Device removed by the administrator"


class RateLimited(HotlineError):
    """Too many requests from this device; retry after ``extra['retry_after']`` seconds."""

    code = "rate_limited"
    status = 429
    title = "Rate limited"


# --- resources ---------------------------------------------------------------------------------
class QueueFull(HotlineError):
    """Too many of this device's messages wait undelivered; wait for recipients to catch up."""

    code = "queue_full"
    status = 429
    title = "Too many undelivered messages"


class UnknownDevice(HotlineError):
    """A device id that is not registered (or not of the principal named)."""

    code = "unknown_device"
    status = 404
    title = "Unknown device"


class UnknownPrincipal(HotlineError):
    """A handle that is not registered on this server."""

    code = "unknown_principal"
    status = 404
    title = "Unknown principal"


class AlreadyExists(HotlineError):
    """A handle or device id that is already taken."""

    code = "already_exists"
    status = 409
    title = "Already exists"


class OneTimeKeyReused(HotlineError):
    """A one-time key that was already claimed or already published."""

    code = "one_time_key_reused"
    status = 409
    title = "One-time key already used"


class NoKeysAvailable(HotlineError):
    """A device has neither one-time keys nor a fallback key to claim."""

    code = "no_keys_available"
    status = 409
    title = "No keys available for device"


class DeviceListMismatch(HotlineError):
    """A message does not address exactly the recipient's current devices."""

    code = "device_list_mismatch"
    status = 409
    title = "Message does not match the current device list"


# --- end-to-end channel -----------------------------------------------------------------------
class DecryptionFailed(HotlineError):
    """Ciphertext that does not decrypt or authenticate. Deliberately uninformative."""

    code = "decryption_failed"
    status = 400
    title = "Decryption failed"


class TranscriptGap(HotlineError):
    """A message arrived out of sequence: the server dropped or reordered something.

    ``extra`` carries ``expected`` and ``got`` sequence numbers.
    """

    code = "transcript_gap"
    status = 409
    title = "Gap in conversation"


class TranscriptReplay(HotlineError):
    """A message already seen (same sequence number or message id) arrived again."""

    code = "transcript_replay"
    status = 409
    title = "Replayed message"


class TranscriptForked(HotlineError):
    """A message whose hash chain does not continue the transcript seen so far."""

    code = "transcript_forked"
    status = 409
    title = "Transcript hash chain broken"


# --- local state -------------------------------------------------------------------------------
class WrongPassphrase(HotlineError):
    """The keystore passphrase is wrong (or the file is corrupt); nothing was changed."""

    code = "wrong_passphrase"
    status = 401
    title = "Wrong passphrase"


class PassphraseRequired(HotlineError):
    """No passphrase given and no terminal to ask for one."""

    code = "passphrase_required"
    status = 400
    title = "Passphrase required"


class KeystoreMissing(HotlineError):
    """No keystore at ``HOTLINE_HOME``; run ``hotline register`` first."""

    code = "keystore_missing"
    status = 400
    title = "No keystore"


class HistoryDamaged(HotlineError):
    """The device's message history log does not authenticate, or ends before the entries the
    keystore committed: changed or truncated on disk. Nothing was changed.

    Extra: ``entry`` (the first entry that failed) and ``committed`` (how many the keystore
    counts)."""

    code = "history_damaged"
    status = 500
    title = "Message history damaged"


class UnknownContact(HotlineError):
    """A name that matches no contact in the local keystore."""

    code = "unknown_contact"
    status = 404
    title = "Unknown contact"


class NotVerified(HotlineError):
    """An interactive verification did not complete or the codes did not match."""

    code = "verification_failed"
    status = 409
    title = "Verification failed"


class RecordRequired(HotlineError):
    """The server relays a message only together with its sealed record (capture at creation)."""

    code = "record_required"
    status = 400
    title = "Record required"


class ArchiveDisabled(HotlineError):
    """This home server runs without a records archive."""

    code = "archive_disabled"
    status = 404
    title = "No records archive"


class LogInconsistent(HotlineError):
    """A records log tree head that does not extend the one seen before (fork or rollback)."""

    code = "log_inconsistent"
    status = 409
    title = "Records log fork or rollback"


class UnknownPeer(HotlineError):
    """A server that is not operator-pinned (no open federation)."""

    code = "unknown_peer"
    status = 403
    title = "Unknown peer server"


class WrongDestination(HotlineError):
    """A server-to-server request addressed to another server."""

    code = "wrong_destination"
    status = 400
    title = "Request for another server"


class WrongOrigin(HotlineError):
    """A peer that speaks for a user of another domain than its own."""

    code = "wrong_origin"
    status = 403
    title = "Peer claims a user of another domain"


class ClockSkew(HotlineError):
    """A signed request whose timestamp is outside the accepted window."""

    code = "clock_skew"
    status = 401
    title = "Timestamp outside the window"


class ReplayedRequest(HotlineError):
    """A signed request whose nonce was already used."""

    code = "replayed_request"
    status = 409
    title = "Replayed request"


class CallError(HotlineError):
    """Base of the call errors."""

    code = "call_error"
    status = 500
    title = "Call error"


class DtlsFingerprintMismatch(CallError):
    """The peer's DTLS certificate is not the one whose fingerprint the end-to-end signalling
    carried: someone other than the contact's device terminated the media (a man in the
    middle), or the SDP was altered outside the end-to-end channel.

    ``extra`` carries ``algorithm``, ``expected`` (from the end-to-end SDP) and ``presented``
    (the certificate the DTLS handshake saw; empty if none was presented).
    """

    code = "dtls_fingerprint_mismatch"
    status = 403
    title = "Media peer is not the contact's device"


class CallFailed(CallError):
    """The call could not be set up or its media failed (``extra['reason']``)."""

    code = "call_failed"
    status = 502
    title = "Call failed"


class NoSuchCall(CallError):
    """No call with this id is known to this device (``extra['call_id']``)."""

    code = "no_such_call"
    status = 404
    title = "No such call"


class ForbiddenByPolicy(HotlineError):
    """The organisation's signed policy does not allow this (``extra['rule']``)."""

    code = "forbidden_by_policy"
    status = 403
    title = "Forbidden by policy"


class PolicyDowngrade(HotlineError):
    """A policy whose version is lower than one already accepted (a rollback)."""

    code = "policy_downgrade"
    status = 409
    title = "Policy downgrade refused"


class CustodianNotAuthorised(HotlineError):
    """The home server seals records to a custodian key the organisation's signed policy does
    not name (a substituted custodian key, or a server configured against its policy)."""

    code = "custodian_not_authorised"
    status = 409
    title = "Records custodian not authorised by the organisation"


class NotFound(HotlineError):
    """No such endpoint."""

    code = "not_found"
    status = 404
    title = "Not found"


class MethodNotAllowed(HotlineError):
    """The endpoint exists but not with this HTTP method."""

    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"


class ServerUnavailable(HotlineError):
    """The home server could not be reached."""

    code = "server_unavailable"
    status = 503
    title = "Home server unreachable"


class StorageError(HotlineError):
    """The home server's database failed or is unreachable; the request changed nothing.

    Raised by :mod:`hotline.store` in place of any database or driver exception (the cause is
    chained and logged locally, never shown to a peer). Retrying later may succeed.
    """

    code = "storage_error"
    status = 503
    title = "Storage unavailable"


class CorruptState(HotlineError):
    """Local encrypted state (an Olm pickle, a keystore entry) that does not open with its key.

    The key was right (the passphrase opened the keystore) but the blob is damaged or was
    written under another key; nothing was changed.
    """

    code = "corrupt_state"
    status = 500
    title = "Local state corrupt"


class WrongState(HotlineError):
    """An operation called in a state that does not allow it (``extra['state']`` names it)."""

    code = "wrong_state"
    status = 409
    title = "Operation not allowed in this state"


# --- records log (RFC 9162 Merkle proofs) -----------------------------------------------------
class ProofInvalid(HotlineError):
    """A Merkle proof that does not prove what it claims (base of the proof errors below)."""

    code = "proof_invalid"
    status = 400
    title = "Merkle proof invalid"


class InclusionProofInvalid(ProofInvalid):
    """An inclusion proof of the wrong shape: index out of range, wrong length, bad hash size.

    ``extra`` carries ``index``, ``size`` and, for a wrong length, ``proof_len``/``want_len``.
    """

    code = "inclusion_proof_invalid"
    status = 400
    title = "Inclusion proof invalid"


class ConsistencyProofInvalid(ProofInvalid):
    """A consistency proof of the wrong shape: sizes out of order, zero, or wrong length.

    ``extra`` carries ``size1``, ``size2`` and, for a wrong length, ``proof_len``/``want_len``.
    """

    code = "consistency_proof_invalid"
    status = 400
    title = "Consistency proof invalid"


class RootMismatch(ProofInvalid):
    """A well-formed proof whose calculated root differs from the expected (signed) one.

    Evidence of a tampered or forked log. ``extra`` carries ``which`` (``root``, ``root1`` or
    ``root2``) and ``expected`` / ``calculated`` as lowercase hex.
    """

    code = "root_mismatch"
    status = 409
    title = "Merkle root mismatch"

    @property
    def expected(self) -> bytes:
        """The root the caller trusted (e.g. from a signed tree head)."""
        return _hex_or_empty(self.extra.get("expected"))

    @property
    def calculated(self) -> bytes:
        """The root the proof leads to."""
        return _hex_or_empty(self.extra.get("calculated"))


def _hex_or_empty(value: Any) -> bytes:
    # Evidence may come back from a peer's problem document: never let it raise here.
    try:
        return bytes.fromhex(str(value or ""))
    except ValueError:
        return b""


class TreeRangeInvalid(HotlineError):
    """A proof or root asked for an index or tree size the log does not have (yet)."""

    code = "tree_range_invalid"
    status = 400
    title = "Index or tree size out of range"


def _all_subclasses(cls: type[HotlineError]) -> list[type[HotlineError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _all_subclasses(sub)
    return found


#: Every error class of this module (derived, so a new class can never be left out).
ALL_ERRORS: tuple[type[HotlineError], ...] = tuple(_all_subclasses(HotlineError))

_BY_CODE: dict[str, type[HotlineError]] = {cls.code: cls for cls in ALL_ERRORS}


def error_from_problem(doc: dict[str, Any]) -> HotlineError:
    """Rebuild the typed error from a problem document received from a server."""
    cls = _BY_CODE.get(str(doc.get("code", "")), HotlineError)
    extra = doc.get("extra") if isinstance(doc.get("extra"), dict) else {}
    return cls(str(doc.get("detail") or cls.title), **(extra or {}))
