"""Interactive short authentication strings (SAS) over vodozemac. Hazmat layer.

Part of the labelled *hazmat* layer (STYLE.md §2). Wraps ``vodozemac.Sas`` (Matrix
client-server spec, "Short Authentication String (SAS) verification", method
``m.sas.v1``: X25519 key agreement, HKDF-SHA256 to SAS bytes, HMAC-SHA256 key MACs).

Both parties are bound into every derived value, so a man in the middle who runs two separate
exchanges gets two unrelated codes:

* SAS bytes use ``info = "HOTLINE_SAS_V1" + json([[handle, device_id, sas_key_b64], ...])``,
  the two parties' triples sorted so that both ends build the same string (JSON keeps the
  encoding injective whatever characters handles contain);
* MACs use ``info = "HOTLINE_SAS_MAC_V1" + json([sender triple, receiver triple, info])``: a
  direction is bound in, so a party's own MAC reflected back to it does not verify.

The verification is a state machine (STYLE.md §4): ``CREATED → KEYS_EXCHANGED → VERIFIED``, and
any state may go to ``CANCELLED``. A call in the wrong state
raises :class:`~hotline.wire.errors.WrongState` naming the state; a peer's bad key or bad MAC
raises :class:`~hotline.wire.errors.NotVerified` and cancels.
"""

from __future__ import annotations

import base64
import enum
import json

import vodozemac

from hotline.wire.errors import NotVerified, WrongState

__all__ = ["EMOJI", "SAS_KEY_SIZE", "SasState", "SasVerification"]

SAS_KEY_SIZE = 32

#: The 64 SAS emoji of the Matrix spec (``data-definitions/sas-emoji.json``), by index:
#: ``(emoji, English description)``. Variation selectors (U+FE0F) are kept as published.
EMOJI: tuple[tuple[str, str], ...] = (
    ("\U0001f436", "Dog"),
    ("\U0001f431", "Cat"),
    ("\U0001f981", "Lion"),
    ("\U0001f40e", "Horse"),
    ("\U0001f984", "Unicorn"),
    ("\U0001f437", "Pig"),
    ("\U0001f418", "Elephant"),
    ("\U0001f430", "Rabbit"),
    ("\U0001f43c", "Panda"),
    ("\U0001f413", "Rooster"),
    ("\U0001f427", "Penguin"),
    ("\U0001f422", "Turtle"),
    ("\U0001f41f", "Fish"),
    ("\U0001f419", "Octopus"),
    ("\U0001f98b", "Butterfly"),
    ("\U0001f337", "Flower"),
    ("\U0001f333", "Tree"),
    ("\U0001f335", "Cactus"),
    ("\U0001f344", "Mushroom"),
    ("\U0001f30f", "Globe"),
    ("\U0001f319", "Moon"),
    ("\u2601\ufe0f", "Cloud"),
    ("\U0001f525", "Fire"),
    ("\U0001f34c", "Banana"),
    ("\U0001f34e", "Apple"),
    ("\U0001f353", "Strawberry"),
    ("\U0001f33d", "Corn"),
    ("\U0001f355", "Pizza"),
    ("\U0001f382", "Cake"),
    ("\u2764\ufe0f", "Heart"),
    ("\U0001f600", "Smiley"),
    ("\U0001f916", "Robot"),
    ("\U0001f3a9", "Hat"),
    ("\U0001f453", "Glasses"),
    ("\U0001f527", "Spanner"),
    ("\U0001f385", "Santa"),
    ("\U0001f44d", "Thumbs Up"),
    ("\u2602\ufe0f", "Umbrella"),
    ("\u231b", "Hourglass"),
    ("\u23f0", "Clock"),
    ("\U0001f381", "Gift"),
    ("\U0001f4a1", "Light Bulb"),
    ("\U0001f4d5", "Book"),
    ("\u270f\ufe0f", "Pencil"),
    ("\U0001f4ce", "Paperclip"),
    ("\u2702\ufe0f", "Scissors"),
    ("\U0001f512", "Lock"),
    ("\U0001f511", "Key"),
    ("\U0001f528", "Hammer"),
    ("\u260e\ufe0f", "Telephone"),
    ("\U0001f3c1", "Flag"),
    ("\U0001f682", "Train"),
    ("\U0001f6b2", "Bicycle"),
    ("\u2708\ufe0f", "Aeroplane"),
    ("\U0001f680", "Rocket"),
    ("\U0001f3c6", "Trophy"),
    ("\u26bd", "Ball"),
    ("\U0001f3b8", "Guitar"),
    ("\U0001f3ba", "Trumpet"),
    ("\U0001f514", "Bell"),
    ("\u2693", "Anchor"),
    ("\U0001f3a7", "Headphones"),
    ("\U0001f4c1", "Folder"),
    ("\U0001f4cc", "Pin"),
)

_BYTES_PREFIX = "HOTLINE_SAS_V1"
_MAC_PREFIX = "HOTLINE_SAS_MAC_V1"


class SasState(enum.Enum):
    """Where a verification stands."""

    CREATED = "created"
    KEYS_EXCHANGED = "keys_exchanged"
    VERIFIED = "verified"
    CANCELLED = "cancelled"


_TRANSITIONS: dict[SasState, frozenset[SasState]] = {
    SasState.CREATED: frozenset({SasState.KEYS_EXCHANGED, SasState.CANCELLED}),
    SasState.KEYS_EXCHANGED: frozenset({SasState.VERIFIED, SasState.CANCELLED}),
    SasState.VERIFIED: frozenset({SasState.VERIFIED, SasState.CANCELLED}),
    SasState.CANCELLED: frozenset(),
}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).rstrip(b"=").decode("ascii")


