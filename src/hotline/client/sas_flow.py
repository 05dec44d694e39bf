"""Interactive SAS verification between two devices, over the end-to-end channel.

Steps (each an end-to-end encrypted ``sas`` envelope):

1. ``start`` — the starter sends ``SHA-256(its SAS public key)`` (a commitment) to every device
   of the contact.
2. ``key`` — the responding device answers with its SAS public key.
3. ``key`` — the starter binds that device, then reveals its key; the responder checks it
   against the commitment. Because the responder revealed first and the starter was committed,
   neither side (nor a man in the middle) can grind keys to make the short codes collide.
4. Both users compare the codes (three 4-digit numbers, or seven emoji). Whoever confirms sends
   ``mac``: a MAC, under the SAS key, of their identity key. Each side checks the other's MAC
   against the identity key it pinned from the card; the contact becomes verified once this
   side confirmed and the other side's MAC verified.

The vodozemac ``Sas`` object cannot be stored, so a flow lives in the memory of the process
that runs it (``hotline verify CONTACT --sas`` on both sides).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hotline.client.events import ClientEvent
from hotline.client.sending import send_envelope
from hotline.client.state import ClientState
from hotline.crypto.olm import DeviceAccount
from hotline.crypto.sas import SasState, SasVerification
from hotline.wire.encoding import b64d, b64e
from hotline.wire.envelope import Envelope, SasStep, SasStepName
from hotline.wire.errors import NotVerified, UnknownContact

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient

IDENTITY_INFO = "identity-key"


@dataclass
class SasFlow:
    flow_id: str
    peer: str
    starter: bool
    sas: SasVerification
    commitment: bytes = b""
    confirmed: bool = False
    their_mac_ok: bool = False
    codes: tuple[int, int, int] | None = None
    emoji: list[tuple[str, str]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.confirmed and self.their_mac_ok


class SasFlows:
    """The SAS flows this process runs, by flow id."""

    def __init__(self, client: HotlineClient) -> None:
        self.client = client
        self.flows: dict[str, SasFlow] = {}

    async def start(self, state: ClientState, account: DeviceAccount, peer: str) -> SasFlow:
        if peer not in state.contacts:
            raise UnknownContact(f"{peer} is not a contact")
        flow_id = secrets.token_urlsafe(12)
        sas = SasVerification(state.handle, state.device_id, peer)
        flow = SasFlow(flow_id, peer, starter=True, sas=sas)
        self.flows[flow_id] = flow
        commitment = b64e(hashlib.sha256(sas.public_key).digest())
        await self._send(state, account, flow, "start", data=commitment)
        return flow

    async def confirm(self, state: ClientState, account: DeviceAccount, flow_id: str) -> SasFlow:
        """The user saw the same codes on both devices: vouch for my identity key."""
        flow = self.flows[flow_id]
        if (
            flow.sas.state is not SasState.KEYS_EXCHANGED
            and flow.sas.state is not SasState.VERIFIED
        ):
            raise NotVerified("the codes are not there yet; wait for the other side")
        my_key = b64e(self._identity(state))
        await self._send(state, account, flow, "mac", mac=flow.sas.mac(IDENTITY_INFO, my_key))
        flow.confirmed = True
        self._finish(state, flow)
        return flow

    async def cancel(self, state: ClientState, account: DeviceAccount, flow_id: str) -> None:
        flow = self.flows.pop(flow_id, None)
        if flow is not None:
            flow.sas.cancel()
            await self._send(state, account, flow, "cancel")

    async def handle(
        self, state: ClientState, account: DeviceAccount, envelope: Envelope
    ) -> list[ClientEvent]:
        step = envelope.sas
        if step is None or envelope.sender == state.handle:
            return []  # my own other devices see my flows; they take no part
        flow = self.flows.get(step.flow_id)
        peer = envelope.sender
        if step.step == "start" and flow is None:
            return await self._respond(state, account, envelope, step)
        if flow is None or flow.peer != peer:
            return []
        try:
            return await self._advance(state, account, flow, envelope, step)
        except NotVerified as exc:
            self.flows.pop(flow.flow_id, None)
            return [ClientEvent("warning", peer, f"verification failed: {exc.detail}")]

    async def _respond(
        self, state: ClientState, account: DeviceAccount, envelope: Envelope, step: SasStep
    ) -> list[ClientEvent]:
        if envelope.sender not in state.contacts:
            return []
        sas = SasVerification(
            state.handle, state.device_id, envelope.sender, envelope.sender_device
        )
        flow = SasFlow(
            step.flow_id, envelope.sender, starter=False, sas=sas, commitment=b64d(step.data)
        )
        self.flows[step.flow_id] = flow
        await self._send(state, account, flow, "key", data=b64e(sas.public_key))
        return [ClientEvent("sas", flow.peer, "verification requested", message_id=flow.flow_id)]

    async def _advance(
        self,
        state: ClientState,
        account: DeviceAccount,
        flow: SasFlow,
        envelope: Envelope,
        step: SasStep,
    ) -> list[ClientEvent]:
        if step.step == "cancel":
            self.flows.pop(flow.flow_id, None)
            flow.sas.cancel()
            return [ClientEvent("warning", flow.peer, "verification cancelled by the other side")]
        if step.step == "key" and flow.sas.state is SasState.CREATED:
            their_key = b64d(step.data)
            if flow.starter:
                flow.sas.bind_their_device(envelope.sender_device)
                flow.sas.receive_their_key(their_key)
                await self._send(state, account, flow, "key", data=b64e(flow.sas.public_key))
            else:
                if not hmac.compare_digest(hashlib.sha256(their_key).digest(), flow.commitment):
                    flow.sas.cancel()
                    raise NotVerified("the starter's key does not match its commitment")
                flow.sas.receive_their_key(their_key)
            flow.codes = flow.sas.decimals()
            flow.emoji = flow.sas.emojis()
            codes = " ".join(str(c) for c in flow.codes)
            return [ClientEvent("sas", flow.peer, f"compare: {codes}", message_id=flow.flow_id)]
        if step.step == "mac":
            pinned = b64e(b64d(state.contacts[flow.peer].identity_key))
            flow.sas.verify_mac(IDENTITY_INFO, pinned, step.mac)
            flow.their_mac_ok = True
            if self._finish(state, flow):
                return [ClientEvent("sas", flow.peer, "verified", message_id=flow.flow_id)]
        return []

    def _finish(self, state: ClientState, flow: SasFlow) -> bool:
        if not flow.done:
            return False
        state.contacts[flow.peer].verified = True
        return True

    def _identity(self, state: ClientState) -> bytes:
        from hotline.crypto.identity import IdentityKey

        return IdentityKey.from_bytes(b64d(state.identity_key)).public.to_bytes()

    async def _send(
        self,
        state: ClientState,
        account: DeviceAccount,
        flow: SasFlow,
        step: SasStepName,
        *,
        data: str = "",
        mac: str = "",
    ) -> None:
        sas = SasStep(flow_id=flow.flow_id, step=step, data=data, mac=mac)
        await send_envelope(self.client, state, account, flow.peer, "sas", sas=sas)
