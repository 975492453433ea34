"""RFC 9162 section 2.1 hashing and proof checking of the tamper-evident log (CONTRACT 8).

Standard library only: third parties verify with these same few functions (the auditor in
``truce_audit/`` imports this module and nothing else of ours)."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH of the empty tree (RFC 9162 2.1.1)."""

HEAD_CONTEXT = b"truce-tree-head-v1\x00"
"""Domain separation of the signed head message: a signature made for anything else never
verifies as a tree head."""


def leaf_hash(entry: bytes) -> bytes:
    """The hash of one leaf: the record's value exactly as written to the reports topic."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node from its two children."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def split(size: int) -> int:
    """The size of the left subtree of a tree of ``size`` > 1 leaves: the largest power of
    two smaller than ``size`` (RFC 9162 2.1.1)."""
    return 1 << ((size - 1).bit_length() - 1)


class RootBuilder:
    """Streaming MTH: leaves are appended one by one, the root of what was appended so far
    is available at any point in O(log n). Holds only the right edge of the tree (the
    perfect subtrees of the binary decomposition of the size), so a million leaves need a
    few hundred bytes."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash (not the entry: hash it with :func:`leaf_hash`)."""
        self.size += 1
        size, value = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, value = left_size + size, node_hash(left, value)
        self._stack.append((size, value))

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


def root_of(leaves: Iterable[bytes]) -> bytes:
    """MTH of a sequence of leaf hashes."""
    builder = RootBuilder()
    for leaf in leaves:
        builder.append(leaf)
    return builder.root()


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 2.1.3.2: does ``path`` prove leaf hash ``leaf`` at ``index`` in the tree of
    ``tree_size`` leaves whose root is ``root``?"""
    if index < 0 or index >= tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: does ``proof`` show that the tree of ``first`` leaves with root
    ``first_root`` is a prefix of the tree of ``second`` leaves with root ``second_root``?"""
    if first < 0 or first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof  # the empty tree is a prefix of every tree
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: its root is a node of the second
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def tree_head_message(tree_size: int, timestamp_ms: int, root: bytes) -> bytes:
    """The exact bytes an Ed25519 tree-head signature covers:
    ``b"truce-tree-head-v1\\x00" || uint64be(timestamp_ms) || uint64be(tree_size) || root``
    (the fields of RFC 6962's TreeHeadSignature, behind our own context string)."""
    if len(root) != HASH_SIZE:
        raise ValueError(f"a root hash has {HASH_SIZE} bytes, not {len(root)}")
    return HEAD_CONTEXT + struct.pack(">QQ", timestamp_ms, tree_size) + root


def key_id(public_key: bytes) -> str:
    """The id of a signing key: hex SHA-256 of its raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_key).hexdigest()
