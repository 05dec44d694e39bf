"""Write the seed corpus of every harness, ``fuzz/corpus/<name>/``, from real encodings.

Run from the repository root: ``.venv/bin/python fuzz/make_corpus.py``. The seeds are built by
:mod:`valid_encodings` with fixed keys (HPKE seals differ on every run, the rest does not).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import valid_encodings as v  # noqa: E402

from hotline.wire.codec import encode  # noqa: E402


def seeds() -> dict[str, list[bytes]]:
    """Seed inputs per harness name."""
    return {
        "card": [u.encode() for u in v.card_uris()] + [encode(v.card_payload())],
        "envelope": v.envelopes(),
        "sealed_record": v.sealed_records() + v.records(),
        "tree_head": v.signed_tree_heads() + v.tree_heads() + v.receipts(),
        "federation_request": v.federation_requests(),
        "proofs": [v.encode_proof_case(*case) for case in v.proof_inputs()],
        "ws_frame": v.ws_frames(),
    }


def write(root: Path = HERE / "corpus") -> None:
    """Replace each corpus directory's seeds (named by content hash)."""
    for name, inputs in seeds().items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for data in inputs:
            (folder / f"seed-{hashlib.sha256(data).hexdigest()[:16]}").write_bytes(data)
        print(f"{name}: {len(inputs)} seeds")


if __name__ == "__main__":
    write()
