"""The records archive under load: appends, proofs, verification and export as the log grows.

Measured in one process on this machine:

1. **Merkle maths** (``hotline.records``): appends per second into ``MerkleTree``, and the
   time to generate and to verify an inclusion and a consistency proof at 10^3 .. 10^6 leaves
   (median of 1,000 random proofs). Proof size and time must grow logarithmically.
2. **Sealing**: HPKE seals per second of a realistic message record (``seal_record``).
3. **The stored log** (``SqlStore`` on SQLite): appends per second (one leaf per transaction,
   as a relayed message does, and batches of 100), then the custodian's streaming
   ``verify_log`` over the whole store, and ``export_bag`` throughput (decrypt + BagIt).

Writes ``bench/results/archive.json`` for ``bench/report.py``.
Usage: ``python bench/archive.py [--max-size 1000000] [--store-entries 20000] [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hotline.crypto.hpke import CustodianPrivateKey
from hotline.custodian.export import export_bag
from hotline.custodian.verify_log import verify_log
from hotline.records.checkpoint import TreeHead, sign_tree_head
from hotline.records.hasher import hash_leaf
from hotline.records.proof import MerkleTree
from hotline.records.sealing import seal_record
from hotline.records.verify import verify_consistency, verify_inclusion
from hotline.store import LogLeaf, TreeHeadRow, open_store
from hotline.wire.records import Record

RNG = random.Random(9162)


def record(n: int) -> Record:
    return Record(
        record_id=f"bench-{n:08d}",
        log_id="bench.test/records",
        kind="message",
        side="sent",
        principal="potus@bench.test",
        device="dev1",
        conversation="pm@bench.test|potus@bench.test",
        sender="potus@bench.test",
        recipients=["pm@bench.test"],
        message_id=f"m{n}",
        created_at_ms=1_800_000_000_000 + n,
        captured_at_ms=1_800_000_000_000 + n,
        body=f"Message {n}: the joint statement moves to Thursday; drafts cross tonight.",
        envelope="e30" * 120,
    )


def timed(fn: Any, repeat: int) -> float:
    """Median seconds of ``fn()`` over ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def proof_times(tree: MerkleTree, size: int) -> tuple[float, float, float, float, float]:
    """Median per-proof seconds: inclusion gen/verify, consistency gen/verify; mean length."""
    root = tree.root()
    picks = [RNG.randrange(size) for _ in range(1000)]
    olds = [RNG.randrange(1, size) for _ in range(1000)]
    gen_inc = timed(lambda: [tree.inclusion_proof(i, size) for i in picks], 3) / 1000
    proofs = [tree.inclusion_proof(i, size) for i in picks]
    pairs = list(zip(picks, proofs, strict=True))
    ver_inc = (
        timed(lambda: [verify_inclusion(tree.leaf_hash(i), i, size, p, root) for i, p in pairs], 3)
        / 1000
    )
    gen_con = timed(lambda: [tree.consistency_proof(m, size) for m in olds], 3) / 1000
    cons = [(m, tree.consistency_proof(m, size), tree.root(m)) for m in olds]
    ver_con = timed(lambda: [verify_consistency(m, size, p, r, root) for m, p, r in cons], 3)
    return gen_inc, ver_inc, gen_con, ver_con / 1000, statistics.fmean(len(p) for p in proofs)


def merkle(max_size: int) -> tuple[list[list[Any]], dict[str, Any]]:
    tree = MerkleTree()
    rows: list[list[Any]] = []
    raw: dict[str, Any] = {}
    size = 1000
    started = time.perf_counter()
    appended = 0
    while size <= max_size:
        leaves = [hash_leaf(b"leaf %d" % i) for i in range(tree.size, size)]
        t0 = time.perf_counter()
        tree.extend(leaves)
        append_rate = len(leaves) / max(time.perf_counter() - t0, 1e-9)
        appended += len(leaves)
        gen_inc, ver_inc, gen_con, ver_con, avg_len = proof_times(tree, size)
        rows.append(
            [
                size,
                round(append_rate),
                round(avg_len, 1),
                gen_inc * 1e6,
                ver_inc * 1e6,
                gen_con * 1e6,
                ver_con * 1e6,
            ]
        )
        raw[str(size)] = {
            "append_per_s": append_rate,
            "inclusion_len": avg_len,
            "inclusion_gen_us": gen_inc * 1e6,
            "inclusion_verify_us": ver_inc * 1e6,
            "consistency_gen_us": gen_con * 1e6,
            "consistency_verify_us": ver_con * 1e6,
        }
        size *= 10
    raw["overall_append_per_s"] = appended / (time.perf_counter() - started)
    return rows, raw


