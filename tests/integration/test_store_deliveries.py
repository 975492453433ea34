"""The store sinks the alerter's delivery log into ``alert_deliveries`` (migration 0005):
the store process's own wiring on the real broker and the real ClickHouse engine, and a
redelivered record changes nothing a reader sees."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.clickhouse import dsn_database, with_database
from core.kafka import durable_producer, ensure_topics
from core.settings import Settings
from schemas import AlertDelivery, topic_names
from services.store.database import Database
from services.store.state import StoreState
from tests.conftest import isolated_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def store(broker_settings: Settings, clickhouse_root: str, tmp_path: Path) -> Iterator[StoreState]:
    settings = isolated_settings(
        tmp_path / "home",
        kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
    )
    names = topic_names(settings.topic_prefix)
    ensure_topics(settings.bootstrap_servers, names.all(), partitions=2)
    database = Database(with_database(clickhouse_root, f"deliv_{uuid.uuid4().hex[:12]}"))
    state = StoreState(settings, database)
    state.start()
    try:
        yield state
    finally:
        state.stop()
        cleanup = Database(database.dsn)
        cleanup.client.command(f"DROP DATABASE IF EXISTS `{dsn_database(database.dsn)}`")
        cleanup.close()


def delivery(outcome: str, attempt: int) -> AlertDelivery:
    return AlertDelivery(
        delivery_id="0f" * 16, receiver="ops-webhook", channel="webhook",
        fingerprint="a1b2c3d4e5f60718", alert_version=12, alert_state="firing",
        msg_type="Alert", outcome=outcome, attempt=attempt,  # type: ignore[arg-type]
        status_code=500 if outcome == "failed" else 200,
        error="HTTP 500: boom" if outcome == "failed" else "",
        at=datetime(2016, 3, 1, 16, 0, attempt, 250000, tzinfo=UTC),
    )  # fmt: skip


def test_delivery_records_land_in_alert_deliveries(store: StoreState) -> None:
    records = [delivery("failed", 1), delivery("delivered", 2)]
    producer = durable_producer(store.settings.bootstrap_servers)
    topic = topic_names(store.settings.topic_prefix).deliveries
    try:
        for record in [*records, records[0]]:  # the last one is a redelivery
            producer.send(topic, key=b"a1b2c3d4e5f60718", value=record.model_dump_json().encode())
        producer.flush()
    finally:
        producer.close()
    query = "SELECT * FROM alert_deliveries FINAL ORDER BY attempt"
    deadline = time.monotonic() + 60
    rows = store.db.rows(query)
    while len(rows) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = store.db.rows(query)
    back = [AlertDelivery.model_validate({**r, "at": r["at"].replace(tzinfo=UTC)}) for r in rows]
    assert back == records
