"""Fuzz the contact card reader: ``hotline:`` text from email, chat or a QR code.

Target: :func:`hotline.client.cards.read_card` (which runs :func:`hotline.wire.card.parse_card`
and then checks the signature and expiry). Each input is tried twice:

* as the card text itself, decoded as UTF-8 with ``surrogateescape`` (every byte string
  becomes some text, lone surrogates included);
* as the payload JSON of a card, wrapped and signed for real by a fixed identity key, so the
  fuzzer reaches the payload decoder and the expiry check without having to find base64url
  and a valid signature by chance (a malicious contact signs whatever they like).
"""

from __future__ import annotations

import contextlib

from runner import instrumented, main

with instrumented():
    from valid_encodings import IDENTITY, NOW

    from hotline.client.cards import read_card
    from hotline.crypto.identity import DOMAIN_CARD
    from hotline.wire.card import SCHEME
    from hotline.wire.encoding import b64e
    from hotline.wire.errors import HotlineError


def test_one_input(data: bytes) -> None:
    """Read ``data`` as card text, then as a signed payload; only HotlineError may come out."""
    with contextlib.suppress(HotlineError):
        read_card(data.decode("utf-8", "surrogateescape"), NOW)
    read_card(SCHEME + b64e(data + IDENTITY.sign(DOMAIN_CARD, data)), NOW)


if __name__ == "__main__":
    main("card", test_one_input)