class SasVerification:
    """One side of an interactive SAS check between two devices (Matrix ``m.sas.v1``).

    Args:
        my_handle: this principal's handle, ``name@domain``.
        my_device: this device's id.
        their_handle: the handle the other side claims.
        their_device: the other device's id.
    """

    def __init__(
        self, my_handle: str, my_device: str, their_handle: str, their_device: str = ""
    ) -> None:
        self._sas: vodozemac.Sas | None = vodozemac.Sas()
        self._public_key = self._sas.public_key.to_bytes()
        self._established: vodozemac.EstablishedSas | None = None
        self._me = [my_handle, my_device, _b64(self._public_key)]
        self._them = [their_handle, their_device, ""]
        self._state = SasState.CREATED

    @property
    def state(self) -> SasState:
        """The current state."""
        return self._state

    @property
    def public_key(self) -> bytes:
        """This side's ephemeral 32-byte X25519 SAS key, to send to the other side."""
        return self._public_key

    def _set_state(self, new: SasState) -> None:
        if new not in _TRANSITIONS[self._state]:
            raise WrongState(f"SAS verification is {self._state.value}", state=self._state.value)
        self._state = new

    def _require(self, *allowed: SasState) -> vodozemac.EstablishedSas:
        if self._state not in allowed or self._established is None:
            raise WrongState(f"SAS verification is {self._state.value}", state=self._state.value)
        return self._established

    def cancel(self) -> None:
        """Abandon the verification (user said the codes differ, or a timeout)."""
        if self._state is not SasState.CANCELLED:
            self._set_state(SasState.CANCELLED)
        self._sas = None
        self._established = None

    def bind_their_device(self, their_device: str) -> None:
        """Name the other device once known (the starter learns it from the first reply).

        Raises:
            WrongState: keys already exchanged, or a device was already bound.
        """
        if self._state is not SasState.CREATED or self._them[1]:
            raise WrongState(f"SAS verification is {self._state.value}", state=self._state.value)
        self._them[1] = their_device

    def receive_their_key(self, their_public_key: bytes) -> None:
        """Complete the key agreement with the other side's SAS public key.

        Raises:
            WrongState: not in ``CREATED``.
            NotVerified: the key is malformed, a reflection of ours, or of low order; the
                verification is cancelled.
        """
        if self._state is not SasState.CREATED or self._sas is None or not self._them[1]:
            raise WrongState(f"SAS verification is {self._state.value}", state=self._state.value)
        if len(their_public_key) != SAS_KEY_SIZE or their_public_key == self._public_key:
            self.cancel()
            raise NotVerified("the other side sent an unusable SAS key")
        try:
            key = vodozemac.Curve25519PublicKey.from_bytes(their_public_key)
            self._established = self._sas.diffie_hellman(key)
        except ValueError as exc:
            self.cancel()
            raise NotVerified("the other side sent an unusable SAS key") from exc
        self._sas = None
        self._them[2] = _b64(their_public_key)
        self._set_state(SasState.KEYS_EXCHANGED)

    def _bytes_info(self) -> str:
        parties = sorted([self._me, self._them])
        return _BYTES_PREFIX + json.dumps(parties, separators=(",", ":"))

    def _sas_bytes(self) -> vodozemac.SasBytes:
        established = self._require(SasState.KEYS_EXCHANGED, SasState.VERIFIED)
        return established.bytes(self._bytes_info())

    def decimals(self) -> tuple[int, int, int]:
        """Three numbers 1000 to 9191 to read aloud and compare.

        Raises:
            WrongState: keys not exchanged yet, or cancelled.
        """
        first, second, third = self._sas_bytes().decimals
        return first, second, third

    def emoji_indices(self) -> list[int]:
        """Seven indices into :data:`EMOJI` to compare.

        Raises:
            WrongState: keys not exchanged yet, or cancelled.
        """
        # vodozemac returns ``bytes`` at runtime although its .pyi says ``List[int]``.
        return list(self._sas_bytes().emoji_indices)

    def emojis(self) -> list[tuple[str, str]]:
        """The seven ``(emoji, description)`` pairs to show."""
        return [EMOJI[index] for index in self.emoji_indices()]

    def _mac_info(self, sender: list[str], receiver: list[str], info: str) -> str:
        return _MAC_PREFIX + json.dumps([sender, receiver, info], separators=(",", ":"))

    def mac(self, info: str, data: str) -> str:
        """MAC ``data`` (e.g. a key to vouch for) from this side to the other side.

        Raises:
            WrongState: keys not exchanged yet, or cancelled.
        """
        established = self._require(SasState.KEYS_EXCHANGED, SasState.VERIFIED)
        return established.calculate_mac(data, self._mac_info(self._me, self._them, info))

    def verify_mac(self, info: str, data: str, tag: str) -> None:
        """Check a MAC the other side computed with :meth:`mac`; on success, ``VERIFIED``.

        Raises:
            WrongState: keys not exchanged yet, or cancelled.
            NotVerified: the tag does not verify; the verification is cancelled.
        """
        established = self._require(SasState.KEYS_EXCHANGED, SasState.VERIFIED)
        try:
            established.verify_mac(data, self._mac_info(self._them, self._me, info), tag)
        except ValueError as exc:
            self.cancel()
            raise NotVerified() from exc
        self._set_state(SasState.VERIFIED)
