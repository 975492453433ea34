"""RFC 9162 section 2.1 hashing of the tamper-evident log (CONTRACT 8).

Standard library only: third parties verify with the same few lines."""

from __future__ import annotations

import hashlib

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """The hash of one leaf: the record's value exactly as written to the reports topic."""
    return hashlib.sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node from its two children."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()
