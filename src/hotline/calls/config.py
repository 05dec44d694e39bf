"""What a call is set up with: its audio files and the ICE servers (no aiortc import here, so
the client can offer calls without paying for loading the media stack until one starts).

The home server may advertise STUN/TURN servers (``GET /v1/calls/config``, issue 4 item 6);
without that route, or on loopback, direct ICE between host candidates is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hotline.wire.calls import CallsConfig, IceServerEntry, turn_rest_credentials


@dataclass(frozen=True)
class MediaOptions:
    """Where the call's audio comes from and goes to (None: nothing sent / discarded)."""

    play: Path | None = None
    record: Path | None = None
    #: use the system's default microphone / speaker where ``play`` / ``record`` are not given
    sound_card: bool = False


@dataclass(frozen=True)
class IceServer:
    """A STUN or TURN server to use (none on loopback: direct ICE between host candidates)."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


def ice_servers_of(config: CallsConfig) -> list[IceServer]:
    """The advertised servers in the form the media layer takes."""
    return [
        IceServer(tuple(e.urls), e.username or None, e.credential or None)
        for e in config.ice_servers
    ]


__all__ = [
    "CallsConfig",
    "IceServer",
    "IceServerEntry",
    "MediaOptions",
    "ice_servers_of",
    "turn_rest_credentials",
]
