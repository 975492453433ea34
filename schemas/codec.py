"""Compact JSON to and from bytes: orjson when installed, the stdlib otherwise.

Only transport encoding lives here; hashing uses the stdlib on purpose (see content.py)."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    orjson = None  # type: ignore[assignment]


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    if orjson is not None:
        return orjson.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``ValueError`` (both libraries' decode errors subclass it)."""
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(data)
