"""transparency-dev/merkle test vectors (RFC 6962 / RFC 9162 §2.1) against hotline.records.

Every JSON case under ``tests/vectors/merkle`` is its own test: ``wantErr: false`` must verify,
``wantErr: true`` must raise a ProofInvalid (and nothing else).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from hotline.records.proof import MerkleTree
from hotline.records.verify import verify_consistency, verify_inclusion
from hotline.wire.errors import ProofInvalid

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors" / "merkle"
SHARED = REPO.parent / "shared" / "vectors" / "merkle"

# The leaves of transparency-dev/merkle's reference tree (proof/verify_test.go).
GO_LEAVES = [
    bytes.fromhex(h)
    for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f"]
]  # fmt: skip


def _cases(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [pytest.param(f, id=str(f.relative_to(VECTORS / kind))) for f in files]


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text())
    case["proof"] = [base64.b64decode(p) for p in case["proof"] or []]
    for key in ("root", "leafHash", "root1", "root2"):
        if key in case:
            case[key] = base64.b64decode(case[key])
    return case


def _check(want_err: bool, verify: Any, *args: Any) -> None:
    if want_err:
        with pytest.raises(ProofInvalid):
            verify(*args)
    else:
        verify(*args)


def test_vectors_present() -> None:
    assert len(_cases("inclusion")) > 80
    assert len(_cases("consistency")) > 80


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    c = _load(path)
    args = (c["leafHash"], c["leafIdx"], c["treeSize"], c["proof"], c["root"])
    _check(c["wantErr"], verify_inclusion, *args)


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vector(path: Path) -> None:
    c = _load(path)
    args = (c["size1"], c["size2"], c["proof"], c["root1"], c["root2"])
    _check(c["wantErr"], verify_consistency, *args)


def _happy(kind: str) -> list[Any]:
    return [p for p in _cases(kind) if p.values[0].name == "happy-path.json"]


@pytest.mark.parametrize("path", _happy("inclusion"))
def test_generated_inclusion_matches_vector(path: Path) -> None:
    c = _load(path)
    if c["leafHash"] != MerkleTree.from_entries(GO_LEAVES).leaf_hash(c["leafIdx"]):
        pytest.skip("vector uses a synthetic leaf, not the reference tree")
    tree = MerkleTree.from_entries(GO_LEAVES)
    assert tree.inclusion_proof(c["leafIdx"], c["treeSize"]) == c["proof"]
    assert tree.root(c["treeSize"]) == c["root"]


@pytest.mark.parametrize("path", _happy("consistency"))
def test_generated_consistency_matches_vector(path: Path) -> None:
    c = _load(path)
    tree = MerkleTree.from_entries(GO_LEAVES)
    assert tree.consistency_proof(c["size1"], c["size2"]) == c["proof"]
    assert (tree.root(c["size1"]), tree.root(c["size2"])) == (c["root1"], c["root2"])


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/vectors/merkle not checked out")
def test_copy_equals_shared() -> None:
    def tree(root: Path) -> dict[str, bytes]:
        return {str(f.relative_to(root)): f.read_bytes() for f in root.rglob("*") if f.is_file()}

    assert tree(VECTORS) == tree(SHARED)
