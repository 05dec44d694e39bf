"""Small groups on the server: members' rosters, and relaying one Megolm message to them all.

``PUT /v1/groups`` stores the caller's own copy of a group roster (verified by its device
first; the server checks the signature is self-consistent, that the caller is listed with its
registered identity key, the policy's size limit, and that the version never goes down).
``DELETE /v1/groups/{group_id}`` forgets it (the caller left or was removed).

``POST /v1/groups/messages`` relays one Megolm ciphertext to every member device. A local
member gets it only if *its own* roster lists the sender, addressed to exactly its current
devices; a remote member's copy goes into the durable federation queue and its server checks
the same on arrival. The sender's sealed record is appended once, not once per member.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

from hotline.crypto.identity import IdentityPublicKey
from hotline.server.context import Caller, ServerState, authenticate, read_struct, state_of
from hotline.server.federation_client import domain_of
from hotline.server.policy_gate import refuse
from hotline.server.responses import ok
from hotline.server.routes_messages import sender_record, store_message
from hotline.store import DeliveryItem, GroupSendContext, OutboundItem, SignedBlob
from hotline.wire import api
from hotline.wire.codec import decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import (
    DeviceListMismatch,
    MalformedInput,
    NotAGroupMember,
    QueueFull,
    RosterRefused,
    UnknownPeer,
    UnknownPrincipal,
)
from hotline.wire.federation import RemoteMessage
from hotline.wire.groups import (
    ROSTER_DOMAIN,
    GroupCiphertext,
    GroupMembershipUpload,
    GroupRecipient,
    GroupRoster,
    GroupSendRequest,
)

#: mailbox kind of a Megolm group message
MEGOLM_KIND = "megolm"


async def check_group_policy(state: ServerState, caller: Caller, members: int) -> None:
    """Raises: ForbiddenByPolicy (groups off, or more members than the policy allows)."""
    policy = state.policy
    if policy is None:
        return
    if not policy.features.groups:
        await refuse(state, caller, "groups", "group conversations are off")
    if members > policy.max_group_members:
        await refuse(
            state,
            caller,
            "max_group_members",
            f"{members} group members; at most {policy.max_group_members}",
        )


async def put_membership(request: Request) -> Response:
    caller = await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, GroupMembershipUpload)
    payload = b64d(body.roster.payload, field="roster")
    roster = decode(payload, GroupRoster, what="group roster")
    signature = b64d(body.roster.signature, field="signature")
    IdentityPublicKey.from_bytes(b64d(roster.signer_key)).verify(ROSTER_DOMAIN, payload, signature)
    principal = await state.store.get_principal(caller.handle)
    if principal is None:
        raise UnknownPrincipal(caller.handle)
    mine = next((m for m in roster.members if m.handle == caller.handle), None)
    if mine is None or b64d(mine.identity_key) != principal.identity_key:
        raise RosterRefused("the roster does not list you with your identity key")
    await check_group_policy(state, caller, len(roster.members))
    await state.store.put_group_membership(
        caller.handle,
        roster.group_id,
        SignedBlob(roster.version, payload, signature),
        [m.handle for m in roster.members],
    )
    return ok({"group_id": roster.group_id, "version": roster.version})


async def drop_membership(request: Request) -> Response:
    caller = await authenticate(request)
    group_id = request.path_params["group_id"]
    dropped = await state_of(request).store.drop_group_membership(caller.handle, group_id)
    return ok({"dropped": dropped})


def remote_message_id(message_id: str, to: str) -> str:
    """The id of one member's copy on a peer (its server deduplicates by message id, and two
    members on one peer must not collide)."""
    return b64e(hashlib.sha256(f"{message_id}\x00{to}".encode()).digest()[:18])


async def send_group(request: Request) -> Response:
    """Relay one Megolm message: one read transaction for every check (whatever the group's
    size), one write transaction that stores the mailbox items, the peers' queue entries and
    the sender's record and reads back the log tail, then (with the archive on) one more to
    store the signed tree head of the receipt."""
    caller = await authenticate(request)
    state = state_of(request)
    body = await read_struct(request, GroupSendRequest)
    group_id = body.group_id
    handles = [r.to for r in body.recipients]
    home = state.config.domain
    local = [h for h in handles if domain_of(h) == home]
    domains = sorted({domain_of(h) for h in handles} - {home})
    context = await state.store.group_send_context(
        caller.device_id, caller.handle, group_id, local, domains
    )
    cap = state.config.max_pending_per_device
    if context.undelivered >= cap:
        raise QueueFull(f"{cap} of your messages still wait for their recipients")
    if caller.handle not in context.roster:
        raise NotAGroupMember("you are not in this group")
    ciphertext = b64d(body.body, field="body")
    if decode(ciphertext, GroupCiphertext, what="group ciphertext").group_id != group_id:
        raise MalformedInput("the ciphertext is for another group")
    await check_group_policy(state, caller, 0)
    if len(set(handles)) != len(handles):
        raise MalformedInput("a member is addressed twice")
    items: list[DeliveryItem] = []
    queued: list[OutboundItem] = []
    for recipient in body.recipients:
        if recipient.to not in context.roster:
            raise NotAGroupMember(f"{recipient.to} is not on your roster of this group")
        if domain_of(recipient.to) == home:
            _check_local(caller, context, recipient.to, recipient.device_ids)
            items += [DeliveryItem(d, MEGOLM_KIND, ciphertext) for d in recipient.device_ids]
        else:
            queued.append(_remote_item(state, caller, context, body, recipient))
    record = sender_record(state, caller, body.record)
    now = state.now()
    # store_message wakes the members' sockets and the peer queue once it has committed
    stored, receipt = await store_message(state, caller, body, items, queued, record, now)
    return ok(
        api.SendResponse(message_id=body.message_id, stored=stored, receipt=receipt), status=201
    )


def _check_local(caller: Caller, context: GroupSendContext, to: str, device_ids: list[str]) -> None:
    """May the caller's group message reach these devices of a local member?

    Raises:
        NotAGroupMember: ``to`` does not hold the caller on its roster of the group.
        DeviceListMismatch: not exactly ``to``'s current devices (without the sender's).
    """
    if to != caller.handle and to not in context.listed_by:
        raise NotAGroupMember(f"{to} does not have you in this group")
    expected = set(context.devices.get(to, []))
    expected.discard(caller.device_id)
    if set(device_ids) != expected or len(device_ids) != len(expected):
        raise DeviceListMismatch(
            f"address exactly the current devices of {to}", handle=to, expected=sorted(expected)
        )


def _remote_item(
    state: ServerState,
    caller: Caller,
    context: GroupSendContext,
    body: GroupSendRequest,
    recipient: GroupRecipient,
) -> OutboundItem:
    """The durable-queue entry for a member on a peer server. Raises: UnknownPeer."""
    destination = domain_of(recipient.to)
    if destination not in context.peers:
        raise UnknownPeer(f"{destination} is not a pinned peer of {state.config.domain}")
    message_id = remote_message_id(body.message_id, recipient.to)
    message = RemoteMessage(
        message_id=message_id,
        sender=caller.handle,
        sender_device=caller.device_id,
        to=recipient.to,
        ciphertexts=[
            api.DeviceCiphertext(device_id=d, type=0, body=body.body) for d in recipient.device_ids
        ],
        group=body.group_id,
    )
    return OutboundItem(destination, message_id, caller.device_id, encode(message))


async def deliver_remote_group(state: ServerState, message: RemoteMessage) -> bool:
    """A peer relays a member's Megolm message to a local member (federation ``deliver``).

    Raises:
        NotAGroupMember: the recipient does not hold the sender on its roster of the group.
        DeviceListMismatch: not exactly the recipient's current devices.
    """
    context = await state.store.group_send_context(
        message.sender_device, message.sender, message.group, [message.to], []
    )
    caller = Caller(message.sender_device, message.sender)
    addressed = [c.device_id for c in message.ciphertexts]
    _check_local(caller, context, message.to, addressed)
    items = [
        DeliveryItem(c.device_id, MEGOLM_KIND, b64d(c.body, field="body"))
        for c in message.ciphertexts
    ]
    for item in items:
        if decode(item.body, GroupCiphertext, what="group ciphertext").group_id != message.group:
            raise MalformedInput("the ciphertext is for another group")
    stored = await state.store.enqueue(
        message_id=message.message_id,
        sender_handle=message.sender,
        sender_device=message.sender_device,
        items=items,
        now=state.now(),
    )
    state.hub.notify(addressed)
    return stored
