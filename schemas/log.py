"""The tamper-evident log's records and answers (CONTRACT 8).

A :class:`SignedHead` is the record on the log-heads topic. Its ``offsets`` say which
records of the reports topic it covers (those below each partition's end offset), which is
what makes the leaf order a function of the two topics: the leaves a head adds are the
records between the previous head's offsets and its own, ordered by (partition, offset)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

HEX32 = r"^[0-9a-f]{64}$"
PUBLIC_HEAD_FIELDS = ("tree_size", "root_hash", "timestamp", "signature", "key_id")
"""What ``GET /v1/log/head`` answers and an edition pins; the signature covers the first
three (see ``core.merkle.tree_head_message``)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TreeHead(_Frozen):
    """A signed tree head as served and pinned (``GET /v1/log/head``)."""

    tree_size: int = Field(ge=0, description="Leaves the tree has.")
    root_hash: str = Field(pattern=HEX32, description="RFC 9162 MTH, hex.")
    timestamp: int = Field(ge=0, description="When it was signed, ms since 1970-01-01 UTC.")
    signature: str = Field(description="Ed25519 signature (standard base64, 64 bytes).")
    key_id: str = Field(pattern=HEX32, description="Hex SHA-256 of the raw public key.")


class SignedHead(TreeHead):
    """A tree head as recorded on the heads topic, with the reports it covers."""

    offsets: dict[str, int] = Field(
        description="Reports-topic partition (decimal) → end offset (exclusive) covered."
    )

    def public(self) -> dict[str, Any]:
        """The five fields served and pinned by editions."""
        return {name: getattr(self, name) for name in PUBLIC_HEAD_FIELDS}

    def end(self, partition: int) -> int:
        return self.offsets.get(str(partition), 0)


class LogKey(_Frozen):
    algorithm: str = Field(description="Always Ed25519.")
    key_id: str = Field(pattern=HEX32)
    public_key: str = Field(description="The raw 32-byte public key, standard base64.")
    public_key_pem: str = Field(description="The same key as SubjectPublicKeyInfo PEM.")


class InclusionProof(_Frozen):
    leaf_index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    leaf_hash: str = Field(pattern=HEX32)
    root_hash: str = Field(pattern=HEX32, description="Root of the tree of tree_size leaves.")
    audit_path: list[str] = Field(description="RFC 9162 2.1.3 audit path, hex, leaf first.")


class ConsistencyProof(_Frozen):
    first: int = Field(ge=0)
    second: int = Field(ge=0)
    first_root: str = Field(pattern=HEX32)
    second_root: str = Field(pattern=HEX32)
    consistency_path: list[str] = Field(description="RFC 9162 2.1.4 proof, hex.")


class LogEntry(_Frozen):
    index: int = Field(ge=0, description="The leaf index in the tree.")
    partition: int = Field(ge=0, description="Where the record is on the reports topic.")
    offset: int = Field(ge=0)
    leaf_input: str = Field(
        description="The record's value exactly as on the reports topic, standard base64."
    )


class LogEntries(_Frozen):
    start: int = Field(ge=0)
    end: int = Field(ge=0, description="Exclusive; may be below the asked end (paging).")
    tree_size: int = Field(ge=0, description="The current head's size.")
    entries: list[LogEntry]
