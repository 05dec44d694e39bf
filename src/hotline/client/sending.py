"""The sending side of a device: build, record, encrypt and deliver one envelope.

Functions taking the :class:`~hotline.client.device.HotlineClient`, called inside one of its
keystore transactions (``client._tx``) with the state and Olm account it holds. An envelope is
encrypted for every device of both sides of the conversation, their reading aides and this
principal's other devices (:func:`_targets`); a send the server cannot take now waits in the
outbox (``client.outbox``), which re-encrypts it for the devices current when it is flushed.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from hotline.client import channel, outbox, policy_pin
from hotline.client.capture import RECORD_KIND, build_record, check_receipt
from hotline.client.delegation_state import HeldDelegation
from hotline.client.delegation_view import aide_targets
from hotline.client.device_lists import claim_sessions, devices_of
from hotline.client.state import ClientState, MessageEntry, MessageStatus, OutboxItem
from hotline.client.transcript import Transcript, conversation_id
from hotline.crypto.olm import DeviceAccount
from hotline.wire import api
from hotline.wire.codec import decode, encode
from hotline.wire.delegation import DelegationNotice
from hotline.wire.encoding import b64d, b64e
from hotline.wire.envelope import CallSignal, Envelope, EnvelopeKind, Receipt, SasStep
from hotline.wire.errors import DeviceListMismatch, HotlineError
from hotline.wire.groups import GroupPayload
from hotline.wire.lists import DeviceKeys
from hotline.wire.policy import ContentClass

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient


async def send_envelope(
    client: HotlineClient,
    state: ClientState,
    account: DeviceAccount,
    to: str,
    kind: EnvelopeKind,
    *,
    text: str = "",
    receipt: Receipt | None = None,
    sas: SasStep | None = None,
    call: CallSignal | None = None,
    group: GroupPayload | None = None,
    delegation: DelegationNotice | None = None,
    acting_for: HeldDelegation | None = None,
) -> MessageEntry | None:
    """Build, record and send one envelope to ``to`` (queued in the outbox if the server
    cannot take it now); returns the history entry of a ``text``.

    With ``acting_for`` this device is an aide writing for that principal (client.delegation):
    the conversation is the principal's, and the envelope, request and record name them.
    """
    principal = acting_for.principal if acting_for is not None else None
    conversation = conversation_id(principal or state.handle, to)
    transcript = state.transcripts.setdefault(conversation, Transcript(conversation))
    sender_key = channel.session_key(state.handle, state.device_id)
    chained = kind == "text"
    seq, prev = transcript.next_outgoing(sender_key) if chained else (0, "")
    message_id = secrets.token_urlsafe(16)
    envelope = Envelope(
        v=1,
        kind=kind,
        message_id=message_id,
        sender=state.handle,
        sender_device=state.device_id,
        recipient=to,
        sent_at_ms=client.now_ms(),
        conversation=conversation,
        seq=seq,
        prev=prev,
        text=text,
        receipt=receipt,
        sas=sas,
        call=call,
        group=group,
        delegation=delegation,
        on_behalf_of=principal,
        grant_id=acting_for.grant_id if acting_for is not None else None,
    )
    plaintext = encode(envelope)
    leaf = _sender_record(client, state, envelope, plaintext)
    warnings = await outbox.flush(client.server, state, reencryptor(client, account))
    content = policy_pin.content_class(kind)
    reply, status = await _deliver(
        client, state, account, to, message_id, plaintext, leaf, content, principal
    )
    record_index = -1
    if reply is not None and reply.receipt is not None and leaf is not None:
        try:
            record_index = await check_receipt(client.server, state, reply.receipt, leaf)
        except HotlineError as exc:
            warnings.append(f"{exc.code}: {exc.detail}")
    if not chained:
        return None
    transcript.record(sender_key, seq, plaintext)
    entry = MessageEntry(
        message_id=message_id,
        conversation=conversation,
        sender=state.handle,
        sender_device=state.device_id,
        text=text,
        sent_at_ms=envelope.sent_at_ms,
        seq=seq,
        status=status,
        outgoing=True,
        warnings=warnings,
        record_index=record_index,
        on_behalf_of=principal or "",
    )
    state.messages.append(entry)
    return entry


async def build_request(
    client: HotlineClient,
    state: ClientState,
    account: DeviceAccount,
    to: str,
    message_id: str,
    plaintext: bytes,
    leaf: bytes | None,
    content: ContentClass,
    on_behalf_of: str | None,
    *,
    refresh: bool,
) -> api.SendRequest | None:
    """Encrypt ``plaintext`` for every current device (None: there is no device to address)."""
    targets = await _targets(client, state, account, to, on_behalf_of, refresh=refresh)
    ciphertexts = channel.encrypt_for_all(state, client.sessions, targets, plaintext)
    if not ciphertexts:
        return None  # a principal whose only device is this one, writing to itself
    return api.SendRequest(
        message_id=message_id,
        to=to,
        ciphertexts=ciphertexts,
        record=b64e(leaf) if leaf is not None else None,
        content_class=content,
        known_tree_size=state.last_head.size if state.last_head is not None else 0,
        on_behalf_of=on_behalf_of,
    )


async def _deliver(
    client: HotlineClient,
    state: ClientState,
    account: DeviceAccount,
    to: str,
    message_id: str,
    plaintext: bytes,
    leaf: bytes | None,
    content: ContentClass,
    on_behalf_of: str | None,
) -> tuple[api.SendResponse | None, MessageStatus]:
    """Send now, or keep it in the outbox (server down, or older messages still waiting)."""

    async def encrypt(refresh: bool) -> api.SendRequest | None:
        return await build_request(
            client,
            state,
            account,
            to,
            message_id,
            plaintext,
            leaf,
            content,
            on_behalf_of,
            refresh=refresh,
        )

    request = await encrypt(refresh=False)
    if request is None:
        return None, "sent"
    if state.outbox:
        outbox.enqueue(state, request, plaintext, leaf)
        return None, "sending"
    try:
        try:
            return await outbox.post(client.server, request), "sent"
        except DeviceListMismatch:
            fresh = await encrypt(refresh=True)
            if fresh is None:
                raise
            request = fresh
            return await outbox.post(client.server, request), "sent"
    except outbox.TRANSIENT:
        outbox.enqueue(state, request, plaintext, leaf)
        return None, "sending"


def reencryptor(client: HotlineClient, account: DeviceAccount) -> outbox.Reencrypt:
    async def reencrypt(state: ClientState, item: OutboxItem) -> api.SendRequest:
        leaf = b64d(item.leaf) if item.leaf else None
        # the saved request keeps what the first encryption was for (content, principal)
        saved = decode(b64d(item.request), api.SendRequest)
        request = await build_request(
            client,
            state,
            account,
            item.to,
            item.message_id,
            b64d(item.plaintext),
            leaf,
            saved.content_class,
            saved.on_behalf_of,
            refresh=True,
        )
        if request is None:
            raise DeviceListMismatch("no device left to address")
        return request

    return reencrypt


def _sender_record(
    client: HotlineClient, state: ClientState, envelope: Envelope, plaintext: bytes
) -> bytes | None:
    """The sealed record the server must append before relaying ``envelope``."""
    if state.archive is None:
        return None
    body = envelope.text
    if envelope.receipt is not None:
        body = f"{envelope.receipt.kind}: {' '.join(envelope.receipt.message_ids)}"
    elif envelope.sas is not None:
        body = f"verification step {envelope.sas.step}"
    elif envelope.call is not None:
        body = f"call {envelope.call.call_id}: {envelope.call.event}"
    elif envelope.group is not None:
        # a Megolm session key is never put on the record (the messages it opens are)
        body = f"{envelope.kind} {envelope.group.group_id} {envelope.group.session_id}"
        plaintext = plaintext if envelope.kind == "group_roster" else b""
    detail = None
    if envelope.on_behalf_of is not None:  # an aide's record names whom it wrote for
        detail = {"on_behalf_of": envelope.on_behalf_of, "grant_id": envelope.grant_id or ""}
    _, leaf = build_record(
        state,
        kind=RECORD_KIND[envelope.kind],
        side="sent",
        now_ms=client.now_ms(),
        sender=state.handle,
        recipients=[envelope.recipient],
        conversation=envelope.conversation,
        message_id=envelope.message_id,
        created_at_ms=envelope.sent_at_ms,
        body=body,
        envelope=plaintext,
        detail=detail,
    )
    return leaf


async def _targets(
    client: HotlineClient,
    state: ClientState,
    account: DeviceAccount,
    to: str,
    on_behalf_of: str | None,
    *,
    refresh: bool,
) -> list[tuple[str, DeviceKeys]]:
    """Every device to encrypt for, each with an Olm session ready: both sides of the
    conversation (an aide's: the counterpart and the principal), their aides, my others."""
    sides = [to, on_behalf_of or state.handle]
    targets: list[tuple[str, DeviceKeys]] = []
    for handle in dict.fromkeys([*sides, state.handle]):
        devices = await devices_of(client, state, handle, refresh=refresh)
        missing = [
            d
            for d in devices
            if d.device_id != state.device_id
            and not channel.has_session(state, handle, d.device_id)
        ]
        if missing:
            await claim_sessions(client, state, account, handle, missing)
        targets += [(handle, d) for d in devices if d.device_id != state.device_id]
    # Aides of either side with the "read" right (client.delegation_view) read along.
    targets += await aide_targets(client, state, account, sides, refresh=refresh)
    return list({d.device_id: (h, d) for h, d in reversed(targets)}.values())
