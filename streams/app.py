"""The Faust application: thin wiring of the pure stages in streams/logic.

Agents run with concurrency 1, take records in small batches and scale by partitions. A
failure while handling a record stops the worker at once (the supervisor restarts it):
``take_events`` acknowledges a batch even when its processing raised, and at-least-once
delivery would silently become at-most-once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import faust
import orjson
import structlog
from aiokafka.partitioner import murmur2
from faust.web import Request, Response, View

from core.kafka import replication
from core.kafka_access import kafka_access
from core.settings import Settings
from schemas import areas, group_names, parties, topic_names, upcast
from streams.crash import crash as _crash
from streams.faust_adapter import GuardedApp, app_producer, as_current_event, rewind_uncommitted
from streams.logic.alerting import SpikeRules
from streams.logic.packing import pack, unpack
from streams.logic.records import Emit, encode, version_of
from streams.logic.rules import load_rules
from streams.logic.stage1 import Stage1
from streams.logic.stage2 import Stage2
from streams.outbox import KafkaTransport, Outbox, Transport

log = structlog.get_logger("streams")
BATCH = 500
PACKS_PER_BATCH = 16  # classify's batch: packs of up to ~80 placements each
BATCH_WAIT_S = 0.05
FLUSH_TIMEOUT_S = 120.0
HEARTBEATS_PER_SESSION = 4  # Kafka's advice: a third of the session timeout or less
REBALANCE_SESSIONS = 3
"""How long, in session timeouts, the coordinator waits for members to rejoin a
rebalance (a member that died mid-rebalance holds it up this long at most)."""
SNAPSHOT_ROLES = frozenset({"events", "metrics"})
ROCKSDB_OPTIONS = {
    # faust's defaults (a 2 GB block cache and 3 x 64 MB write buffers for each partition
    # of each table) let the worker grow past 1 GB; these bound every partition database
    # to about 12 MB of memory (the state itself is on disk)
    "write_buffer_size": 4 * 2**20,
    "max_write_buffer_number": 2,
    "block_cache_size": 4 * 2**20,
}


_handling = as_current_event
"""``take_events`` iterates the stream in a background task, so the agent's own task has
no current event, and faust refuses table writes without one (the changelog record goes
to the event's partition)."""


def create_app(settings: Settings, transport: Transport | None = None) -> faust.App:
    """The worker's app; ``transport`` replaces Kafka for the outbox (agent tests)."""
    names = topic_names(settings.topic_prefix)
    partitions = settings.kafka_partitions
    kafka = kafka_access(settings)
    copies = replication(settings)
    min_isr = {"min.insync.replicas": str(copies.min_insync)}  # faust has no setting for it
    app = GuardedApp(
        group_names(settings.topic_prefix).streams,
        broker=kafka.faust_broker(),
        broker_credentials=kafka.faust_credentials(),
        store="rocksdb://",
        datadir=str(settings.streams_worker_dir),
        topic_partitions=partitions,
        topic_replication_factor=copies.factor,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.bind_host,
        web_port=settings.streams_port,
        web_in_thread=False,
        # failover in seconds, not faust's default minute: a killed or frozen worker
        # misses its heartbeats and its partitions move when its session times out
        broker_session_timeout=settings.streams_session_timeout_s,
        broker_heartbeat_interval=settings.streams_session_timeout_s / HEARTBEATS_PER_SESSION,
        broker_rebalance_timeout=settings.streams_session_timeout_s * REBALANCE_SESSIONS,
        broker_commit_every=2000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=2048,  # events per topic; a folded pack holds up to 64 KB
        producer_linger_ms=20,
        producer_max_batch_size=256 * 1024,
        producer_acks=-1,
        table_standby_replicas=0,
        key_serializer="raw",
        value_serializer="raw",
    )

    def topic(name: str, compacted: bool = False) -> faust.TopicT:
        config = {"cleanup.policy": "compact"} if compacted else {"retention.ms": "-1"}
        return app.topic(name, partitions=partitions, config={**config, **min_isr}, internal=True)

    # stage one reads the reports (created by ingest, never by us) and the references
    # between them (verdicts, incident claims and memberships, on the verdicts topic): two
    # topics partitioned alike, which faust assigns together (co-partitioned)
    stage1_inputs = app.topic(names.reports, names.verdicts)
    folded = topic(names.folded)
    outputs = {
        "folded": folded,
        "verdicts": topic(names.verdicts),
        "events": topic(names.events, compacted=True),
        "metrics": topic(names.metrics, compacted=True),
        "deadletter": topic(names.deadletter),
        "alerts": topic(names.alerts),  # keyed by fingerprint; the history the alerter reads
    }
    output_names = {role: output.get_topic_name() for role, output in outputs.items()}

    def table(name: str, outbox: Outbox) -> Any:
        schema: Any = faust.Schema(key_serializer="json", value_serializer="json")
        options = dict(ROCKSDB_OPTIONS)  # faust's store pops keys from it
        changelog = app.Table(
            name, partitions=partitions, schema=schema, options=options,
            extra_topic_configs=min_isr,
        )  # fmt: skip
        return outbox.table(changelog)

    # one outbox per agent: each flushes what its own batch wrote
    producer = app_producer(app)  # started before any agent runs
    fold_box = Outbox(transport or KafkaTransport(producer))
    classify_box = Outbox(fold_box.transport)
    stage1 = Stage1(
        table("histories", fold_box), table("verifications", fold_box), table("links", fold_box)
    )
    designated = {code: party.designated for code, party in parties().items()}
    besieged = frozenset(code for code, area in areas().items() if area.besieged)
    stage2 = Stage2(
        designated,
        table("placed", classify_box),
        table("designations", classify_box),
        SpikeRules(load_rules(settings.rules_file), besieged, table("alerts", classify_box)),
    )

    deferred: set[str] = set()  # areas to evaluate once their partition has a record

    def folded_partition(area: str) -> int:
        """The partition of an area on the folded topic (the producer's default
        partitioner: murmur2 of the key, as in Kafka's Java client)."""
        return int(murmur2(area.encode()) & 0x7FFFFFFF) % partitions

    inputs = frozenset({names.reports, names.verdicts, folded.get_topic_name()})

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _partitions_changed(sender: Any, **_: Any) -> None:
        stage2.reset()  # the derived index covers the assigned partitions only
        deferred.clear()
        await rewind_uncommitted(app.consumer, inputs)

    async def send(outbox: Outbox, emits: Iterable[Emit], where: str) -> None:
        """Deliver a batch's table writes and outputs and wait for Kafka to have them all:
        only then may ``take_events`` acknowledge the batch."""
        placements: list[tuple[str, bytes]] = []
        for emit in collapse(emits):
            if emit.role == "folded":
                placements.append((emit.key, encode(emit.value)))
                continue
            outbox.send(output_names[emit.role], emit.key.encode(), encode(emit.value))
        for area, packed in pack(placements):
            outbox.send(output_names["folded"], area.encode(), packed)
        try:  # a flush stuck for long is a fault: restart and have the batch redelivered
            await asyncio.wait_for(outbox.flush(), FLUSH_TIMEOUT_S)
        except Exception:
            _crash(where)

    @app.agent(stage1_inputs, concurrency=1)
    async def fold_reports(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(BATCH, within=BATCH_WAIT_S):  # type: ignore[attr-defined]
            emits: list[Emit] = []
            for event in events:
                with _handling(event):
                    if event.message.topic == names.verdicts:
                        try:
                            emits.extend(stage1.handle_reference(orjson.loads(event.value)))
                        except Exception:
                            _crash("fold_reports")
                        continue
                    try:
                        envelope = decode(event.value)
                    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                        emits.append(_undecodable(event, exc))
                        continue
                    try:
                        emits.extend(stage1.handle(envelope))
                    except Exception:
                        _crash("fold_reports")
            await send(fold_box, emits, "fold_reports")

    @app.agent(folded, concurrency=1)
    async def classify(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(PACKS_PER_BATCH, within=BATCH_WAIT_S):  # type: ignore[attr-defined]
            emits: list[Emit] = []
            last_of_area: dict[str, Any] = {}
            for event in events:
                with _handling(event):
                    try:
                        for placement in unpack(orjson.loads(event.value)):
                            emits.extend(stage2.handle(placement, event.message.offset))
                    except Exception:
                        _crash("classify")
                last_of_area[str(placement["area"])] = event  # a pack holds one area
            # spike rules once per batch and area, in the context (partition, offset) of a
            # record of that area's partition: Faust reads and writes table keys in the
            # current record's partition, so an area's alert state must only ever be
            # touched from its own partition. An area aged by a new day whose partition
            # has no record in this batch waits for that partition's next batch.
            last_of_partition = {event.message.partition: event for event in events}
            waiting = sorted(set(stage2.take_dirty()) | deferred)
            deferred.clear()
            for area in waiting:
                event = last_of_area.get(area) or last_of_partition.get(folded_partition(area))
                if event is None:
                    deferred.add(area)
                    continue
                with _handling(event):
                    try:
                        emits.extend(stage2.evaluate(area, event.message.offset))
                    except Exception:
                        _crash("classify")
            await send(classify_box, emits, "classify")

    @app.page("/readyz")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            recovery = app.tables.recovery  # type: ignore[attr-defined]
            ready = recovery.completed.is_set() and not app.rebalancing
            return self.json({"ready": ready}, status=200 if ready else 503)

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    return app


_REQUIRED = {
    "violation": ("area", "perpetrator", "target", "occurred_at"),
    "delivery": ("area", "status", "occurred_at"),
    "access_request": ("area", "status", "occurred_at"),
    "verification": ("subject", "status", "occurred_at"),
    "designation": ("area", "party", "occurred_at"),
    "incident": ("area", "perpetrator", "target", "members", "occurred_at"),
}


def decode(value: bytes) -> dict[str, Any]:
    """An envelope from the reports topic, upcast, with every field the fold reads present.

    Ingest validated it fully; this only guards the fold against a foreign or damaged
    record, which is dead-lettered instead of stopping the worker again and again."""
    envelope = upcast(orjson.loads(value))
    report = envelope["report"]
    for name in ("org", "content_hash", "received_at"):
        if not isinstance(envelope[name], str):
            raise TypeError(f"envelope field {name!r} is not a string")
    if not isinstance(report["report_id"], str) or not isinstance(report["revision"], int):
        raise TypeError("report_id or revision has the wrong type")
    missing = [f for f in _REQUIRED[report["kind"]] if report.get(f) is None]
    if missing:
        raise KeyError(f"report lacks {missing}")
    return dict(envelope)


def collapse(emits: Iterable[Emit]) -> list[Emit]:
    """Within one batch, only the highest version of each snapshot key needs sending (a
    later snapshot supersedes an earlier one); folded records, dead letters and alert
    transitions are each sent."""
    latest: dict[tuple[str, str], Emit] = {}
    kept: list[Emit | tuple[str, str]] = []
    for emit in emits:
        if emit.role not in SNAPSHOT_ROLES:
            kept.append(emit)
            continue
        ident = (emit.role, emit.key)
        previous = latest.get(ident)
        if previous is None:
            kept.append(ident)
        if previous is None or version_of(emit.value) >= version_of(previous.value):
            latest[ident] = emit
    return [latest[item] if isinstance(item, tuple) else item for item in kept]


def _undecodable(event: Any, exc: Exception) -> Emit:
    message = event.message
    key = message.key.decode(errors="replace") if message.key else ""
    return Emit(
        "deadletter",
        key,
        {
            "report_id": key,
            "revision": 0,
            "org": "",
            "reason": "undecodable",
            "detail": f"{type(exc).__name__}: {exc} (partition {message.partition}, "
            f"offset {message.offset})",
            "received_at": None,
        },
    )
