"""RFC 9162 section 2.1.1 hashing, checked against hashlib spelled out by hand."""

import hashlib

from core.merkle import leaf_hash, node_hash


def test_leaf_hash_is_sha256_of_zero_byte_and_entry() -> None:
    assert leaf_hash(b"") == bytes.fromhex(
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )  # RFC 6962's MTH of the single empty leaf
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()


def test_node_hash_prefixes_one_byte() -> None:
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert node_hash(left, right) != node_hash(right, left)
