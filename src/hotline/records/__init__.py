"""Records layer: the tamper-evident log of sealed records (RFC 9162 §2.1 Merkle tree).

Modules, one per spec concept (after transparency-dev/merkle):

* :mod:`~hotline.records.hasher` — leaf and node hashing, RFC 9162 §2.1.1.
* :mod:`~hotline.records.proof` — roots, inclusion and consistency proof generation
  (§2.1.1, §2.1.3.1, §2.1.4.1); :class:`~hotline.records.proof.MerkleTree` in memory.
* :mod:`~hotline.records.verify` — proof verification (§2.1.3.2, §2.1.4.2).
* :mod:`~hotline.records.checkpoint` — signed tree heads (after §4.10).
"""
