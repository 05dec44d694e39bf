"""Recording a call for the archive, with consent (issue 4 item 5): Opus in Ogg, in chunks.

**What is recorded.** When the home server's policy says so (``GET /v1/calls/config``:
``recording: required``), each device records its own side of the call from the moment the call
is accepted: the audio it *receives* (its counterpart's voice, as decoded from SRTP) and, when it
sends any, the audio it *sends* (its own user's voice, as handed to the encoder). The two are kept
as **two tracks**, not mixed: two Opus logical streams multiplexed in one Ogg physical stream
(RFC 3533 §4 grouping: both BOS pages first, then each stream's ``OpusTags``, then audio pages
interleaved; RFC 7845 for the Opus mapping). Track 1 (``HOTLINE_TRACK=received``) is the
counterpart, track 2 (``HOTLINE_TRACK=sent``) this device's user; each names its speaker in its
``OpusTags``. Not mixing keeps each voice as it was actually heard or said (no mixer clock to
defend, no voice masking the other), at the cost of players that play only the first stream.
Each track is 48 kHz mono Opus (``libopus`` through PyAV, 24 kbit/s, ``application=audio``,
which keeps the waveform better than the VoIP mode: that matters for evidence). The received
track is thus the heard audio encoded once more; on espeak-ng speech that second pass alone
keeps a correlation of 0.99 with its input (measured), 0.96 end to end through a call.

**Chunks.** The recorder keeps only complete Ogg pages that are not yet sealed, in memory (no
plaintext copy of the call is ever written to the device's disk). :meth:`CallRecorder.cut`
closes the pages in progress and hands out whole pages up to a size limit; the client seals each
cut as a ``call`` record to the custodian and submits it at once (``hotline.client.call_flow``)
every ``CallFlows.recording_interval_s`` (5 s) while the call runs, and once more at the end. So
every chunk starts and ends on a page boundary, the concatenation of the chunks sealed so far is
always a valid Ogg/Opus file (without its end-of-stream pages when the device died), and a crash
loses at most one interval of audio. :data:`MAX_CHUNK_BYTES` keeps one sealed record under the
log's :data:`~hotline.wire.records.MAX_LEAF`.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

import av
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler

OPUS_RATE = 48_000
#: per track (speech, ``application=audio``: measured correlation with the source 0.99)
BITRATE = 24_000
#: audio bytes in one record: base64url in ``detail["audio"]`` (x4/3), sealed, then base64 again
#: in the leaf (x4/3) gives about 1.8 x this + 2 KiB, under ``MAX_LEAF`` (96 KiB)
MAX_CHUNK_BYTES = 40 * 1024
CODEC = "opus/ogg"
MEDIA_TYPE = "audio/ogg; codecs=opus"
#: close an audio page after this much audio even between cuts (bounds page size)
PAGE_SAMPLES = OPUS_RATE
OGG_BOS, OGG_EOS = 0x02, 0x04


# -- Ogg (RFC 3533) ------------------------------------------------------------------------------
def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return tuple(table)


_CRC = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, no reflection, initial value and final XOR 0)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


def ogg_page(serial: int, sequence: int, granule: int, packets: list[bytes], flags: int) -> bytes:
    """One Ogg page holding whole ``packets`` (none continues onto another page)."""
    lacing = bytearray()
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    if len(lacing) > 255:
        raise ValueError("too many packets for one Ogg page")
    header = struct.pack("<4sBBqIII", b"OggS", 0, flags, granule, serial, sequence, 0)
    page = bytearray(header + bytes([len(lacing)]) + lacing + b"".join(packets))
    page[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
    return bytes(page)


def _lacing_len(packet: bytes) -> int:
    return len(packet) // 255 + 1


@dataclass
class _Stream:
    """One logical Ogg stream: its serial number, page counter and packets not yet paged."""

    serial: int
    sequence: int = 0
    granule: int = 0
    pending: list[bytes] = field(default_factory=list)
    pending_samples: int = 0
    ended: bool = False

    def page(self, packets: list[bytes], granule: int, flags: int = 0) -> bytes:
        data = ogg_page(self.serial, self.sequence, granule, packets, flags)
        self.sequence += 1
        return data


class OggOpusMux:
    """Multiplexes Opus streams into Ogg pages kept in memory until taken."""

    def __init__(self, heads: list[bytes], tags: list[bytes], first_serial: int) -> None:
        self.streams = [_Stream(first_serial + i) for i in range(len(heads))]
        self.pages: deque[bytes] = deque()
        for stream, head in zip(self.streams, heads, strict=True):  # every BOS page first
            self.pages.append(stream.page([head], 0, OGG_BOS))
        for stream, tag in zip(self.streams, tags, strict=True):
            self.pages.append(stream.page([tag], 0))

    def add(self, index: int, packet: bytes, samples: int) -> None:
        """Queue one Opus packet of ``samples`` (48 kHz) for stream ``index``."""
        stream = self.streams[index]
        lacing = sum(_lacing_len(p) for p in stream.pending)
        if stream.pending and lacing + _lacing_len(packet) > 255:
            self._flush(stream)
        stream.pending.append(packet)
        stream.pending_samples += samples
        if stream.pending_samples >= PAGE_SAMPLES:
            self._flush(stream)

    def flush(self) -> None:
        """Close every page in progress (before a cut)."""
        for stream in self.streams:
            self._flush(stream)

    def finish(self, end_granules: list[int]) -> None:
        """The end-of-stream pages; ``end_granules`` trims each stream's encoder padding."""
        for stream, end in zip(self.streams, end_granules, strict=True):
            if stream.ended:
                continue
            # end trimming (RFC 7845 §4.4) only on a page with packets, never backwards
            if stream.pending:
                full = stream.granule + stream.pending_samples
                stream.granule = max(stream.granule, min(full, end))
            self.pages.append(stream.page(stream.pending, stream.granule, OGG_EOS))
            stream.pending, stream.pending_samples, stream.ended = [], 0, True

    def _flush(self, stream: _Stream) -> None:
        if not stream.pending or stream.ended:
            return
        stream.granule += stream.pending_samples
        self.pages.append(stream.page(stream.pending, stream.granule))
        stream.pending, stream.pending_samples = [], 0

    def take(self, max_bytes: int) -> bytes:
        """Whole pages from the front, up to ``max_bytes`` (always at least one page)."""
        out = bytearray()
        while self.pages and (not out or len(out) + len(self.pages[0]) <= max_bytes):
            out += self.pages.popleft()
        return bytes(out)


