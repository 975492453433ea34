"""The Faust application: thin wiring of the pure stages in streams/logic.

Agents run with concurrency 1 and scale by partitions. A failure while handling a record
stops the worker at once (the supervisor restarts it): Faust would otherwise acknowledge
the record, and at-least-once delivery would silently become at-most-once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import faust
import orjson
import structlog
from faust.web import Request, Response, View

from core.settings import Settings
from schemas import areas, group_names, parties, topic_names, upcast
from streams.logic.rules import load_rules
from streams.logic.stage1 import Emit, Stage1
from streams.logic.stage2 import Stage2

log = structlog.get_logger("streams")
CRASH_EXIT_CODE = 70


def _crash(where: str) -> None:
    log.exception("record handling failed; stopping the worker so it is redelivered", agent=where)
    os._exit(CRASH_EXIT_CODE)


def create_app(settings: Settings) -> faust.App:
    names = topic_names(settings.topic_prefix)
    partitions = settings.kafka_partitions
    app = faust.App(
        group_names(settings.topic_prefix).streams,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="rocksdb://",
        datadir=str(settings.streams_dir),
        topic_partitions=partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        web_bind=settings.bind_host,
        web_port=settings.streams_port,
        web_in_thread=False,
        broker_commit_every=2000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=8192,
        producer_linger_ms=20,
        producer_max_batch_size=256 * 1024,
        producer_acks=-1,
        table_standby_replicas=0,
        key_serializer="raw",
        value_serializer="raw",
    )

    def topic(name: str, compacted: bool = False) -> faust.TopicT:
        config = {"cleanup.policy": "compact"} if compacted else {"retention.ms": "-1"}
        return app.topic(name, partitions=partitions, config=config, internal=True)

    reports = app.topic(names.reports)  # created by ingest, never by us
    folded = topic(names.folded)
    outputs = {
        "folded": folded,
        "events": topic(names.events, compacted=True),
        "metrics": topic(names.metrics, compacted=True),
        "deadletter": topic(names.deadletter),
        "alerts": topic(names.alerts),  # keyed by fingerprint; the history the alerter reads
    }

    def table(name: str) -> Any:
        schema: Any = faust.Schema(key_serializer="json", value_serializer="json")
        return app.Table(name, partitions=partitions, schema=schema)

    stage1 = Stage1(table("histories"), table("verifications"))
    designated = {code: party.designated for code, party in parties().items()}
    besieged = frozenset(code for code, area in areas().items() if area.besieged)
    stage2 = Stage2(
        designated,
        table("placed"),
        table("designations"),
        table("alerts"),
        load_rules(settings.rules_file),
        besieged,
    )

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _partitions_changed(sender: Any, **_: Any) -> None:
        stage2.reset()  # the derived index covers the assigned partitions only

    async def send(emits: Iterable[Emit]) -> None:
        for emit in emits:
            await outputs[emit.role].send(key=emit.key.encode(), value=orjson.dumps(emit.value))

    @app.agent(reports, concurrency=1)
    async def fold_reports(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                envelope = upcast(orjson.loads(event.value))
                emits = stage1.handle(envelope)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                emits = [_undecodable(event, exc)]
            except Exception:
                _crash("fold_reports")
            await send(emits)

    @app.agent(folded, concurrency=1)
    async def classify(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                emits = stage2.handle(orjson.loads(event.value), event.message.offset)
            except Exception:
                _crash("classify")
            await send(emits)

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
