"""Helpers of the call recording tests: finding the sealed chunks, rebuilding and decoding the
Ogg/Opus file they make, writing each track out as WAV for ``audio_match``."""

from __future__ import annotations

import base64
import hashlib
import io
import wave
from pathlib import Path

import av
import numpy as np
from callkit import call_records
from harness import LiveServer

from hotline.wire.records import Record


def chunk_records(server: LiveServer, principal: str, call_id: str) -> list[Record]:
    """The recording chunks one principal's devices sealed for a call, in log order."""
    return [
        r
        for r in call_records(server, principal)
        if r.detail.get("call_id") == call_id and "audio" in r.detail
    ]


def audio_of(chunks: list[Record]) -> bytes:
    """The chunks' audio concatenated, after checking numbering, offsets and digests."""
    data = b""
    for n, record in enumerate(chunks, start=1):
        d = record.detail
        piece = base64.urlsafe_b64decode(d["audio"] + "=" * (-len(d["audio"]) % 4))
        assert d["chunk"] == str(n) and d["offset"] == str(len(data)), d | {"audio": "..."}
        assert d["size"] == str(len(piece)) and d["codec"] == "opus/ogg"
        assert hashlib.sha256(piece).hexdigest() == d["sha256"]
        assert piece.startswith(b"OggS"), "every chunk starts on an Ogg page boundary"
        data += piece
    return data


def decode_tracks(ogg: bytes, out_dir: Path, stem: str) -> dict[str, Path]:
    """Decode every Opus stream of ``ogg`` (PyAV/FFmpeg) to a 48 kHz mono 16-bit WAV file,
    named after its ``HOTLINE_TRACK`` tag; returns {track: path}."""
    pcm: dict[int, list[np.ndarray]] = {}
    names: dict[int, str] = {}
    with av.open(io.BytesIO(ogg), format="ogg") as container:
        for stream in container.streams.audio:
            assert stream.codec_context.name == "opus"
            names[stream.index] = stream.metadata.get("HOTLINE_TRACK", str(stream.index))
            pcm[stream.index] = []
        resamplers = {i: av.AudioResampler(format="s16", layout="mono", rate=48_000) for i in pcm}
        for packet in container.demux():
            for frame in packet.decode():
                for out in resamplers[packet.stream.index].resample(frame):  # type: ignore[arg-type]
                    pcm[packet.stream.index].append(out.to_ndarray().reshape(-1))
    paths = {}
    for index, parts in pcm.items():
        path = out_dir / f"{stem}-{names[index]}.wav"
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(48_000)
            w.writeframes(samples.astype(np.int16).tobytes())
        paths[names[index]] = path
    return paths


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()
