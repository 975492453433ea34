"""Runs the two pure stages over an in-memory log the way the Kafka topology does
(partitioned by key, offsets per partition), with optional crashes: a crash either loses
table writes after a checkpoint (outputs already sent) or loses outputs (tables already
written), then the partition is reprocessed from the checkpoint."""

from __future__ import annotations

import copy
import random
import zlib
from dataclasses import dataclass, field
from typing import Any

from streams.logic.stage1 import Emit, Stage1
from streams.logic.stage2 import Stage2


def partition_of(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


@dataclass
class Sinks:
    """What downstream consumers end with: per key, the value of the highest version.

    Redelivery can emit a lower version twice with different content (harmless: a higher
    version follows), but every copy of the highest version must be identical, or a
    ReplacingMergeTree could keep either."""

    emitted: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    deadletters: list[dict[str, Any]] = field(default_factory=list)

    def take(self, emit: Emit) -> None:
        if emit.role == "deadletter":
            self.deadletters.append(emit.value)
        else:
            self.emitted.setdefault((emit.role, emit.key), []).append(emit.value)

    def latest(self, role: str) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for (kind, key), values in self.emitted.items():
            if kind != role:
                continue
            top = max(v["version"] for v in values)
            finals = [v for v in values if v["version"] == top]
            assert all(v == finals[0] for v in finals), f"two contents at version {top}: {key}"
            result[key] = finals[0]
        return result

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return self.latest("metrics")

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        return self.latest("events")


def run(
    log: list[dict[str, Any]],
    designated: dict[str, bool],
    partitions: int = 3,
    crashes: int = 0,
    rng: random.Random | None = None,
) -> Sinks:
    rng = rng or random.Random(0)
    sinks = Sinks()
    inputs: list[list[dict[str, Any]]] = [[] for _ in range(partitions)]
    for envelope in log:
        report = envelope["report"]
        key = report.get("subject") if report["kind"] == "verification" else report["report_id"]
        inputs[partition_of(str(key), partitions)].append(envelope)

    folded: list[list[dict[str, Any]]] = [[] for _ in range(partitions)]

    def route(emits: list[Emit]) -> None:
        for emit in emits:
            if emit.role == "folded":
                folded[partition_of(emit.key, partitions)].append(emit.value)
            else:
                sinks.take(emit)

    for p in range(partitions):
        tables: list[dict[str, Any]] = [{}, {}]
        _replay(inputs[p], tables, lambda t, rec, _o: Stage1(t[0], t[1]).handle(rec), route,
                crashes, rng)  # fmt: skip
    for p in range(partitions):
        tables2: list[dict[str, Any]] = [{}, {}]
        _replay(folded[p], tables2, _Classifier(designated), route, crashes, rng)
    return sinks


class _Classifier:
    """One stage-two worker; a new one (empty derived index) after every crash."""

    def __init__(self, designated: dict[str, bool]) -> None:
        self.designated = designated
        self.worker: Stage2 | None = None

    def __call__(
        self, tables: list[dict[str, Any]], record: dict[str, Any], offset: int
    ) -> list[Emit]:
        if self.worker is None or self.worker.placed is not tables[0]:
            self.worker = Stage2(self.designated, tables[0], tables[1])
        return self.worker.handle(record, offset)


def _replay(records, tables, handle, route, crashes, rng) -> None:  # type: ignore[no-untyped-def]
    """Process records in order; ``crashes`` times, crash and resume from the checkpoint."""
    checkpoint, checkpoint_tables = 0, copy.deepcopy(tables)
    offset = 0
    budget = crashes
    while offset < len(records):
        emits = handle(tables, records[offset], offset)
        if budget and rng.random() < 0.1:
            budget -= 1
            if rng.random() < 0.5:  # table writes since the checkpoint lost, outputs sent
                route(emits)
                tables[:] = copy.deepcopy(checkpoint_tables)
            else:  # this record's outputs lost, every table write kept
                tables[:] = [dict(t) for t in tables]  # same content, new process
            offset = checkpoint
            continue
        route(emits)
        offset += 1
        if rng.random() < 0.3:  # an offset commit: a new checkpoint
            checkpoint, checkpoint_tables = offset, copy.deepcopy(tables)
