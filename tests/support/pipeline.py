"""Runs the two pure stages over an in-memory log the way the Kafka topology does:
partitioned by key (offsets per partition), stage one reading the reports and the
references between them (verdicts, incident claims and memberships), stage two the folded
placements, the partitions shared out among workers, and
the workers taking turns in a random order (so a verdict and the report it judges race as
they do on a real broker).

Optional crashes: a crash of a worker either loses its table writes since its last
checkpoint (outputs already sent) or loses the outputs of the record in hand (tables
already written); the worker then resumes every partition it owns from the checkpoint,
with a fresh stage (an empty derived index)."""

from __future__ import annotations

import copy
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.logic.alerting import SpikeRules
from streams.logic.records import Emit, encode
from streams.logic.rules import load_rules
from streams.logic.stage1 import Stage1
from streams.logic.stage2 import Stage2

Tables = list[dict[str, Any]]


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
        value = orjson.loads(encode(emit.value))  # as a consumer reads it
        if emit.role == "deadletter":
            self.deadletters.append(value)
        else:
            self.emitted.setdefault((emit.role, emit.key), []).append(value)

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


# a worker's handler: (its tables, the input it reads, the record, its offset) -> outputs
Handler = Callable[[Tables, str, dict[str, Any], int], list[Emit]]


@dataclass
class _Worker:
    """One consumer of a stage: the topic partitions it owns, their positions and the
    tables they share (a faust table spans every partition a worker is assigned)."""

    sources: list[tuple[str, int]]  # (topic, partition)
    handler: Handler
    tables: Tables
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    saved: tuple[dict[tuple[str, int], int], Tables] | None = None

    def pending(self, logs: dict[str, list[list[dict[str, Any]]]]) -> list[tuple[str, int]]:
        return [s for s in self.sources if self.positions.get(s, 0) < len(logs[s[0]][s[1]])]

    def checkpoint(self) -> None:
        self.saved = (dict(self.positions), copy.deepcopy(self.tables))


def run(
    log: list[dict[str, Any]],
    designated: dict[str, bool],
    partitions: int = 3,
    crashes: int = 0,
    rng: random.Random | None = None,
    workers: int = 1,
) -> Sinks:
    rng = rng or random.Random(0)
    sinks = Sinks()
    logs: dict[str, list[list[dict[str, Any]]]] = {
        topic: [[] for _ in range(partitions)] for topic in ("reports", "verdicts", "folded")
    }
    for envelope in log:  # ingest writes every revision under its report's own id
        logs["reports"][partition_of(envelope["report"]["report_id"], partitions)].append(envelope)

    def route(emits: list[Emit]) -> None:
        for emit in emits:
            if emit.role in ("folded", "verdicts"):
                record = orjson.loads(encode(emit.value))  # as the next stage reads it
                logs[emit.role][partition_of(emit.key, partitions)].append(record)
            else:
                sinks.take(emit)

    def fold(tables: Tables, topic: str, record: dict[str, Any], _offset: int) -> list[Emit]:
        stage = Stage1(tables[0], tables[1], tables[2])
        return stage.handle(record) if topic == "reports" else stage.handle_reference(record)

    owned = [[p for p in range(partitions) if p % workers == w] for w in range(workers)]
    pool = [
        _Worker([(t, p) for p in mine for t in ("reports", "verdicts")], fold, [{}, {}, {}])
        for mine in owned
    ] + [
        _Worker([("folded", p) for p in mine], _Classifier(designated), [{}, {}, {}])
        for mine in owned
    ]
    for worker in pool:
        worker.checkpoint()
    budget = crashes
    while True:
        ready = [(w, w.pending(logs)) for w in pool]
        ready = [(w, sources) for w, sources in ready if sources]
        if not ready:
            return sinks
        worker, sources = rng.choice(ready)
        topic, partition = rng.choice(sources)
        offset = worker.positions.get((topic, partition), 0)
        emits = worker.handler(worker.tables, topic, logs[topic][partition][offset], offset)
        if budget and rng.random() < 0.1:
            budget -= 1
            assert worker.saved is not None
            positions, tables = worker.saved
            if rng.random() < 0.5:  # table writes since the checkpoint lost, outputs sent
                route(emits)
                worker.tables[:] = copy.deepcopy(tables)
            else:  # this record's outputs lost, every table write kept
                worker.tables[:] = [dict(t) for t in worker.tables]  # same content, new process
            worker.positions = dict(positions)
            continue
        route(emits)
        worker.positions[(topic, partition)] = offset + 1
        if rng.random() < 0.3:  # an offset commit: a new checkpoint
            worker.checkpoint()


RULES = load_rules()


class _Classifier:
    """One stage-two worker (batches of one record: the spike rules of the areas it
    touched run after each); a new one (empty derived index) after every crash."""

    def __init__(self, designated: dict[str, bool]) -> None:
        self.designated = designated
        self.worker: Stage2 | None = None

    def __call__(
        self, tables: Tables, _topic: str, record: dict[str, Any], offset: int
    ) -> list[Emit]:
        if self.worker is None or self.worker.placed is not tables[0]:
            rules = SpikeRules(RULES, frozenset(), tables[2])
            self.worker = Stage2(self.designated, tables[0], tables[1], rules)
        emits = self.worker.handle(record, offset)
        for area in self.worker.take_dirty():
            emits.extend(self.worker.evaluate(area, offset))
        return emits
