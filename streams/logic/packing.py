"""Stage one's placements travel to stage two packed: one folded record per area and
batch, listing that area's placements in order.

Kafka and Faust cost about as much per record as the classification itself, so stage two
then pays them once per area and batch instead of once per report. A pack is bounded in
bytes so that it fits one producer batch. Order within an area is kept (the packs of an
area go, in order, to the area's partition), and stage two still reads an unpacked
placement (a record written before packing existed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

PACK_BYTES = 64 * 1024
_OPEN, _SEP, _CLOSE = b'{"placements":[', b",", b"]}"


def pack(records: Iterable[tuple[str, bytes]], limit: int = PACK_BYTES) -> list[tuple[str, bytes]]:
    """Group encoded placements by key into packs of at most ``limit`` bytes (a single
    placement larger than that gets a pack of its own), keeping their order per key."""
    packs: list[tuple[str, list[bytes]]] = []
    open_pack: dict[str, tuple[list[bytes], list[int]]] = {}  # key -> (parts, [size])
    for key, value in records:
        current = open_pack.get(key)
        if current is not None and current[1][0] + len(value) + 1 <= limit:
            current[0].append(value)
            current[1][0] += len(value) + 1
            continue
        parts = [value]
        open_pack[key] = (parts, [len(_OPEN) + len(value) + len(_CLOSE)])
        packs.append((key, parts))
    return [(key, _OPEN + _SEP.join(parts) + _CLOSE) for key, parts in packs]


def unpack(record: Any) -> list[dict[str, Any]]:
    """The placements of one folded record, packed or not."""
    if isinstance(record, dict) and "placements" in record:
        placements: list[dict[str, Any]] = record["placements"]
        return placements
    return [record]