# -- Opus (RFC 7845) ----------------------------------------------------------------------------
def opus_tags(vendor: str, comments: Iterable[str]) -> bytes:
    """An ``OpusTags`` header packet (RFC 7845 §5.2)."""
    items = [c.encode("utf-8") for c in comments]
    raw = vendor.encode("utf-8")
    out = b"OpusTags" + struct.pack("<I", len(raw)) + raw + struct.pack("<I", len(items))
    return out + b"".join(struct.pack("<I", len(c)) + c for c in items)


def opus_head(pre_skip: int = 312, channels: int = 1) -> bytes:
    """An ``OpusHead`` header packet (RFC 7845 §5.1), channel mapping family 0."""
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, OPUS_RATE, 0, 0)


class TrackEncoder:
    """Any audio frame in, 48 kHz mono Opus packets out (PyAV's ``libopus``)."""

    def __init__(self, bitrate: int = BITRATE) -> None:
        codec = av.CodecContext.create("libopus", "w")
        codec.sample_rate = OPUS_RATE
        codec.layout = "mono"
        codec.format = "s16"
        codec.bit_rate = bitrate
        codec.time_base = Fraction(1, OPUS_RATE)
        codec.options = {"application": "audio"}
        codec.open()
        self.codec = codec
        extra = bytes(codec.extradata or b"")
        self.head = extra if extra.startswith(b"OpusHead") else opus_head()
        self.pre_skip = int(struct.unpack_from("<H", self.head, 10)[0])
        self._resampler = AudioResampler(format="s16", layout="mono", rate=OPUS_RATE)
        self._source_pts = 0
        #: 48 kHz samples handed to the encoder so far (the audio's true length)
        self.samples_in = 0

    def encode(self, frame: AudioFrame | None) -> list[tuple[bytes, int]]:
        """Packets (bytes, samples) for ``frame``; None flushes the encoder."""
        packets = []
        if frame is None:
            inputs: list[AudioFrame | None] = [*self._resampler.resample(None), None]
        else:
            inputs = list(self._resampler.resample(self._detach(frame)))
        for item in inputs:
            if item is not None:
                item.pts = self.samples_in
                item.time_base = Fraction(1, OPUS_RATE)
                self.samples_in += item.samples
            for packet in self.codec.encode(item):
                samples = int(packet.duration or self.codec.frame_size)
                packets.append((bytes(packet), samples))
        return packets

    def _detach(self, frame: AudioFrame) -> AudioFrame:
        """A copy with our own timestamps: the original is being encoded for the wire in
        another thread, and RTP/file timestamps may jump; the recording's clock is its samples."""
        copy = AudioFrame.from_ndarray(
            frame.to_ndarray(), format=frame.format.name, layout=frame.layout.name
        )
        copy.sample_rate = frame.sample_rate
        copy.pts = self._source_pts
        copy.time_base = Fraction(1, frame.sample_rate)
        self._source_pts += frame.samples
        return copy


