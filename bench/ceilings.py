"""The cryptographic ceilings of one Hotline message, measured in the same run.

What no message path can beat, one thread, no I/O:

* **Olm** encrypt+decrypt round trips/s on an established session (``messages.measure_ceiling``:
  raw ``vodozemac``, Hotline's wrappers, the wrappers with a pickling round trip per operation
  as ``channel.py`` did before, and ``channel.py`` as it is now, sessions kept open and pickled
  once per transaction: one message, and a batch, per transaction);
* **HPKE seal**/s of one record to the custodian (ML-KEM-768+X25519, HKDF-SHA256,
  ChaCha20-Poly1305): raw ``cryptography`` ``hpke.Suite.encrypt``,
  ``hotline.crypto.hpke.hpke_seal``, ``hotline.records.sealing.seal_record`` (JSON of the record
  + seal + JSON of the leaf), and the client's way (``capture.build_record``) that also parses
  the custodian key from bytes each time;
* **Merkle append**/s of ``hotline.records.proof.MerkleTree``: append of a ready leaf hash, append
  of a raw leaf (SHA-256 of it first), and append + root + Ed25519-signed tree head + inclusion
  proof, what the server does per record receipt (``server/records_log.py``).

Writes ``bench/results/ceilings.json``. ``bench/report.py`` divides Hotline's messages/s by
these. Usage: ``python bench/ceilings.py [--seconds S] [--smoke] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchlib
import messages
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hotline.crypto.hpke import CustodianPrivateKey, CustodianPublicKey, hpke_seal
from hotline.records.hasher import hash_leaf
from hotline.records.proof import MerkleTree
from hotline.records.sealing import seal_record
from hotline.wire.codec import encode
from hotline.wire.encoding import b64e
from hotline.wire.records import Record, record_info

PACKAGES = ("hotline", "vodozemac", "cryptography")
#: The suite of ``hotline.crypto.hpke`` (checked below against its SUITE_ID).
SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
#: Work per delivered text message in the pairs benchmark (sender → receiver, receipt back).
PER_MESSAGE = {
    "olm": 2,  # the message, and the receiver's delivery receipt
    "hpke": 3,  # sender's record, receiver's record of receipt, the receipt envelope's record
    "merkle": 3,  # the same three records appended to the server's log, each with a receipt
}


def ops_per_second(step: Callable[[], object], seconds: float, repeats: int) -> dict[str, float]:
    """Calls/s of ``step``: calibrated to ``seconds`` a repeat; median of ``repeats``."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < min(0.2, seconds):
        step()
        count += 1
    per_call = (time.perf_counter() - start) / count
    n = max(10, int(seconds / per_call))
    rates = []
    for _ in range(repeats):
        begin = time.perf_counter()
        for _ in range(n):
            step()
        rates.append(n / (time.perf_counter() - begin))
    median = statistics.median(rates)
    return {"ops_per_s": median, "us_per_op": 1e6 / median, "calls_per_repeat": n}


def sample_record(log_id: str) -> Record:
    plaintext = messages.sample_plaintext()
    now = int(time.time() * 1000)
    return Record(
        record_id=secrets.token_urlsafe(16),
        log_id=log_id,
        kind="message",
        side="sent",
        principal=f"potus@{messages.DOMAIN}",
        device=secrets.token_urlsafe(9),
        conversation=f"pm@{messages.DOMAIN}|potus@{messages.DOMAIN}",
        sender=f"potus@{messages.DOMAIN}",
        recipients=[f"pm@{messages.DOMAIN}"],
        message_id=secrets.token_urlsafe(16),
        created_at_ms=now,
        captured_at_ms=now,
        body=messages.message_text("throughput", 0),
        envelope=b64e(plaintext),
    )


def measure_hpke(seconds: float, repeats: int) -> dict[str, Any]:
    custodian = CustodianPrivateKey.generate().public
    raw_key = custodian.to_bytes()
    log_id = "bench-log-" + secrets.token_hex(8)
    record = sample_record(log_id)
    plaintext = encode(record)
    info = record_info(log_id, record.record_id)

    def client_way() -> bytes:  # as capture.build_record: key parsed from bytes per record
        return seal_record(CustodianPublicKey.from_bytes(raw_key), record)

    return {
        "record_plaintext_bytes": len(plaintext),
        "leaf_bytes": len(seal_record(custodian, record)),
        "raw_cryptography": ops_per_second(
            lambda: SUITE.encrypt(plaintext, custodian._key, info=info), seconds, repeats
        ),
        "hpke_seal": ops_per_second(
            lambda: hpke_seal(custodian, plaintext, info), seconds, repeats
        ),
        "seal_record": ops_per_second(lambda: seal_record(custodian, record), seconds, repeats),
        "seal_record_parsing_key": ops_per_second(client_way, seconds, repeats),
        "parse_custodian_key": ops_per_second(
            lambda: CustodianPublicKey.from_bytes(raw_key), seconds, repeats
        ),
    }


