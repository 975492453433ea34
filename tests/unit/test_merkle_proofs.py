"""The log's tree and proofs against RFC 9162 2.1 written out naively (recursion over lists),
for random sizes; and the verifiers refuse a wrong leaf, index, size, root or path."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from core.merkle import (
    EMPTY_ROOT,
    RootBuilder,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from services.store.log.tree import MerkleTree


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"entry {i}".encode()) for i in range(n)]


def tree_of(d: list[bytes]) -> MerkleTree:
    tree = MerkleTree()
    tree.extend(d[: len(d) // 3])  # appended in two batches, as heads do
    tree.extend(d[len(d) // 3 :])
    return tree


def test_empty_tree_root() -> None:
    assert root_of([]) == EMPTY_ROOT == MerkleTree().root(0)


@given(n=st.integers(1, 140), data=st.data())
@settings(max_examples=200, deadline=None)
def test_roots_and_inclusion_proofs_equal_the_naive_recursion(n: int, data: st.DataObject) -> None:
    d = leaves(n)
    tree = tree_of(d)
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    root = mth(d[:size])
    assert tree.root(size) == root == root_of(d[:size])
    proof = tree.inclusion(index, size)
    assert proof == path(index, d[:size])
    assert verify_inclusion(d[index], index, size, proof, root)
    # a wrong leaf, index, size or root, or a shortened path, fails
    assert not verify_inclusion(leaf_hash(b"forged"), index, size, proof, root)
    if size > 1:
        assert not verify_inclusion(d[index], (index + 1) % size, size, proof, root)
        assert not verify_inclusion(d[index], index, size, proof[:-1], root)
    if size < n:  # the path of a smaller tree does not lead to a larger tree's root
        assert not verify_inclusion(d[index], index, size + 1, proof, mth(d[: size + 1]))
    assert not verify_inclusion(d[index], index, size, proof, leaf_hash(b"other root"))
    assert tree.index_of(d[index], size) == index


@given(n=st.integers(1, 140), data=st.data())
@settings(max_examples=200, deadline=None)
def test_consistency_proofs_equal_the_naive_recursion(n: int, data: st.DataObject) -> None:
    d = leaves(n)
    tree = tree_of(d)
    second = data.draw(st.integers(1, n))
    first = data.draw(st.integers(1, second))
    proof = tree.consistency(first, second)
    assert proof == ([] if first == second else subproof(first, d[:second], True))
    r1, r2 = mth(d[:first]), mth(d[:second])
    assert verify_consistency(first, second, r1, r2, proof)
    if first < second:
        assert not verify_consistency(first, second, leaf_hash(b"x"), r2, proof)
        assert not verify_consistency(first, second, r1, leaf_hash(b"x"), proof)
        forked = [*d[: first - 1], leaf_hash(b"rewritten"), *d[first:second]]
        assert not verify_consistency(first, second, r1, mth(forked), proof)
        if proof:
            assert not verify_consistency(first, second, r1, r2, proof[:-1])


def test_root_builder_gives_every_prefix_root() -> None:
    d = leaves(70)
    builder = RootBuilder()
    for i, leaf in enumerate(d):
        builder.append(leaf)
        assert builder.root() == mth(d[: i + 1])
