"""The in-memory Merkle tree behind the log endpoints: every complete subtree's hash kept
by level, so proofs at any tree size cost O(log² n) hashes at most and no disk read.

Level ``l`` holds, packed 32 bytes each, the hashes of the perfect subtrees covering leaves
``[i·2^l, (i+1)·2^l)``; every left subtree of an RFC 9162 tree is one of them, and the
right edge is recomputed from them. A million leaves take about 64 MB."""

from __future__ import annotations

import threading

from core.merkle import EMPTY_ROOT, HASH_SIZE, node_hash, split


class MerkleTree:
    """Append-only; reads of sizes already appended never block on an append for long."""

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def extend(self, leaves: list[bytes]) -> None:
        """Append leaf hashes in tree order."""
        with self._lock:
            for leaf in leaves:
                self._append(leaf)

    def _append(self, leaf: bytes) -> None:
        levels = self._levels
        levels[0] += leaf
        count, level = len(levels[0]) // HASH_SIZE, 0
        while count % 2 == 0:  # this node completes its parent
            nodes = levels[level]
            parent = node_hash(bytes(nodes[-2 * HASH_SIZE : -HASH_SIZE]), bytes(nodes[-HASH_SIZE:]))
            if len(levels) == level + 1:
                levels.append(bytearray())
            levels[level + 1] += parent
            count, level = count // 2, level + 1

    def truncate(self, size: int) -> None:
        """Forget leaves from ``size`` on (a tentative extension that did not verify)."""
        with self._lock:
            for level, nodes in enumerate(self._levels):
                del nodes[(size >> level) * HASH_SIZE :]

    def leaf(self, index: int) -> bytes:
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def index_of(self, leaf: bytes, tree_size: int) -> int | None:
        """The first index below ``tree_size`` holding this leaf hash (a memory search of
        32 bytes per leaf: a few milliseconds at a million leaves, no index to keep)."""
        if len(leaf) != HASH_SIZE:
            return None
        packed = self._levels[0]
        end = min(tree_size, self.size) * HASH_SIZE
        at = packed.find(leaf, 0, end)
        while at != -1 and at % HASH_SIZE:
            at = packed.find(leaf, at + 1, end)
        return None if at == -1 else at // HASH_SIZE

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves ``[start, end)``; ``start`` is aligned to the left subtree sizes,
        as every subtree the RFC's recursion asks for is."""
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            level = size.bit_length() - 1
            nodes = self._levels[level]
            at = (start >> level) * HASH_SIZE
            return bytes(nodes[at : at + HASH_SIZE])
        k = split(size)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def root(self, tree_size: int) -> bytes:
        self._check(tree_size)
        return EMPTY_ROOT if tree_size == 0 else self._subtree(0, tree_size)

    def inclusion(self, index: int, tree_size: int) -> list[bytes]:
        """RFC 9162 2.1.3.1 PATH(index, D[0:tree_size])."""
        self._check(tree_size)
        if not 0 <= index < tree_size:
            raise ValueError(f"leaf {index} is not in a tree of {tree_size}")
        path: list[bytes] = []
        start, end, m = 0, tree_size, index
        while end - start > 1:
            k = split(end - start)
            if m < k:
                path.append(self._subtree(start + k, end))
                end = start + k
            else:
                path.append(self._subtree(start, start + k))
                start, m = start + k, m - k
        path.reverse()  # the recursion appends from the top; the path lists from the leaf
        return path

    def consistency(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 2.1.4.1 PROOF(first, D[0:second]); empty when first is 0 or second."""
        self._check(second)
        if not 0 <= first <= second:
            raise ValueError(f"tree size {first} is not within {second}")
        if first in (0, second):
            return []
        proof: list[bytes] = []
        start, end, m, whole = 0, second, first, True
        while True:
            n = end - start
            if m == n:
                if not whole:
                    proof.append(self._subtree(start, end))
                break
            k = split(n)
            if m <= k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start, m, whole = start + k, m - k, False
        proof.reverse()
        return proof

    def _check(self, tree_size: int) -> None:
        if not 0 <= tree_size <= self.size:
            raise ValueError(f"the tree has {self.size} leaves, not {tree_size}")
