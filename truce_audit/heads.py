"""Checking a signed tree head: Ed25519 over ``core.merkle.tree_head_message``."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.merkle import key_id, tree_head_message


class AuditFailure(Exception):
    """What was checked does not hold; the message says what, the hint what to try."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def public_key(key: dict[str, Any]) -> bytes:
    """The raw public key of a ``GET /v1/log/key`` answer, checked against its key id."""
    try:
        raw = base64.b64decode(key["public_key"], validate=True)
    except (KeyError, binascii.Error) as exc:
        raise AuditFailure(f"the log key is malformed: {exc}") from None
    if key_id(raw) != key.get("key_id"):
        raise AuditFailure("the log key's key_id is not the SHA-256 of its public key")
    return raw


def check_head(head: dict[str, Any], key: bytes) -> bytes:
    """Verify the signature of a head (the five public fields); its root hash, as bytes."""
    if head.get("key_id") != key_id(key):
        raise AuditFailure(
            f"the head was signed by key {head.get('key_id')}, not {key_id(key)}",
            hint="pass the log's published key with --key FILE",
        )
    try:
        root = bytes.fromhex(head["root_hash"])
        message = tree_head_message(int(head["tree_size"]), int(head["timestamp"]), root)
        signature = base64.b64decode(head["signature"], validate=True)
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except InvalidSignature:
        raise AuditFailure(
            f"the signature of the head of tree size {head.get('tree_size')} does not verify"
        ) from None
    except (KeyError, ValueError, binascii.Error) as exc:
        raise AuditFailure(f"the head is malformed: {exc}") from None
    return root
