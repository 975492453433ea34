"""Topic records → ClickHouse rows, validated with the contract's models at this boundary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from core.merkle import leaf_hash
from schemas import (
    Alert,
    AlertDelivery,
    CanonicalReport,
    DeadLetter,
    decode_envelope,
)
from schemas.editions import EditionRecord
from schemas.figures import FIGURE_SETS, FigureSet
from schemas.outputs import WEEKLY_RECORDS
from services.store.derived import snapshot_table


@dataclass(frozen=True)
class Row:
    table: str
    values: list[Any]


RAW_COLUMNS = [
    "report_id", "revision", "kind", "org", "key_name", "received_at", "occurred_at", "area",
    "retracted", "schema_version", "content_hash", "report_json", "kafka_partition",
    "kafka_offset",
]  # fmt: skip
LOG_ENTRY_COLUMNS = ["kafka_partition", "kafka_offset", "leaf_hash", "entry"]
DEAD_LETTER_COLUMNS = [*DeadLetter.model_fields, "kafka_partition", "kafka_offset"]
TABLES = {
    "raw_reports": RAW_COLUMNS,
    "log_entries": LOG_ENTRY_COLUMNS,
    "canonical_reports": list(CanonicalReport.model_fields),
    **{snapshot_table(f): list(WEEKLY_RECORDS[f.name].model_fields) for f in FIGURE_SETS},
    "dead_letters": DEAD_LETTER_COLUMNS,
    "alerts": list(Alert.model_fields),
    "alert_deliveries": list(AlertDelivery.model_fields),
    "editions": ["week", "edition", "published_at", "sha256", "record", "kafka_partition",
                 "kafka_offset", "first_in_log"],
}  # fmt: skip


def raw_row(value: bytes, partition: int, offset: int) -> list[Row]:
    envelope = decode_envelope(value)
    report = envelope.report
    values = [
        report.report_id,
        report.revision,
        report.kind,
        envelope.org,
        envelope.key_name,
        envelope.received_at,
        report.occurred_at,
        getattr(report, "area", ""),
        report.retracted,
        envelope.schema_version,
        envelope.content_hash,
        orjson.dumps(report.model_dump(mode="json")).decode(),
        partition,
        offset,
    ]
    return [Row("raw_reports", values)]


def log_entry_row(value: bytes, partition: int, offset: int) -> list[Row]:
    """Every record of the reports topic is a leaf, whatever it holds: it never fails, so
    the tree covers the topic even where :func:`raw_row` refuses a record."""
    return [Row("log_entries", [partition, offset, leaf_hash(value), value])]


def canonical_row(value: bytes, _partition: int, _offset: int) -> list[Row]:
    record = CanonicalReport.model_validate_json(value)
    return [Row("canonical_reports", [getattr(record, c) for c in TABLES["canonical_reports"]])]


_FIGURE_SETS: dict[str, FigureSet] = {f.name: f for f in FIGURE_SETS}
"""A metric record's ``type`` is the name of its figure set."""


def metric_row(value: bytes, _partition: int, _offset: int) -> list[Row]:
    data = orjson.loads(value)
    if not isinstance(data, dict):
        raise ValueError(f"a metric snapshot is a JSON object, not {type(data).__name__}")
    kind = data.pop("type", None)
    figures = _FIGURE_SETS.get(kind) if isinstance(kind, str) else None
    if figures is None:
        raise ValueError(f"unknown metric snapshot type {kind!r}")
    model = WEEKLY_RECORDS[figures.name].model_validate(data)
    table = snapshot_table(figures)
    return [Row(table, [getattr(model, c) for c in TABLES[table]])]


def dead_letter_row(value: bytes, partition: int, offset: int) -> list[Row]:
    record = DeadLetter.model_validate_json(value)
    return [
        Row(
            "dead_letters",
            [*(getattr(record, c) for c in DeadLetter.model_fields), partition, offset],
        )
    ]


Converter = Callable[[bytes, int, int], list[Row]]


def alert_row(value: bytes, _partition: int, _offset: int) -> list[Row]:
    record = Alert.model_validate_json(value)
    return [Row("alerts", [getattr(record, c) for c in TABLES["alerts"]])]


def delivery_row(value: bytes, _partition: int, _offset: int) -> list[Row]:
    record = AlertDelivery.model_validate_json(value)
    return [Row("alert_deliveries", [getattr(record, c) for c in TABLES["alert_deliveries"]])]


FIRST_IN_LOG = (1 << 64) - 1
"""An edition row's version is this minus its offset: the earliest record wins."""


def edition_row(value: bytes, partition: int, offset: int) -> list[Row]:
    """An edition record, kept byte for byte (validated, never re-encoded)."""
    record = EditionRecord.model_validate_json(value)
    values = [record.week, record.edition, record.published_at, record.sha256, value.decode(),
              partition, offset, FIRST_IN_LOG - offset]  # fmt: skip
    return [Row("editions", values)]
