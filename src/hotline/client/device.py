"""The device: one principal's device talking to its home server (the client state machine).

``HotlineClient`` is the application-level API: register, publish keys, hand out cards, add and
remove contacts, send text end to end, process what arrives, verify contacts. Every operation
runs in a keystore transaction, so concurrent commands on one device never lose state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from hotline.client import outbox, policy_pin
from hotline.client.call_flow import CallFlows
from hotline.client.capture import (
    fetch_policy,
    flush_records,
    queue_record,
)
from hotline.client.cards import (
    make_card,
    read_card,
    sign_allowlist,
    sign_device_list,
)
from hotline.client.events import ClientEvent
from hotline.client.groups import Groups
from hotline.client.keystore import Keystore
from hotline.client.mailbox import Mailbox
from hotline.client.sas_flow import SasFlow, SasFlows
from hotline.client.sending import reencryptor, send_envelope
from hotline.client.session_cache import SessionCache
from hotline.client.state import (
    ClientState,
    ContactState,
    InviteState,
    MessageEntry,
    PendingRequest,
)
from hotline.client.transcript import Transcript, conversation_id
from hotline.client.transport import ServerApi
from hotline.crypto.identity import DOMAIN_AUTH, DOMAIN_ONE_TIME_KEY, IdentityKey, IdentityPublicKey
from hotline.crypto.olm import DeviceAccount
from hotline.crypto.passphrase import DEFAULT_SCRYPT, ScryptParams
from hotline.crypto.safety_number import safety_number
from hotline.wire import api
from hotline.wire.card import CardPayload
from hotline.wire.encoding import b64d, b64e
from hotline.wire.envelope import Receipt
from hotline.wire.errors import (
    AlreadyExists,
    BadSignature,
    CustodianNotAuthorised,
    ForbiddenByPolicy,
    HotlineError,
    IdentityChanged,
    InviteInvalid,
    MalformedInput,
    NotAContact,
    PolicyDowngrade,
    UnknownContact,
)
from hotline.wire.lists import DeviceKeys
from hotline.wire.records import RecordKind

ONE_TIME_KEY_TARGET = 50
ONE_TIME_KEY_LOW = 20
CARD_VALIDITY_DAYS = 30
#: seconds between two checks for a new organisation policy
POLICY_REFRESH = 300.0


def _device_keys(account: DeviceAccount, device_id: str) -> DeviceKeys:
    return DeviceKeys(
        device_id=device_id, curve25519=b64e(account.curve25519), ed25519=b64e(account.ed25519)
    )


class HotlineClient:
    """One device. Create with :meth:`register` or :meth:`open`; close with :meth:`close`."""

    def __init__(self, keystore: Keystore, server: ServerApi, clock: Callable[[], float]) -> None:
        self.keystore = keystore
        self.server = server
        self.clock = clock
        self._domain: str | None = None
        self._tx_lock = asyncio.Lock()
        #: the account as last committed: (its pickle in the keystore, the open account)
        self._account: tuple[str, DeviceAccount] | None = None
        #: Olm sessions kept open between operations, keyed by their pickles in the state
        self.sessions = SessionCache(keystore.pickle_key)
        self.sas = SasFlows(self)
        self._policy_checked_at = float("-inf")
        self.server.relogin = self.login
        #: handles "call" envelopes (the calls layer; None would disable calls)
        self.calls: CallFlows | None = CallFlows(self)
        #: small groups (``client.groups``)
        self.groups = Groups(self)
        #: the receiving side (``client.mailbox``): sync, receive, settle, listen
        self.mailbox = Mailbox(self)
        state = keystore.load()
        self.handle = state.handle
        self.device_id = state.device_id

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    async def register(
        cls,
        home: Path,
        passphrase: str,
        *,
        server_url: str,
        enrolment_token: str,
        handle: str,
        display_name: str,
        scrypt: ScryptParams = DEFAULT_SCRYPT,
        clock: Callable[[], float] = time.time,
        org_key: bytes | None = None,
    ) -> HotlineClient:
        """Create this device's keys and keystore and register the principal on its server.

        Raises:
            AlreadyExists: a keystore is already in ``home``, or the handle is taken.
            EnrolmentInvalid: the token is not valid for ``handle``.
            ServerUnavailable: the server cannot be reached (the keystore is not kept).
        """
        identity = IdentityKey.generate()
        account = DeviceAccount.generate()
        device_id = secrets.token_urlsafe(9)
        keys = _device_keys(account, device_id)
        state = ClientState(
            v=1,
            handle=handle,
            display_name=display_name,
            server_url=server_url.rstrip("/"),
            device_id=device_id,
            identity_key=b64e(identity.to_bytes()),
            account_pickle="",
            own_devices=[keys],
        )
        if Keystore.exists(home):
            raise AlreadyExists(f"a keystore already exists in {home}; use another HOTLINE_HOME")
        keystore = Keystore.create(home, passphrase, state, scrypt=scrypt)
        state.account_pickle = account.pickle(keystore.pickle_key)
        keystore.save(state)
        server = ServerApi(state.server_url)
        try:
            device_list = sign_device_list(identity, handle, 1, [keys], clock())
            await server.call(
                "POST",
                "/v1/register",
                api.RegisterRequest(
                    enrolment_token=enrolment_token,
                    handle=handle,
                    display_name=display_name,
                    identity_key=b64e(identity.public.to_bytes()),
                    device=keys,
                    device_list=device_list,
                ),
            )
        except BaseException:
            await server.close()
            shutil.rmtree(home, ignore_errors=True)
            raise
        client = cls(keystore, server, clock)
        await client.publish_keys()
        archive = await fetch_policy(server)
        try:
            async with client._tx() as (pinned, _):
                pinned.archive = archive
                await policy_pin.fetch(server, pinned, org_key)
        except CustodianNotAuthorised:
            # A server sealing records to a key the organisation did not name: this device
            # keeps nothing, so it cannot be used by mistake (threat model row 12).
            await client.close()
            shutil.rmtree(home, ignore_errors=True)
            raise
        return client

    @classmethod
    async def open(
        cls, home: Path, passphrase: str, *, clock: Callable[[], float] = time.time
    ) -> HotlineClient:
        """Unlock an existing keystore. Raises: KeystoreMissing, WrongPassphrase."""
        keystore = Keystore.open(home, passphrase)
        return cls(keystore, ServerApi(keystore.load().server_url), clock)

    async def close(self) -> None:
        if self.calls is not None:
            await self.calls.shutdown()
        await self.server.close()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[tuple[ClientState, DeviceAccount]]:
        """One read-modify-write of the state with the Olm account restored.

        The account stays open between transactions while the keystore holds the pickle it
        was opened from (the state is read from disk each time: another process's change is
        seen), and is pickled again only when keys were generated, published or used —
        unpickling and pickling it cost ~1.5 ms, more than the rest of a transaction. Olm
        sessions stay open the same way (``self.sessions``); each one the transaction used is
        pickled into the state once, before it is saved.
        """
        async with self._tx_lock, self.keystore.transaction() as state:
            kept, self._account = self._account, None  # dropped unless this one succeeds
            loaded = state.account_pickle
            if kept is not None and kept[0] == loaded:
                account = kept[1]
            else:
                account = DeviceAccount.from_pickle(loaded, self.keystore.pickle_key)
            self.sessions.begin()
            try:
                yield state, account
                self.sessions.write_back(state)  # each session used: pickled once, saved below
            except BaseException:
                self.sessions.abandon()  # nothing ahead of the keystore stays open
                raise
            finally:
                self.sessions.end()
            if account.changed or state.account_pickle != loaded:
                state.account_pickle = account.pickle(self.keystore.pickle_key)
            self._account = (state.account_pickle, account)

    def _save_now(self, state: ClientState) -> None:
        """Save the state in the middle of a transaction (an error follows, which may end it),
        with the sessions it used so far pickled in: their ratchets moved on and what they
        encrypted may be out already."""
        self.sessions.write_back(state)
        self.keystore.save(state)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- authentication and keys -------------------------------------------------------------
    async def login(self) -> None:
        """Sign a fresh server challenge with the device key to get a session token."""
        info = await self.server.call("GET", "/v1/server", response=api.ServerInfo)
        assert info is not None
        self._domain = info.domain
        challenge = await self.server.call(
            "POST",
            "/v1/auth/challenge",
            api.ChallengeRequest(device_id=self.device_id),
            api.ChallengeResponse,
        )
        assert challenge is not None
        nonce = b64d(challenge.challenge)
        state = self.keystore.load()
        account = DeviceAccount.from_pickle(state.account_pickle, self.keystore.pickle_key)
        signature = account.sign(DOMAIN_AUTH, nonce + b"\x00" + info.domain.encode("utf-8"))
        token = await self.server.call(
            "POST",
            "/v1/auth/token",
            api.TokenRequest(
                device_id=self.device_id, challenge=challenge.challenge, signature=b64e(signature)
            ),
            api.TokenResponse,
        )
        assert token is not None
        self.server.token = token.token

    async def _ensure_login(self) -> None:
        if self.server.token is None:
            await self.login()

    async def publish_keys(self, count: int = ONE_TIME_KEY_TARGET) -> int:
        """Publish ``count`` new signed one-time keys and a fresh fallback key."""
        await self._ensure_login()
        async with self._tx() as (_state, account):
            fresh = account.generate_one_time_keys(count)
            fallback = account.generate_fallback_key()

            def signed(key_id: str, key: bytes) -> api.OneTimeKey:
                return api.OneTimeKey(
                    key_id=key_id,
                    key=b64e(key),
                    signature=b64e(account.sign(DOMAIN_ONE_TIME_KEY, key)),
                )

            reply = await self.server.call(
                "POST",
                "/v1/keys",
                api.KeysUpload(
                    one_time_keys=[signed(k, v) for k, v in fresh], fallback_key=signed(*fallback)
                ),
                api.KeysUploadResponse,
            )
            account.mark_keys_as_published()
        assert reply is not None
        return reply.one_time_key_count

    # -- identity and cards ------------------------------------------------------------------
    def identity(self) -> IdentityKey:
        return IdentityKey.from_bytes(b64d(self.keystore.load().identity_key))

    async def my_card(self, *, new: bool = False, validity_days: int = CARD_VALIDITY_DAYS) -> str:
        """My card as a ``hotline:`` URI: the current valid one, or a new one (new invite)."""
        now = self.clock()
        if not new:
            for invite in self.keystore.load().invites.values():
                if not invite.revoked and invite.expires_at > now + 24 * 3600:
                    return invite.card
        await self._ensure_login()
        secret = secrets.token_bytes(32)
        invite_id = secrets.token_urlsafe(12)
        async with self._tx() as (state, _):
            expires = int(now + policy_pin.card_days(state, validity_days) * 86400)
            identity = IdentityKey.from_bytes(b64d(state.identity_key))
            card = make_card(
                identity,
                CardPayload(
                    v=1,
                    display_name=state.display_name,
                    handle=state.handle,
                    identity_key=b64e(identity.public.to_bytes()),
                    server_url=state.server_url,
                    invite_id=invite_id,
                    invite_secret=b64e(secret),
                    issued_at=int(now),
                    expires_at=expires,
                ),
            )
            await self.server.call(
                "POST",
                "/v1/invites",
                api.InviteCreate(
                    invite_id=invite_id,
                    verifier=b64e(hashlib.sha256(secret).digest()),
                    expires_at=expires,
                ),
            )
            state.invites[invite_id] = InviteState(
                invite_id=invite_id, secret=b64e(secret), expires_at=expires, card=card.to_uri()
            )
            self._local_record(
                state, "card_issued", [], invite_id=invite_id, expires_at=str(expires)
            )
            await flush_records(self.server, state)
        return card.to_uri()

    async def revoke_card(self, invite_id: str | None = None) -> list[str]:
        """Revoke one invite (or every live one); returns the invite ids revoked."""
        await self._ensure_login()
        revoked: list[str] = []
        async with self._tx() as (state, _):
            for invite in state.invites.values():
                if invite.revoked or (invite_id and invite.invite_id != invite_id):
                    continue
                await self.server.call("DELETE", f"/v1/invites/{invite.invite_id}")
                invite.revoked = True
                revoked.append(invite.invite_id)
                self._local_record(state, "card_revoked", [], invite_id=invite.invite_id)
            await flush_records(self.server, state)
        if invite_id and not revoked:
            raise InviteInvalid(f"no live invite {invite_id}")
        return revoked

    def _local_record(
        self, state: ClientState, kind: RecordKind, others: list[str], **detail: str
    ) -> None:
        """Queue the record of a change made on this device (sent on the next flush)."""
        queue_record(
            state,
            kind=kind,
            side="local",
            conversation=conversation_id(state.handle, others[0]) if len(others) == 1 else "",
            now_ms=self.now_ms(),
            sender=state.handle,
            recipients=others,
            detail=detail,
        )

    # -- contacts ----------------------------------------------------------------------------
    def contacts(self) -> list[ContactState]:
        return sorted(self.keystore.load().contacts.values(), key=lambda c: c.handle)

    def contact(self, name: str) -> ContactState:
        """Find a contact by handle, or by a unique prefix of handle or display name.

        Raises: UnknownContact.
        """
        contacts = self.keystore.load().contacts
        if name in contacts:
            return contacts[name]
        folded = name.casefold()
        matches = [
            c
            for c in contacts.values()
            if c.handle.startswith(folded) or c.display_name.casefold().startswith(folded)
        ]
        if len(matches) != 1:
            known = ", ".join(sorted(contacts)) or "none yet"
            raise UnknownContact(f"no single contact matches {name!r} (contacts: {known})")
        return matches[0]

    async def add_contact(self, card_text: str) -> ContactState:
        """Verify a card, allow its owner, and send them a contact request with my card.

        Raises:
            MalformedCard, BadSignature, CardExpired: the card is not acceptable.
            InviteInvalid: the card's owner revoked it (answered by their server).
        """
        card = read_card(card_text, self.clock())
        payload = card.payload
        if payload.handle == self.handle:
            raise MalformedInput("that is your own card")
        my_card = await self.my_card()
        await self._ensure_login()
        async with self._tx() as (state, _):
            previous = state.contacts.get(payload.handle)
            active = [c for c in state.contacts.values() if c.status != "removed"]
            policy_pin.check_count(state, "max_contacts", len(active) + (previous is None))
            contact = self._pin_contact(state, payload, status="requested")
            contact.archive_banner = await self._contact_banner(state, contact)
            self._local_record(
                state,
                "contact_added",
                [payload.handle],
                action="requested",
                identity_key=payload.identity_key,
            )
            # Allow them first, so their acceptance can reach us as soon as they send it.
            await self._upload_allowlist(state)
            try:
                await self.server.call(
                    "POST",
                    "/v1/contact-requests",
                    api.ContactRequest(
                        to=payload.handle,
                        invite_id=payload.invite_id,
                        invite_secret=payload.invite_secret,
                        card=my_card,
                    ),
                )
            except HotlineError:
                # Refused (e.g. a revoked card): whoever holds it must not stay allowed.
                if previous is None:
                    del state.contacts[payload.handle]
                else:
                    state.contacts[payload.handle] = previous
                await self._upload_allowlist(state)
                self._save_now(state)  # keeps the record of the attempt, pending
                raise
        return contact

    def _pin_contact(self, state: ClientState, payload: CardPayload, status: str) -> ContactState:
        existing = state.contacts.get(payload.handle)
        if (
            existing is not None
            and existing.status != "removed"
            and existing.identity_key == payload.identity_key
        ):
            existing.display_name = payload.display_name
            if existing.status == "requested" and status == "active":
                existing.status = "active"
            return existing
        contact = ContactState(
            handle=payload.handle,
            display_name=payload.display_name,
            identity_key=payload.identity_key,
            server_url=payload.server_url,
            status="active" if status == "active" else "requested",
            added_at_ms=self.now_ms(),
        )
        state.contacts[payload.handle] = contact
        # A new identity key means old sessions are for someone else: drop them.
        for key in [k for k in state.sessions if k.startswith(payload.handle + "/")]:
            del state.sessions[key]
        return contact

    async def _upload_allowlist(self, state: ClientState) -> None:
        members = [c.handle for c in state.contacts.values() if c.status in ("active", "requested")]
        identity = IdentityKey.from_bytes(b64d(state.identity_key))
        version = state.allowlist_version + 1
        signed = sign_allowlist(identity, state.handle, version, members, self.clock())
        await self.server.call("PUT", "/v1/allowlist", api.SignedListUpload(signed=signed))
        state.allowlist_version = version

    async def set_auto_accept(self, auto: bool) -> None:
        """Accept contact requests that carry a valid invite automatically, or ask first."""
        async with self._tx() as (state, _):
            state.settings.auto_accept = auto

    async def accept_request(self, sender: str) -> ContactState:
        """Accept a pending contact request (when auto-accept is off)."""
        await self._ensure_login()
        async with self._tx() as (state, account):
            request = next((r for r in state.pending_requests if r.sender == sender), None)
            if request is None:
                raise UnknownContact(f"no pending request from {sender}")
            contact = await self._accept(state, account, request)
            state.pending_requests.remove(request)
        return contact

    async def _accept(
        self, state: ClientState, account: DeviceAccount, request: PendingRequest
    ) -> ContactState:
        card = read_card(request.card, self.clock())
        contact = self._pin_contact(state, card.payload, status="active")
        await self._upload_allowlist(state)
        await send_envelope(self, state, account, contact.handle, "contact_accepted")
        self._local_record(
            state,
            "contact_added",
            [contact.handle],
            action="accepted",
            identity_key=contact.identity_key,
        )
        contact.archive_banner = await self._contact_banner(state, contact)
        return contact

    async def remove_contact(self, name: str) -> None:
        """Tell the contact (end to end) and take them off my signed allowlist."""
        await self._ensure_login()
        async with self._tx() as (state, account):
            contact = state.contacts[self.contact(name).handle]
            if contact.status == "active":
                # They may have cut us off already, or their key changed: remove all the same.
                with contextlib.suppress(NotAContact, IdentityChanged):
                    await send_envelope(self, state, account, contact.handle, "contact_removed")
            contact.status = "removed"
            self._local_record(state, "contact_removed", [contact.handle], action="removed")
            await self._upload_allowlist(state)
            await flush_records(self.server, state)

    async def _contact_banner(self, state: ClientState, contact: ContactState) -> str:
        """Which archive records the contact's side, from their server's signed policy."""
        if contact.server_url.rstrip("/") == state.server_url.rstrip("/"):
            return state.archive.banner if state.archive else ""
        remote = ServerApi(contact.server_url)
        try:
            pin = await fetch_policy(remote)
        except HotlineError:
            return ""
        finally:
            await remote.close()
        return pin.banner if pin else f"{contact.handle}'s server keeps no records archive."

    def archive_banners(self, name: str) -> list[str]:
        """Every archive that records the conversation with a contact, and under which law."""
        state = self.keystore.load()
        contact = self.contact(name)
        banners = (
            [state.archive.banner]
            if state.archive
            else [f"{state.handle}'s server keeps no records archive."]
        )
        if contact.archive_banner and contact.archive_banner not in banners:
            banners.append(contact.archive_banner)
        return banners

    # -- verification ------------------------------------------------------------------------
    def safety_number(self, name: str) -> str:
        """The 60-digit safety number with a contact (same digits on both sides)."""
        state = self.keystore.load()
        contact = self.contact(name)
        mine = IdentityKey.from_bytes(b64d(state.identity_key)).public
        theirs_raw = b64d(contact.changed_identity_key or contact.identity_key)
        return safety_number(
            mine,
            state.handle.encode(),
            IdentityPublicKey.from_bytes(theirs_raw),
            contact.handle.encode(),
        )

    async def mark_verified(self, name: str) -> ContactState:
        """Record that the safety number was compared; adopts a changed key if there was one."""
        async with self._tx() as (state, _):
            contact = state.contacts[self.contact(name).handle]
            if contact.changed_identity_key:
                contact.identity_key = contact.changed_identity_key
                contact.changed_identity_key = ""
                contact.devices = []
                contact.device_list_version = 0
                for key in [k for k in state.sessions if k.startswith(contact.handle + "/")]:
                    del state.sessions[key]
            contact.verified = True
        return contact

    async def start_sas(self, name: str) -> SasFlow:
        """Start an interactive SAS check with a contact (they answer from one device)."""
        await self._ensure_login()
        async with self._tx() as (state, account):
            return await self.sas.start(state, account, self.contact(name).handle)

    async def confirm_sas(self, flow_id: str) -> SasFlow:
        """The user compared the codes and they match."""
        async with self._tx() as (state, account):
            return await self.sas.confirm(state, account, flow_id)

    async def cancel_sas(self, flow_id: str) -> None:
        async with self._tx() as (state, account):
            await self.sas.cancel(state, account, flow_id)

    # -- sending -----------------------------------------------------------------------------
    async def send_text(self, name: str, text: str) -> MessageEntry:
        """Encrypt ``text`` for every device of the contact and my other devices, and send it.

        Raises:
            UnknownContact, NotAContact, IdentityChanged: who may not be written to.
        """
        await self._ensure_login()
        handle = self.contact(name).handle
        async with self._tx() as (state, account):
            contact = state.contacts[handle]
            if contact.status != "active":
                raise NotAContact(f"{handle} has not accepted you as a contact (yet)")
            if contact.changed_identity_key:
                raise IdentityChanged(
                    f"{handle}'s identity key changed; compare the new safety number "
                    f"('hotline verify {handle}') and confirm it before sending"
                )
            entry = await send_envelope(self, state, account, handle, "text", text=text)
        assert entry is not None
        return entry

    async def refresh_policy(self, *, force: bool = False) -> list[ClientEvent]:
        """Take a newer signed policy; a forged or downgraded one is refused, loudly.

        Asked at most every ``POLICY_REFRESH`` seconds unless ``force``.
        """
        if not force and self.clock() - self._policy_checked_at < POLICY_REFRESH:
            return []
        self._policy_checked_at = self.clock()
        async with self._tx() as (state, _):
            try:
                await policy_pin.fetch(self.server, state)
            except (
                BadSignature,
                PolicyDowngrade,
                ForbiddenByPolicy,
                CustodianNotAuthorised,
            ) as exc:
                return [
                    ClientEvent(
                        "warning", state.handle, f"policy refused: {exc.code}: {exc.detail}"
                    )
                ]
        return []

    async def flush_outbox(self) -> list[str]:
        """Send what waits in the outbox (called by sync; also before every send)."""
        async with self._tx() as (state, account):
            return await outbox.flush(self.server, state, reencryptor(self, account))

    async def flush_records(self) -> list[str]:
        """Submit records waiting for the log (received messages, contact changes)."""
        async with self._tx() as (state, _):
            return await flush_records(self.server, state)

    # -- receiving ---------------------------------------------------------------------------
    async def sync(self) -> list[ClientEvent]:
        """Send what waits in the outbox, then fetch, process and acknowledge the mailbox."""
        return await self.mailbox.sync()

    async def process(self, items: list[api.InboxItem]) -> list[ClientEvent]:
        """Receive mailbox items, then settle what they oblige (``Mailbox.process``)."""
        return await self.mailbox.process(items)

    async def receive(self, items: list[api.InboxItem]) -> list[ClientEvent]:
        """Handle, save and acknowledge mailbox items (``Mailbox.receive``)."""
        return await self.mailbox.receive(items)

    @property
    def unsettled(self) -> bool:
        """Whether delivery receipts or records received here may still wait to be sent."""
        return self.mailbox.unsettled

    async def settle(self) -> list[ClientEvent]:
        """Send the receipts and records received items oblige (``Mailbox.settle``)."""
        return await self.mailbox.settle()

    def listen(self, *, reconnect: bool = False) -> AsyncIterator[ClientEvent]:
        """Yield events as items are pushed over the websocket (``Mailbox.listen``)."""
        return self.mailbox.listen(reconnect=reconnect)

    async def _top_up_keys(self) -> None:
        reply = await self.server.call(
            "POST", "/v1/keys", api.KeysUpload(one_time_keys=[]), api.KeysUploadResponse
        )
        if reply is not None and reply.one_time_key_count < ONE_TIME_KEY_LOW:
            await self.publish_keys(ONE_TIME_KEY_TARGET - reply.one_time_key_count)

    async def send_read_receipts(self, name: str) -> int:
        """Tell a contact which of their messages I have now read."""
        await self._ensure_login()
        handle = self.contact(name).handle
        async with self._tx() as (state, account):
            unread = [
                m
                for m in state.messages
                if not m.outgoing and m.sender == handle and m.status == "received"
            ]
            if not unread:
                return 0
            await send_envelope(
                self,
                state,
                account,
                handle,
                "receipt",
                receipt=Receipt(kind="read", message_ids=[m.message_id for m in unread]),
            )
            for m in unread:
                m.status = "read"
        return len(unread)

    # -- reading state -----------------------------------------------------------------------
    def history(self, name: str) -> list[MessageEntry]:
        handle = self.contact(name).handle
        conversation = conversation_id(self.handle, handle)
        return [m for m in self.keystore.history() if m.conversation == conversation]

    def transcript_digest(self, name: str) -> str:
        conversation = conversation_id(self.handle, self.contact(name).handle)
        transcript = self.keystore.load().transcripts.get(conversation, Transcript(conversation))
        return transcript.digest()

    def pending_requests(self) -> list[PendingRequest]:
        return list(self.keystore.load().pending_requests)


__all__ = ["HotlineClient"]
