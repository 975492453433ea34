"""The Ed25519 key that signs tree heads: a PEM file under TRUCE_HOME created 0600 on first
use, or a mounted one (TRUCE_LOG_SIGNING_KEY). Only the head publisher loads it."""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.errors import ConfigError
from core.merkle import key_id, tree_head_message
from schemas.log import LogKey


class HeadSigner:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(self.public_raw)

    def sign(self, tree_size: int, timestamp_ms: int, root: bytes) -> str:
        """Standard base64 of the signature over the canonical head message."""
        message = tree_head_message(tree_size, timestamp_ms, root)
        return base64.b64encode(self._key.sign(message)).decode()

    def public(self) -> LogKey:
        pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return LogKey(
            algorithm="Ed25519",
            key_id=self.key_id,
            public_key=base64.b64encode(self.public_raw).decode(),
            public_key_pem=pem.decode(),
        )


def load_or_create(path: Path, *, create: bool) -> HeadSigner:
    """The key at ``path``; when missing and ``create``, a new one written there 0600
    (atomically: two processes starting together end up with the same key)."""
    if not path.exists():
        if not create:
            raise ConfigError(
                f"no log signing key at {path}",
                hint="mount the key there or point TRUCE_LOG_SIGNING_KEY at it",
            )
        _create(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"the log signing key {path} cannot be read: {exc}",
            hint="it must be an unencrypted PKCS8 PEM Ed25519 private key",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"the log signing key {path} is not an Ed25519 key")
    return HeadSigner(key)


def _create(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
        os.fsync(fd)
        os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process was first: keep theirs
            os.link(temp, path)
    finally:
        os.unlink(temp)
