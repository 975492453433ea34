"""The tree-head key: created 0600 once and reused, its id is the SHA-256 of the raw
public key, its signatures verify with the third-party checker, a missing mounted key or a
key of another kind is a clear configuration error."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from core.errors import ConfigError
from core.merkle import leaf_hash
from services.store.log.signer import load_or_create
from truce_audit.heads import AuditFailure, check_head, public_key


def test_the_key_is_created_private_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "log" / "signing-key.pem"
    first = load_or_create(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    again = load_or_create(path, create=True)
    assert again.key_id == first.key_id == hashlib.sha256(first.public_raw).hexdigest()
    served = first.public().model_dump()
    assert base64.b64decode(served["public_key"]) == first.public_raw
    assert public_key(served) == first.public_raw


def test_signatures_verify_with_the_auditor_and_bind_every_field(tmp_path: Path) -> None:
    signer = load_or_create(tmp_path / "k.pem", create=True)
    root = leaf_hash(b"entry")
    stamp = 1_456_000_000_000
    head = {"tree_size": 7, "root_hash": root.hex(), "timestamp": stamp,
            "signature": signer.sign(7, stamp, root), "key_id": signer.key_id}  # fmt: skip
    assert check_head(head, signer.public_raw) == root
    for field, value in (("tree_size", 8), ("timestamp", 1), ("root_hash", leaf_hash(b"x").hex())):
        with pytest.raises(AuditFailure, match="does not verify"):
            check_head({**head, field: value}, signer.public_raw)
    other = load_or_create(tmp_path / "other.pem", create=True)
    with pytest.raises(AuditFailure, match="signed by key"):
        check_head(head, other.public_raw)
    with pytest.raises(AuditFailure, match="key_id"):
        public_key({**signer.public().model_dump(), "key_id": other.key_id})


def test_a_missing_or_foreign_key_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no log signing key"):
        load_or_create(tmp_path / "mounted.pem", create=False)
    ec = tmp_path / "ec.pem"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        load_or_create(ec, create=False)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_or_create(garbage, create=False)
