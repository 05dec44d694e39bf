"""Signed, content-free transcript attestations exchanged between two custodians.

A custodian publishes, for one conversation, the digest its archive yields
(:meth:`~hotline.client.transcript.Transcript.digest`) with each stream's last sequence number
and chain head, the log id and size it was computed at, and when. No content: heads are hashes.
The statement's exact JSON bytes are signed with the custodian's Ed25519 key, domain-separated
by :data:`ATTESTATION_DOMAIN`, and shipped beside the signature (never re-serialised to verify).
The other government's custodian verifies it with the first custodian's ``custodian.pub`` and
compares it with the digest of its own archive: equal digests mean both archives hold the
identical transcript.
"""

from __future__ import annotations

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hotline.custodian.completeness import ConversationChains
from hotline.custodian.errors import AttestationMismatch
from hotline.wire.codec import decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import BadSignature, HotlineError, MalformedInput

ATTESTATION_DOMAIN = b"hotline/v1/transcript-attestation\x00"
MAX_ATTESTATION = 64 * 1024


class StreamHead(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One sender device's stream: its key, last sequence number and chain head (base64url)."""

    key: str
    seq: int
    head: str


class Attestation(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a custodian attests about one conversation (no content)."""

    v: int = 1
    conversation: str
    digest: str
    streams: list[StreamHead]
    log_id: str
    tree_size: int
    issued_at_ms: int


class SignedAttestation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Transport form: exact statement bytes, signature, and the signer's key (informative)."""

    payload: str
    signature: str
    signing_key: str


def attest(
    chains: ConversationChains,
    *,
    log_id: str,
    tree_size: int,
    now_ms: int,
    signing: Ed25519PrivateKey,
) -> bytes:
    """The signed attestation file's bytes for ``chains``."""
    statement = Attestation(
        conversation=chains.conversation,
        digest=chains.digest,
        streams=[StreamHead(k, s, h) for k, s, h in chains.streams()],
        log_id=log_id,
        tree_size=tree_size,
        issued_at_ms=now_ms,
    )
    payload = encode(statement)
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signed = SignedAttestation(
        payload=b64e(payload),
        signature=b64e(signing.sign(ATTESTATION_DOMAIN + payload)),
        signing_key=b64e(public),
    )
    return encode(signed) + b"\n"


def open_attestation(data: bytes, signer: Ed25519PublicKey) -> Attestation:
    """Verify an attestation file under the other custodian's key, then decode it.

    Raises:
        MalformedInput: not an attestation file.
        BadSignature: not signed by ``signer`` (or changed).
    """
    signed = decode(data.strip(), SignedAttestation, max_size=MAX_ATTESTATION, what="attestation")
    payload = b64d(signed.payload, field="payload", max_len=MAX_ATTESTATION)
    try:
        signer.verify(b64d(signed.signature, field="signature"), ATTESTATION_DOMAIN + payload)
    except InvalidSignature as exc:
        raise BadSignature(
            "the attestation is not signed by that custodian's key (or was changed)"
        ) from exc
    try:
        return decode(payload, Attestation, max_size=MAX_ATTESTATION, what="attestation")
    except HotlineError as exc:
        raise MalformedInput(f"signed attestation does not decode: {exc.detail}") from exc


def differing_streams(theirs: Attestation, ours: ConversationChains | None) -> list[str]:
    """Human descriptions of every stream whose seq or head differs (empty: identical)."""
    mine = {} if ours is None else {k: (s, h) for k, s, h in ours.streams()}
    their = {s.key: (s.seq, s.head) for s in theirs.streams}
    out = []
    for key in sorted(set(mine) | set(their)):
        a, b = their.get(key), mine.get(key)
        if a == b:
            continue
        theirs_txt = f"seq {a[0]}" if a else "absent"
        ours_txt = f"seq {b[0]}" if b else "absent"
        if a and b and a[0] == b[0]:
            theirs_txt, ours_txt = (
                f"{theirs_txt} head {a[1][:12]}…",
                f"{ours_txt} head {b[1][:12]}…",
            )
        out.append(f"{key}: theirs {theirs_txt}, ours {ours_txt}")
    return out


def check_attestation(theirs: Attestation, ours: ConversationChains | None) -> None:
    """Compare another custodian's attestation with our own rebuild of the conversation.

    Raises:
        AttestationMismatch: the digests differ; ``streams`` names the differing streams.
    """
    digest = ours.digest if ours is not None else ""
    if digest == theirs.digest:
        return
    streams = differing_streams(theirs, ours)
    raise AttestationMismatch(
        f"transcript of {theirs.conversation} differs: " + ("; ".join(streams) or "digest only"),
        streams=streams,
        theirs=theirs.digest,
        ours=digest,
    )
