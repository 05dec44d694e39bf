"""The records API: policy banner, record submission with receipts, tree heads and proofs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hotline.server.context import authenticate, read_struct, records_of, state_of
from hotline.server.responses import ok
from hotline.store import LogLeaf
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import MalformedInput, TreeRangeInvalid
from hotline.wire.records import MAX_LEAF, ConsistencyResponse, RecordsResponse, RecordsUpload


async def policy(request: Request) -> Response:
    """The signed records banner (no authentication: shown before anything is sent)."""
    return ok(records_of(request).signed_policy(state_of(request).now()))


async def submit(request: Request) -> Response:
    """Append sealed records captured by this device; answer with one receipt each."""
    caller = await authenticate(request)
    records = records_of(request)
    state = state_of(request)
    body = await read_struct(request, RecordsUpload)
    leaves = [
        _with_device(
            records.check_leaf(b64d(text, field="leaf", max_len=MAX_LEAF)), caller.device_id
        )
        for text in body.leaves
    ]
    now = state.now()
    # The append reads back the log tail and stores the head signed over it: the receipts
    # need no further read or write.
    appended = await state.store.append_records_tail(
        leaves, now, records.tree.size, records.head_signer(now)
    )
    head = records.adopt(appended.tail, appended.head)
    receipts = [
        await records.receipt(state.store, leaf.record_id, index, now, body.known_size, head)
        for leaf, index in zip(leaves, appended.indices, strict=True)
    ]
    return ok(RecordsResponse(receipts=receipts), status=201)


def _with_device(leaf: LogLeaf, device_id: str) -> LogLeaf:
    return LogLeaf(leaf.record_id, leaf.leaf, leaf.leaf_hash, device_id)


async def tree_head(request: Request) -> Response:
    records = records_of(request)
    state = state_of(request)
    _, signed = await records.signed_head(state.store, state.now())
    return ok({"head": b64e(signed.head_bytes), "signature": b64e(signed.signature)})


def _int_param(request: Request, name: str) -> int:
    try:
        value = int(request.query_params[name])
    except (KeyError, ValueError) as exc:
        raise MalformedInput(f"query parameter {name} must be an integer") from exc
    if value < 0:
        raise MalformedInput(f"{name} must not be negative")
    return value


async def consistency(request: Request) -> Response:
    records = records_of(request)
    first, second = _int_param(request, "first"), _int_param(request, "second")
    if not 0 < first <= second:
        raise TreeRangeInvalid("need 0 < first <= second")
    proof = await records.consistency(state_of(request).store, first, second)
    return ok(ConsistencyResponse(first=first, second=second, proof=[b64e(p) for p in proof]))


async def inclusion(request: Request) -> Response:
    records = records_of(request)
    index, size = _int_param(request, "index"), _int_param(request, "size")
    await records.catch_up(state_of(request).store)
    return ok(
        {
            "index": index,
            "size": size,
            "proof": [b64e(p) for p in records.tree.inclusion_proof(index, size)],
        }
    )
