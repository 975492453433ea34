"""The canonical content of a report: what idempotency compares (CONTRACT section 2).

Content is compared after validation and normalisation (defaults filled in, timestamps in
UTC), so the hash is taken over the validated model, never over the bytes received."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel


def canonical_content(report: BaseModel) -> bytes:
    """Deterministic JSON of a validated report: every field, sorted keys, UTC 'Z' times.

    The stdlib encoder is used on purpose: the hash must not depend on which JSON library
    happens to be installed."""
    data = report.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("ascii")


def content_hash(report: BaseModel) -> str:
    """SHA-256 (hex) of :func:`canonical_content`."""
    return hashlib.sha256(canonical_content(report)).hexdigest()