@dataclass(frozen=True)
class Track:
    """One recorded track: ``received`` (the counterpart) or ``sent`` (this device's user)."""

    name: str
    speaker: str


class CallRecorder:
    """Encodes the tracks of one call into Ogg/Opus pages, cut into chunks for sealing.

    :meth:`feed` is a media tap: it never raises (a failure stops that track's recording and is
    counted in :attr:`errors`), so recording can never break the call itself.
    """

    def __init__(self, call_id: str, tracks: list[Track], *, serial: int = 1) -> None:
        if not tracks:
            raise ValueError("nothing to record")
        self.call_id = call_id
        self.tracks = tracks
        self.encoders = [TrackEncoder() for _ in tracks]
        tags = [
            opus_tags(
                "hotline",
                [
                    f"HOTLINE_CALL_ID={call_id}",
                    f"HOTLINE_TRACK={t.name}",
                    f"HOTLINE_SPEAKER={t.speaker}",
                ],
            )
            for t in tracks
        ]
        self.mux = OggOpusMux([e.head for e in self.encoders], tags, serial)
        self.closed = False
        self.errors: list[str] = []
        self.frames = [0] * len(tracks)
        #: bytes handed out by :meth:`cut` so far (the next chunk's offset in the file)
        self.offset = 0

    def index(self, name: str) -> int | None:
        for i, track in enumerate(self.tracks):
            if track.name == name:
                return i
        return None

    def feed(self, name: str, frame: AudioFrame) -> None:
        """One frame of track ``name`` (ignored once closed, or for an unknown track)."""
        index = self.index(name)
        if self.closed or index is None:
            return
        try:
            for packet, samples in self.encoders[index].encode(frame):
                self.mux.add(index, packet, samples)
            self.frames[index] += 1
        except (av.FFmpegError, ValueError) as exc:
            self.errors.append(f"{name}: {exc}")
            self.closed = True

    def seconds(self, name: str) -> float:
        index = self.index(name)
        return 0.0 if index is None else self.encoders[index].samples_in / OPUS_RATE

    def cut(self, max_bytes: int = MAX_CHUNK_BYTES) -> bytes:
        """The audio not handed out yet, as whole Ogg pages (at most ``max_bytes`` unless one
        page is larger; call again for the rest); b"" when there is none."""
        self.mux.flush()
        chunk = self.mux.take(max_bytes)
        self.offset += len(chunk)
        return chunk

    def finish(self) -> None:
        """Stop taking frames, drain the encoders, write the end-of-stream pages."""
        if self.mux.streams[0].ended:
            return
        self.closed = True
        ends = []
        for i, encoder in enumerate(self.encoders):
            try:
                for packet, samples in encoder.encode(None):
                    self.mux.add(i, packet, samples)
            except (av.FFmpegError, ValueError) as exc:
                self.errors.append(f"{self.tracks[i].name}: {exc}")
            ends.append(encoder.pre_skip + encoder.samples_in)
        self.mux.finish(ends)

    @property
    def pending(self) -> bool:
        """Whether :meth:`cut` would return something now."""
        return bool(self.mux.pages) or any(s.pending for s in self.mux.streams)


__all__ = [
    "BITRATE",
    "CODEC",
    "MAX_CHUNK_BYTES",
    "MEDIA_TYPE",
    "CallRecorder",
    "OggOpusMux",
    "Track",
    "TrackEncoder",
    "ogg_crc",
    "ogg_page",
    "opus_head",
    "opus_tags",
]
