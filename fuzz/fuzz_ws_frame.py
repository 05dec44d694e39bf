"""Fuzz websocket frames in both directions of ``/v1/ws``.

* Client to server: the acknowledgement frame ``{"ack": [seq, ...]}`` the server decodes in
  ``routes_messages._read_acks`` (as bytes, and as text re-encoded to UTF-8 as Starlette
  hands it over).
* Server to client: the push frame ``{"items": [...]}`` the client decodes in
  ``client.transport.ServerApi.websocket``; then every item's body is decoded as the client's
  ``process`` does for Olm items.
"""

from __future__ import annotations

import contextlib

from runner import instrumented, main

with instrumented():
    from hotline.client.transport import MAX_RESPONSE, _Push
    from hotline.server.routes_messages import _WsAck
    from hotline.wire.codec import decode
    from hotline.wire.encoding import b64d
    from hotline.wire.errors import HotlineError

#: the server's cap on one acknowledgement frame (routes_messages._read_acks)
MAX_ACK_FRAME = 64 * 1024


def test_one_input(data: bytes) -> None:
    """Decode ``data`` as each side would; only HotlineError may come out."""
    text = data.decode("utf-8", "replace").encode("utf-8")
    for frame in (data, text):
        with contextlib.suppress(HotlineError):
            decode(frame, _WsAck, max_size=MAX_ACK_FRAME)
    for item in decode(data, _Push, max_size=MAX_RESPONSE).items:
        b64d(item.body)


if __name__ == "__main__":
    main("ws_frame", test_one_input)
