"""Real, valid encodings of the small-group objects (``wire.groups``), seeds of the fuzz tests.

Deterministic: fixed identity key (Ed25519 signatures are deterministic); the Megolm session is
made fresh (vodozemac draws its own randomness), so its ciphertext differs per run.
"""

from __future__ import annotations

from hotline.client.group_roster import sign_roster
from hotline.crypto.identity import IdentityKey
from hotline.crypto.megolm import OutboundGroup
from hotline.wire.codec import encode
from hotline.wire.encoding import b64e
from hotline.wire.groups import (
    GroupCiphertext,
    GroupMember,
    GroupRecipient,
    GroupRoster,
    GroupSendRequest,
    GroupText,
)

ADMIN = IdentityKey.from_bytes(bytes(range(1, 33)))
MEMBER = IdentityKey.from_bytes(bytes(range(2, 34)))
GROUP_ID = "G7-summit-group-0001"


def roster(members: int = 2, version: int = 1) -> GroupRoster:
    keys = [ADMIN, MEMBER] + [IdentityKey.from_bytes(bytes([i] * 32)) for i in range(members)]
    listed = [
        GroupMember(handle=f"m{i}@ottawa.test", identity_key=b64e(k.public.to_bytes()))
        for i, k in enumerate(keys[:members])
    ]
    return GroupRoster(
        v=1,
        group_id=GROUP_ID,
        name="G7",
        version=version,
        members=listed,
        admins=["m0@ottawa.test"],
        signer="m0@ottawa.test",
        signer_key=b64e(ADMIN.public.to_bytes()),
        action="create",
        issued_at=1_750_000_000,
    )


def signed_rosters() -> list[bytes]:
    return [encode(sign_roster(ADMIN, roster(n))) for n in (1, 2, 50)]


def group_texts() -> list[bytes]:
    text = GroupText(
        v=1,
        group_id=GROUP_ID,
        message_id="m1",
        sender="m0@ottawa.test",
        sender_device="DEVICE1",
        sent_at_ms=1,
        roster_version=1,
        text="Agreed. 🍁",
    )
    return [encode(text)]


def group_ciphertexts() -> list[bytes]:
    session = OutboundGroup.generate()
    return [
        encode(
            GroupCiphertext(
                v=1,
                group_id=GROUP_ID,
                session_id=session.session_id,
                ciphertext=b64e(session.encrypt(plaintext)),
            )
        )
        for plaintext in group_texts()
    ]


def group_send_requests() -> list[bytes]:
    return [
        encode(
            GroupSendRequest(
                group_id=GROUP_ID,
                message_id="m1",
                body=b64e(body),
                recipients=[GroupRecipient(to="m1@ottawa.test", device_ids=["DEVICE2"])],
            )
        )
        for body in group_ciphertexts()
    ]


def api_bodies() -> dict[str, bytes]:
    """A valid body of each group route of the client API."""
    return {
        "/v1/groups": b'{"roster":' + signed_rosters()[1] + b"}",
        "/v1/groups/messages": group_send_requests()[0],
    }
