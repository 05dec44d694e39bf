"""The Olm envelope's wire form: optional parts travel only when used, and the form written by
earlier versions still decodes (so devices that upgrade at different times keep talking)."""

from __future__ import annotations

import json

import pytest

from hotline.wire.codec import decode, encode
from hotline.wire.envelope import Envelope
from hotline.wire.errors import MalformedInput

#: a text envelope exactly as the first release wrote it (every field, defaults included)
FIRST_RELEASE_TEXT = (
    b'{"v":1,"kind":"text","message_id":"m1","sender":"potus@washington.test",'
    b'"sender_device":"d1","recipient":"pm@ottawa.test","sent_at_ms":1800000000000,'
    b'"conversation":"c1","seq":1,"prev":"","text":"Hello","receipt":null,"sas":null,'
    b'"call":null}'
)


def test_plain_text_carries_no_unused_optional_parts() -> None:
    envelope = decode(FIRST_RELEASE_TEXT, Envelope)
    fields = json.loads(encode(envelope))
    assert fields["text"] == "Hello" and fields["seq"] == 1
    for unused in ("receipt", "sas", "call", "group", "on_behalf_of", "grant_id", "delegation"):
        assert unused not in fields


def test_first_release_form_still_decodes_and_round_trips() -> None:
    envelope = decode(FIRST_RELEASE_TEXT, Envelope)
    assert (envelope.sender, envelope.recipient, envelope.text) == (
        "potus@washington.test",
        "pm@ottawa.test",
        "Hello",
    )
    assert decode(encode(envelope), Envelope) == envelope


def test_unknown_field_still_refused() -> None:
    with pytest.raises(MalformedInput):
        decode(FIRST_RELEASE_TEXT[:-1] + b',"smuggled":1}', Envelope)