def measure_merkle(seconds: float, repeats: int) -> dict[str, Any]:
    custodian = CustodianPrivateKey.generate().public
    leaf = seal_record(custodian, sample_record("bench-log"))
    leaf_hash = hash_leaf(leaf)
    log_key = Ed25519PrivateKey.generate()
    tree = MerkleTree()
    raw_tree = MerkleTree()
    receipt_tree = MerkleTree()

    def receipt() -> None:  # what the server adds per record: append, root, sign, proof
        index = receipt_tree.append(hash_leaf(leaf))
        size = receipt_tree.size
        log_key.sign(receipt_tree.root(size) + size.to_bytes(8, "big"))
        receipt_tree.inclusion_proof(index, size)

    return {
        "leaf_bytes": len(leaf),
        "append": ops_per_second(lambda: tree.append(leaf_hash), seconds, repeats),
        "append_entry": ops_per_second(lambda: raw_tree.append_entry(leaf), seconds, repeats),
        "append_root_sign_proof": ops_per_second(receipt, seconds, repeats),
        "tree_size_at_end": tree.size,
    }


def measure_olm(smoke: bool) -> dict[str, Any]:
    opts = messages.Options(
        messages=0,
        latency_samples=0,
        olm_rounds=500 if smoke else 20_000,
        olm_warmup=100 if smoke else 2_000,
        olm_repeats=1 if smoke else 3,
        warmup_messages=0,
        cost_repeats=0,
        postgres=False,
        smoke=smoke,
        out=None,
    )
    return messages.measure_ceiling(opts)


def rows(results: dict[str, Any]) -> list[list[Any]]:
    olm, hp, mk = results["olm"], results["hpke"], results["merkle"]
    olm_rows = list(benchlib.olm_ratios(olm))
    table = []
    for label, fig, unit in (
        *((f"Olm e+d: {label}", fig, "round_trips_per_s") for label, fig, _ in olm_rows),
        ("HPKE seal: raw `cryptography` `hpke.Suite.encrypt`", hp["raw_cryptography"], None),
        ("HPKE seal: `hotline.crypto.hpke.hpke_seal`", hp["hpke_seal"], None),
        ("HPKE seal: `records.sealing.seal_record`", hp["seal_record"], None),
        (
            "HPKE seal: `seal_record` + key parse (as `capture.py`)",
            hp["seal_record_parsing_key"],
            None,
        ),
        (
            "custodian key parse alone (`CustodianPublicKey.from_bytes`)",
            hp["parse_custodian_key"],
            None,
        ),
        ("Merkle: `MerkleTree.append` (leaf hash given)", mk["append"], None),
        ("Merkle: `append_entry` (SHA-256 of the leaf + append)", mk["append_entry"], None),
        (
            "Merkle: append + root + Ed25519 sign + inclusion proof",
            mk["append_root_sign_proof"],
            None,
        ),
    ):
        rate = fig[unit] if unit else fig.get("ops_per_s", fig.get("round_trips_per_s"))
        table.append([label, rate, 1e6 / rate])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per repeat of each figure")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny, results to a temp dir")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quiet-load", type=float, default=-1, help="wait for load < this")
    parser.add_argument("--quiet-wait", type=float, default=600)
    args = parser.parse_args()
    quiet = benchlib.wait_until_quiet(args.quiet_load, args.quiet_wait)
    seconds, repeats = (0.05, 1) if args.smoke else (args.seconds, args.repeats)
    print("[ceilings] Olm, HPKE, Merkle ...", flush=True)
    results: dict[str, Any] = {
        "olm": measure_olm(args.smoke),
        "hpke": measure_hpke(seconds, repeats),
        "merkle": measure_merkle(seconds, repeats),
        "per_message": PER_MESSAGE,
        "quiet": quiet,
        "load_average_after": benchlib.load_average(),
    }
    table = rows(results)
    doc = benchlib.document(
        name="ceilings",
        title="Ceilings: Olm, HPKE sealing and Merkle appends alone",
        description=(
            "The cryptographic work of a message without any I/O, one thread: what Hotline's "
            "message rates are divided by in the comparison section."
        ),
        packages=PACKAGES,
        parameters={"seconds": seconds, "repeats": repeats, "smoke": args.smoke},
        summary=[
            *(f"{row[0]}: {row[1]:,.0f}/s" for row in table if "custodian" not in row[0]),
            *benchlib.olm_target_lines(results["olm"]),
        ],
        tables=[
            benchlib.table(
                "Ceilings (operations per second, one thread)",
                ["operation", "ops/s", "µs/op"],
                table,
                f"HPKE: a {results['hpke']['record_plaintext_bytes']}-byte record (a text "
                f"message with its envelope), {results['hpke']['leaf_bytes']}-byte leaf. Merkle: "
                f"tree grown to {results['merkle']['tree_size_at_end']:,} leaves. Medians of "
                f"{repeats} repeat(s).",
            )
        ],
        notes=[
            "Per delivered text message in the pairs benchmark Hotline does at least 2 Olm "
            "encrypt+decrypt (the message and the delivery receipt), 3 HPKE seals and 3 Merkle "
            "appends with a signed receipt (sender's record, receiver's record, the receipt's "
            "record), so its ceiling in messages/s is the figure here divided by 2 or 3.",
        ],
        results=results,
    )
    out = args.out or (Path(os.environ.get("TMPDIR", "/tmp")) if args.smoke else None)
    path = benchlib.write(doc, out or benchlib.RESULTS_DIR)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
