"""Fuzz Merkle proof verification (RFC 9162 §2.1.3.2 and §2.1.4.2) with hostile sizes.

The input is read as: mode (1 byte: even = inclusion, odd = consistency), two 9-byte signed
integers (index/size or size1/size2: enough to go past 2**64 and below 0), the number of
proof hashes (1 byte), then each hash as a length byte and that many bytes, then two
32-byte hashes (leaf hash and root, or root1 and root2).
:func:`valid_encodings.encode_proof_case` writes real proofs in this format for the corpus.
"""

from __future__ import annotations

from runner import ByteReader, instrumented, main

with instrumented():
    from hotline.records.verify import verify_consistency, verify_inclusion


def test_one_input(data: bytes) -> None:
    """Verify the proof read from ``data``; only HotlineError (ProofInvalid) may come out."""
    reader = ByteReader(data)
    mode, a, b = reader.uint(1), reader.sint(9), reader.sint(9)
    proof = [reader.take(reader.uint(1) % 40) for _ in range(reader.uint(1) % 80)]
    first, second = reader.take(32), reader.take(32)
    if mode % 2 == 0:
        verify_inclusion(first, a, b, proof, second)
    else:
        verify_consistency(a, b, proof, first, second)


if __name__ == "__main__":
    main("proofs", test_one_input)
