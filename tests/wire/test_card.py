"""Contact cards: text round trip, tolerance of email mangling, every mutation refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.client.cards import make_card, read_card
from hotline.crypto.identity import IdentityKey
from hotline.wire.card import CardPayload, parse_card
from hotline.wire.encoding import b64e
from hotline.wire.errors import BadSignature, CardExpired, HotlineError, MalformedCard

NOW = 1_800_000_000
IDENTITY = IdentityKey.generate()

names = st.text(min_size=1, max_size=128).filter(lambda s: s.strip() == s and s)
handles = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}@[a-z0-9][a-z0-9.-]{0,20}\Z")


def payload(**overrides: object) -> CardPayload:
    fields: dict[str, object] = {
        "v": 1,
        "display_name": "Prime Minister of Canada",
        "handle": "pm@ottawa.example",
        "identity_key": b64e(IDENTITY.public.to_bytes()),
        "server_url": "https://ottawa.example",
        "invite_id": "inv1",
        "invite_secret": b64e(bytes(32)),
        "issued_at": NOW,
        "expires_at": NOW + 86400,
    }
    fields.update(overrides)
    return CardPayload(**fields)  # type: ignore[arg-type]


@settings(max_examples=50, deadline=None)
@given(name=names, handle=handles, secret=st.binary(min_size=32, max_size=32))
def test_round_trip(name: str, handle: str, secret: bytes) -> None:
    card = make_card(
        IDENTITY, payload(display_name=name, handle=handle, invite_secret=b64e(secret))
    )
    back = read_card(card.to_uri(), NOW)
    assert back.payload == card.payload
    assert back.payload_bytes == card.payload_bytes


def test_survives_email_wrapping_and_brackets() -> None:
    uri = make_card(IDENTITY, payload()).to_uri()
    wrapped = "<" + "\n".join(uri[i : i + 60] for i in range(0, len(uri), 60)) + ">\r\n"
    assert read_card(wrapped, NOW).payload == payload()


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_mutation_is_refused(data: st.DataObject) -> None:
    uri = make_card(IDENTITY, payload()).to_uri()
    body = uri[len("hotline:") :]
    index = data.draw(st.integers(0, len(body) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    replacement = data.draw(st.sampled_from(alphabet).filter(lambda c: c != body[index]))
    mutated = "hotline:" + body[:index] + replacement + body[index + 1 :]
    with pytest.raises(HotlineError) as info:
        read_card(mutated, NOW)
    assert info.value.code in {"bad_signature", "malformed_card"}


def test_truncated_card_refused() -> None:
    uri = make_card(IDENTITY, payload()).to_uri()
    with pytest.raises(MalformedCard):
        read_card(uri[:-20], NOW)


@pytest.mark.parametrize("text", ["", "hotline:", "mailto:x", "hotline:!!!!", "hotline:AAAA"])
def test_malformed_cards(text: str) -> None:
    with pytest.raises(MalformedCard):
        parse_card(text)


def test_card_signed_by_another_key_refused() -> None:
    # The payload names IDENTITY's key but another key signed it.
    card = make_card(IdentityKey.generate(), payload())
    with pytest.raises(BadSignature):
        read_card(card.to_uri(), NOW)


def test_expired_card_refused() -> None:
    card = make_card(IDENTITY, payload(expires_at=NOW - 1))
    with pytest.raises(CardExpired):
        read_card(card.to_uri(), NOW)


def test_unknown_version_refused() -> None:
    card = make_card(IDENTITY, payload(v=1))
    raw = card.payload_bytes.replace(b'"v":1', b'"v":2')
    from hotline.wire.card import SignedCard

    forged = SignedCard(raw, card.payload, IDENTITY.sign(b"hotline/v1/card", raw))
    with pytest.raises(MalformedCard):
        read_card(forged.to_uri(), NOW)