def sealing(count: int) -> float:
    custodian = CustodianPrivateKey.generate().public
    records = [record(n) for n in range(count)]
    start = time.perf_counter()
    for r in records:
        seal_record(custodian, r)
    return count / (time.perf_counter() - start)


async def stored_log(entries: int, tmp: Path) -> dict[str, Any]:
    custodian = CustodianPrivateKey.generate()
    log_key = Ed25519PrivateKey.generate()
    store = await open_store(f"sqlite+aiosqlite:///{tmp / 'log.db'}")
    try:
        leaves = []
        for n in range(entries):
            leaf = seal_record(custodian.public, record(n))
            leaves.append(LogLeaf(f"bench-{n:08d}", leaf, hash_leaf(leaf), "dev1"))
        singles = min(1000, entries)
        start = time.perf_counter()
        for leaf in leaves[:singles]:
            await store.append_records([leaf], 0.0)
        single_rate = singles / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(singles, entries, 100):
            await store.append_records(leaves[i : i + 100], 0.0)
        batch_rate = (entries - singles) / max(time.perf_counter() - start, 1e-9)
        tree = MerkleTree(leaf.leaf_hash for leaf in leaves)
        for size in sorted({entries // 4, entries // 2, entries}):
            head = sign_tree_head(
                TreeHead(
                    log_id="bench.test/records", size=size, root=tree.root(size), timestamp_ms=size
                ),
                log_key,
            )
            await store.put_tree_head(TreeHeadRow(size, head.head_bytes, head.signature, 0.0))
        start = time.perf_counter()
        report = await verify_log(store, log_key.public_key())
        verify_s = time.perf_counter() - start
        assert report.ok, report.problems
        start = time.perf_counter()
        summary = await export_bag(store, custodian, log_key.public_key(), tmp / "bag")
        export_s = time.perf_counter() - start
    finally:
        await store.close()
    return {
        "entries": entries,
        "append_single_per_s": single_rate,
        "append_batch100_per_s": batch_rate,
        "verify_s": verify_s,
        "verify_per_s": entries / verify_s,
        "export_s": export_s,
        "export_per_s": summary.entries / export_s,
        "leaf_bytes": len(leaves[0].leaf),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-size", type=int, default=1_000_000)
    parser.add_argument("--store-entries", type=int, default=20_000)
    parser.add_argument("--seals", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, results to a temp dir")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.smoke:
        args.max_size, args.store_entries, args.seals = 10_000, 500, 100
    rows, merkle_raw = merkle(args.max_size)
    seal_rate = sealing(args.seals)
    with tempfile.TemporaryDirectory() as tmp:
        store_raw = asyncio.run(stored_log(args.store_entries, Path(tmp)))
    doc = benchlib.document(
        name="archive",
        title="Records archive: Merkle log, sealing, stored log, verification, export",
        description=__doc__.split("\n\n")[0],
        packages=["cryptography", "sqlalchemy", "aiosqlite", "bagit"],
        parameters=vars(args) | {"out": str(args.out)},
        summary=[
            f"Merkle appends: {merkle_raw['overall_append_per_s']:,.0f}/s in memory",
            f"HPKE seals (ML-KEM-768+X25519): {seal_rate:,.0f}/s",
            f"stored log appends (SQLite): {store_raw['append_single_per_s']:,.0f}/s one per "
            f"transaction, {store_raw['append_batch100_per_s']:,.0f}/s in batches of 100",
            f"custodian verify_log: {store_raw['verify_per_s']:,.0f} entries/s streamed "
            f"({store_raw['entries']:,} entries); export: {store_raw['export_per_s']:,.0f} "
            "records/s (decrypt + BagIt)",
            "proof length and proof times grow logarithmically with the log (table below)",
        ],
        tables=[
            benchlib.table(
                "Merkle proofs by log size (median of 1,000 random proofs each)",
                [
                    "leaves",
                    "appends/s",
                    "inclusion proof length",
                    "inclusion gen µs",
                    "inclusion verify µs",
                    "consistency gen µs",
                    "consistency verify µs",
                ],
                rows,
            )
        ],
        notes=[
            "Proof generation reads precomputed perfect-subtree hashes (O(log n) lookups).",
            "verify_log recomputes every leaf hash and the tree, and checks each signed head.",
        ],
        results={"merkle": merkle_raw, "seal_per_s": seal_rate, "stored": store_raw},
    )
    out = args.out or (Path(tempfile.mkdtemp()) if args.smoke else benchlib.RESULTS_DIR)
    print(f"wrote {benchlib.write(doc, out)}")


if __name__ == "__main__":
    sys.exit(main())
