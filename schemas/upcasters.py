"""Upcasters: turn envelopes written by older code into the current schema version.

The reports topic is never rewritten, so a schema change adds a function here that lifts
version v to v+1, and every reader calls :func:`upcast` before validating."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

SCHEMA_VERSION = 1
"""The envelope schema version this code writes and understands."""

Payload = dict[str, Any]
UPCASTERS: dict[int, Callable[[Payload], Payload]] = {}
"""Version v -> function turning a v payload into a v+1 payload. Empty while only v1
exists; the version field is set by :func:`upcast`, so upcasters need not touch it."""


class SchemaVersionError(ValueError):
    """An envelope this code cannot bring to :data:`SCHEMA_VERSION`."""


def upcast(payload: Payload) -> Payload:
    """The envelope lifted to the current version; the input is left untouched."""
    if not isinstance(payload, dict):
        raise SchemaVersionError(f"an envelope is a JSON object, not {type(payload).__name__}")
    version = payload.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise SchemaVersionError(f"envelope has no integer schema_version (got {version!r})")
    current = SCHEMA_VERSION
    if version > current:
        raise SchemaVersionError(
            f"envelope schema_version {version} is newer than this code understands "
            f"({current}); upgrade truce before reading this log"
        )
    if version == current:
        return payload
    lifted = copy.deepcopy(payload)
    while version < current:
        step = UPCASTERS.get(version)
        if step is None:
            raise SchemaVersionError(f"no upcaster from schema_version {version} to {version + 1}")
        lifted = {**step(lifted), "schema_version": version + 1}
        version += 1
    return lifted
