"""The store's sink on the real broker and the real ClickHouse engine (chDB): every topic
lands in its table, redelivery and republishing change nothing a reader can see, the
highest version wins whatever the arrival order, a ClickHouse outage loses nothing and
commits nothing early, and a poison record is skipped."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from core.clickhouse import dsn_database, with_database
from core.kafka import consumer_lag, durable_producer, ensure_topics
from schemas import (
    CanonicalReport,
    DeadLetter,
    TopicNames,
    WeeklyAccess,
    WeeklyCompliance,
    encode_envelope,
    make_envelope,
    parse_report,
    partition_key,
    topic_names,
)
from services.store import queries, recompute
from services.store.database import Database
from services.store.rows import canonical_row, dead_letter_row, metric_row, raw_row
from services.store.sink import Sink
from services.store.telemetry import StoreMetrics
from tests.support.ingest import violation

pytestmark = pytest.mark.integration

WEEK = "2016-W09"
RECEIVED = datetime(2016, 3, 1, 9, 0, 0, 123000, tzinfo=UTC)


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def db(clickhouse_root: str) -> Iterator[Database]:
    database = Database(with_database(clickhouse_root, f"sink_{uuid.uuid4().hex[:12]}"))
    database.migrate()
    try:
        yield database
    finally:
        database.client.command(f"DROP DATABASE IF EXISTS `{dsn_database(database.dsn)}`")
        database.close()


@pytest.fixture
def names(bootstrap: str) -> TopicNames:
    topics = topic_names(f"t{uuid.uuid4().hex[:8]}.")
    ensure_topics(bootstrap, topics.all(), partitions=2, compacted=[topics.events, topics.metrics])
    return topics


@pytest.fixture(scope="module")
def producer(bootstrap: str) -> Iterator[KafkaProducer]:
    made = durable_producer(bootstrap)
    try:
        yield made
    finally:
        made.close()


# -- helpers -------------------------------------------------------------------------------
class Inserter:
    """Database.insert that counts rows per table and fails on demand (a ClickHouse outage)."""

    def __init__(self, db: Database, spare: tuple[str, ...] = ()) -> None:
        self.db = db
        self.spare = spare  # tables that keep working during an outage (partial batches)
        self.failing = threading.Event()
        self.failures = 0
        self.rows: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, table: str, rows: list[list[Any]], columns: list[str]) -> None:
        if self.failing.is_set() and table not in self.spare:
            with self._lock:
                self.failures += 1
            raise ConnectionError("simulated ClickHouse outage")
        self.db.insert(table, rows, columns)
        with self._lock:
            self.rows[table] += len(rows)


def make_sink(
    bootstrap: str, names: TopicNames, group: str, insert: Inserter, **options: Any
) -> Sink:
    return Sink(
        bootstrap=bootstrap,
        group_id=group,
        converters={
            names.reports: raw_row,
            names.events: canonical_row,
            names.metrics: metric_row,
            names.deadletter: dead_letter_row,
        },
        insert=insert,
        metrics=StoreMetrics(),
        max_wait_s=0.05,
        **options,
    )


@contextmanager
def running(sink: Sink) -> Iterator[Sink]:
    sink.start()
    try:
        assert sink.started.wait(15), "the sink did not start"
        yield sink
    finally:
        sink.stop()
        sink.join(timeout=30)
        assert not sink.is_alive(), "the sink did not stop"


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def lag(bootstrap: str, group: str, names: TopicNames) -> dict[str, int]:
    """Uncommitted records per topic (retrying while the group coordinator settles)."""
    topics = [names.reports, names.events, names.metrics, names.deadletter]
    for attempt in range(50):
        try:
            return consumer_lag(bootstrap, group, topics)
        except KafkaError:
            if attempt == 49:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def drained(bootstrap: str, group: str, names: TopicNames, timeout_s: float = 20) -> None:
    """Every record of the four topics is committed by ``group`` (so it is inserted)."""
    wait_for(
        f"{group} to commit everything",
        lambda: not any(lag(bootstrap, group, names).values()),
        timeout_s,
    )


def sample(sink: Sink, name: str, **labels: str) -> float:
    return sink.metrics.registry.get_sample_value(name, labels) or 0.0


def send(producer: KafkaProducer, topic: str, key: str, value: bytes, **kw: Any) -> Any:
    return producer.send(topic, key=key.encode(), value=value, **kw).get(timeout=15)


def envelope(body: dict[str, Any], org: str = "sarc", key_name: str = "sarc-1") -> Any:
    return make_envelope(parse_report(body), org=org, key_name=key_name, received_at=RECEIVED)


def publish_report(producer: KafkaProducer, names: TopicNames, env: Any, **kw: Any) -> Any:
    return send(producer, names.reports, partition_key(env.report), encode_envelope(env), **kw)


def canonical(report_id: str, version: int, **fields: Any) -> CanonicalReport:
    values: dict[str, Any] = {
        "report_id": report_id, "version": version, "kind": "violation", "revision": 1,
        "org": "sarc", "received_at": RECEIVED,
        "occurred_at": datetime(2016, 3, 1, 8, 15, tzinfo=UTC), "week": WEEK, "area": "madaya",
        "party": "gos", "target": "civilians", "category": "shelling", "status": "",
        "subject": "", "killed": 2, "injured": 5, "beneficiaries": 0, "retracted": False,
        "counts": True, "exempt": False, "exempt_reason": "", "verification": "unverified",
        "report_json": orjson.dumps({"report_id": report_id}).decode(),
    }  # fmt: skip
    values.update(fields)
    return CanonicalReport(**values)


def compliance(area: str, party: str, version: int, **counts: int) -> WeeklyCompliance:
    base = dict.fromkeys(queries.COMPLIANCE_COUNTS, 0)
    base.update(counts)
    return WeeklyCompliance(week=WEEK, area=area, party=party, version=version, **base)


def access_row(area: str, version: int, **counts: int) -> WeeklyAccess:
    base = dict.fromkeys(queries.ACCESS_COUNTS, 0)
    base.update(counts)
    return WeeklyAccess(week=WEEK, area=area, version=version, **base)


def publish_output(producer: KafkaProducer, names: TopicNames, model: Any) -> Any:
    if isinstance(model, CanonicalReport):
        return send(producer, names.events, model.report_id, model.model_dump_json().encode())
    if isinstance(model, WeeklyCompliance):
        key = f"compliance|{model.week}|{model.area}|{model.party}"
        value = orjson.dumps({"type": "compliance", **model.model_dump()})
        return send(producer, names.metrics, key, value)
    if isinstance(model, WeeklyAccess):
        key = f"access|{model.week}|{model.area}"
        return send(
            producer, names.metrics, key, orjson.dumps({"type": "access", **model.model_dump()})
        )
    assert isinstance(model, DeadLetter)
    return send(producer, names.deadletter, model.report_id, model.model_dump_json().encode())


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def as_naive(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return naive_utc(value)
    return value


def visible(db: Database, report_ids: list[str]) -> dict[str, Any]:
    """Everything a reader sees through the query layer (FINAL reads)."""
    weeks = recompute.verify(db)["weeks"]
    return {
        "weeks": weeks,
        "weekly": {w: queries.weekly(db, w) for w in [*weeks, WEEK]},
        "access": {w: queries.access(db, w) for w in [*weeks, WEEK]},
        "reconcile": {w: recompute.verify(db, w)["differences"] for w in [*weeks, WEEK]},
        "revisions": {r: db.rows(queries.REPORT_REVISIONS, report_id=r) for r in report_ids},
        "current": {r: db.rows(queries.REPORT_CURRENT, report_id=r) for r in report_ids},
        "dead_letters": db.rows(
            "SELECT * FROM dead_letters FINAL ORDER BY kafka_partition, kafka_offset"
        ),
        "raw": db.rows("SELECT * FROM raw_reports FINAL ORDER BY kafka_partition, kafka_offset"),
    }


def final_count(db: Database, table: str) -> int:
    return int(db.rows(f"SELECT count() AS n FROM {table} FINAL")[0]["n"])


def delivery(report_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": report_id, "kind": "delivery", "occurred_at": "2016-03-02T12:00:00Z",
        "area": "madaya", "agency": "WFP", "modality": "convoy", "status": "completed",
        "beneficiaries": 40000, "trucks": 49,
    }  # fmt: skip
    body.update(fields)
    return body


def mixed_batch(tag: str) -> tuple[list[Any], list[Any]]:
    """Raw envelopes and stream outputs of a small, consistent week."""
    envelopes = [
        envelope(violation(f"{tag}-v1", occurred_at="2016-03-01T10:15:00+02:00")),
        envelope(violation(f"{tag}-v2", occurred_at="2016-03-01T11:00:00Z", perpetrator="ru")),
        envelope(delivery(f"{tag}-d1"), org="wfp", key_name="wfp-1"),
    ]
    outputs: list[Any] = [
        canonical(f"{tag}-v1", 5),
        canonical(f"{tag}-v2", 7, party="ru", killed=2, injured=5),
        canonical(f"{tag}-d1", 9, kind="delivery", org="wfp", party="", target="",
                  category="", status="completed", killed=0, injured=0, beneficiaries=40000),
        compliance("madaya", "gos", 11, violations=1, killed=2, injured=5,
                   incidents=1, incident_killed=2, incident_injured=5),  # a lone violation
        compliance("madaya", "ru", 12, violations=1, killed=2, injured=5,
                   incidents=1, incident_killed=2, incident_injured=5),
        access_row("madaya", 13, deliveries_completed=1, beneficiaries=40000),
        DeadLetter(report_id=f"{tag}-v1", revision=2, org="wfp", reason="foreign_owner",
                   detail="owned by sarc", received_at=RECEIVED),
    ]  # fmt: skip
    return envelopes, outputs


# -- tests ---------------------------------------------------------------------------------
def test_every_topic_lands_in_its_table_with_its_values(
    bootstrap: str, db: Database, names: TopicNames, producer: KafkaProducer
) -> None:
    env_v = envelope(violation("land-v1", occurred_at="2016-03-01T10:15:00+02:00", lat=33.69,
                               lon=36.1, description="shelling near the bakery"))  # fmt: skip
    env_d = envelope(delivery("land-d1"), org="wfp", key_name="wfp-1")
    meta = {e.report.report_id: publish_report(producer, names, e) for e in (env_v, env_d)}
    current = canonical("land-v1", (3 << 40) | 17, verification="verified",
                        exempt=True, exempt_reason="designation:des-1")  # fmt: skip
    snapshot = compliance("madaya", "gos", 42, violations=3, violations_verified=1,
                          violations_exempt=2, killed=7, injured=11)  # fmt: skip
    access = access_row("madaya", 43, deliveries_completed=1, deliveries_partial=2,
                        deliveries_blocked=3, deliveries_cancelled=4, beneficiaries=2**33,
                        requests_submitted=5, requests_approved=6, requests_denied=7,
                        requests_withdrawn=8)  # fmt: skip
    letters = [
        DeadLetter(report_id="land-v1", revision=2, org="wfp", reason="foreign_owner",
                   detail="owned by sarc", received_at=RECEIVED),
        DeadLetter(report_id="", revision=0, org="", reason="undecodable",
                   detail="ValueError: bad json (partition 1, offset 4)"),
    ]  # fmt: skip
    for model in (current, snapshot, access):
        publish_output(producer, names, model)
    dead_meta = [publish_output(producer, names, letter) for letter in letters]
    group = f"g-{uuid.uuid4().hex[:8]}"
    inserter = Inserter(db)
    with running(make_sink(bootstrap, names, group, inserter)) as sink:
        drained(bootstrap, group, names)
        assert sink.healthy.is_set()
        assert sink.last_error is None

    raw = {r["report_id"]: r for r in db.rows("SELECT * FROM raw_reports FINAL")}
    assert set(raw) == {"land-v1", "land-d1"}
    for env in (env_v, env_d):
        row = raw[env.report.report_id]
        report = env.report
        assert row["revision"] == report.revision
        assert row["kind"] == report.kind
        assert row["org"] == env.org
        assert row["key_name"] == env.key_name
        assert as_naive(row["received_at"]) == naive_utc(RECEIVED)
        assert as_naive(row["occurred_at"]) == naive_utc(report.occurred_at)
        assert row["area"] == report.area
        assert row["retracted"] is False
        assert row["schema_version"] == env.schema_version
        content_hash = row["content_hash"]
        if isinstance(content_hash, bytes):
            content_hash = content_hash.decode()
        assert content_hash == env.content_hash
        assert orjson.loads(row["report_json"]) == report.model_dump(mode="json")
        sent = meta[report.report_id]
        assert (row["kafka_partition"], row["kafka_offset"]) == (sent.partition, sent.offset)
    # +02:00 on the ground is stored as UTC
    assert as_naive(raw["land-v1"]["occurred_at"]) == datetime(2016, 3, 1, 8, 15)

    (stored,) = db.rows(queries.REPORT_CURRENT, report_id="land-v1")
    for field, value in current.model_dump().items():
        assert as_naive(stored[field]) == as_naive(value), field
    assert queries.weekly(db, WEEK) == [
        {**dict.fromkeys(queries.COMPLIANCE_COUNTS, 0), "area": "madaya", "party": "gos",
         "violations": 3, "violations_verified": 1, "violations_exempt": 2, "killed": 7,
         "injured": 11}
    ]  # fmt: skip
    (access_stored,) = queries.access(db, WEEK)
    assert access_stored == {"area": "madaya", **access.model_dump(exclude={"week", "version"})}
    letters_stored = db.rows("SELECT * FROM dead_letters FINAL ORDER BY report_id DESC")
    assert len(letters_stored) == 2
    for letter, sent, row in zip(letters, dead_meta, letters_stored, strict=True):
        for field, value in letter.model_dump().items():
            assert as_naive(row[field]) == as_naive(value), field
        assert (row["kafka_partition"], row["kafka_offset"]) == (sent.partition, sent.offset)
    assert letters_stored[1]["received_at"] is None
    assert sample(sink, "truce_store_rows_written_total", table="raw_reports") == 2
    assert sample(sink, "truce_store_insert_failures_total") == 0


def test_republished_and_overlapping_batches_change_nothing(
    bootstrap: str, db: Database, names: TopicNames, producer: KafkaProducer
) -> None:
    envelopes, outputs = mixed_batch("dup")
    group = f"g-{uuid.uuid4().hex[:8]}"
    ids = ["dup-v1", "dup-v2", "dup-d1"]
    with running(make_sink(bootstrap, names, group, Inserter(db))):
        for env in envelopes:  # the raw log the outputs were classified from
            publish_report(producer, names, env)
        for model in outputs:
            publish_output(producer, names, model)
        drained(bootstrap, group, names)
        before = visible(db, ids)
        assert before["weekly"][WEEK]
        assert before["reconcile"][WEEK] == []
        # the same batch again, then an overlapping one (the stream re-emitting after a crash)
        for model in outputs:
            publish_output(producer, names, model)
        for model in outputs[2:6]:
            publish_output(producer, names, model)
        drained(bootstrap, group, names)
        after = visible(db, ids)
    # a dead letter is a log record of its own topic, compared below
    assert {k: v for k, v in after.items() if k != "dead_letters"} == {
        k: v for k, v in before.items() if k != "dead_letters"
    }
    # a dead letter is a log record: each one published stays (keyed by its offset)
    assert final_count(db, "dead_letters") == 2


def test_identical_records_at_two_offsets_both_remain(
    bootstrap: str, db: Database, names: TopicNames, producer: KafkaProducer
) -> None:
    """Two ingest replicas racing on the same revision publish it twice: two log records."""
    env = envelope(violation("race-1", occurred_at="2016-03-01T10:15:00Z"))
    first = publish_report(producer, names, env)
    second = publish_report(producer, names, env)
    assert (first.partition, first.offset) != (second.partition, second.offset)
    group = f"g-{uuid.uuid4().hex[:8]}"
    with running(make_sink(bootstrap, names, group, Inserter(db))):
        drained(bootstrap, group, names)
    revisions = db.rows(queries.REPORT_REVISIONS, report_id="race-1")
    assert [(r["kafka_partition"], r["kafka_offset"]) for r in revisions] == [
        (first.partition, first.offset),
        (second.partition, second.offset),
    ]
    assert revisions[0]["report_json"] == revisions[1]["report_json"]


def test_group_reset_to_earliest_and_a_new_group_change_nothing(
    bootstrap: str, db: Database, names: TopicNames, producer: KafkaProducer
) -> None:
    envelopes, outputs = mixed_batch("reset")
    twin = publish_report(producer, names, envelopes[0])  # a racing replica's copy
    for env in envelopes:
        publish_report(producer, names, env)
    for model in outputs:
        publish_output(producer, names, model)
    total = len(envelopes) + 1 + len(outputs)
    ids = ["reset-v1", "reset-v2", "reset-d1"]
    group = f"g-{uuid.uuid4().hex[:8]}"
    with running(make_sink(bootstrap, names, group, Inserter(db))):
        drained(bootstrap, group, names)
    before = visible(db, ids)
    assert len(before["raw"]) == len(envelopes) + 1
    assert twin.offset in {r["kafka_offset"] for r in before["revisions"]["reset-v1"]}
    assert before["reconcile"][WEEK] == []

    # kafka-consumer-groups --reset-offsets --to-earliest, with kafka-python
    reset = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = [
            TopicPartition(topic, p)
            for topic in (names.reports, names.events, names.metrics, names.deadletter)
            for p in reset.partitions_for_topic(topic) or ()
        ]
        reset.assign(tps)
        reset.commit({tp: OffsetAndMetadata(0, "", -1) for tp in tps})
    finally:
        reset.close()
    assert sum(lag(bootstrap, group, names).values()) == total

    for again_group in (group, f"g-{uuid.uuid4().hex[:8]}"):
        inserter = Inserter(db)
        with running(make_sink(bootstrap, names, again_group, inserter)):
            drained(bootstrap, again_group, names)
        assert sum(inserter.rows.values()) == total, "everything was delivered again"
        assert visible(db, ids) == before


def test_the_highest_version_wins_whatever_the_arrival_order(
    bootstrap: str, db: Database, names: TopicNames, producer: KafkaProducer
) -> None:
    arrivals = [
        compliance("madaya", "gos", 20, violations=4, killed=9),  # v2 first
        compliance("madaya", "gos", 10, violations=1, killed=1),  # then v1, late
        access_row("madaya", 20, deliveries_blocked=2),
        access_row("madaya", 10, deliveries_completed=7, beneficiaries=900),
        compliance("daraya", "gos", 5, violations=2),  # a row that later drops to zero
        compliance("daraya", "gos", 6),
        compliance("daraya", "gos", 4, violations=9),  # an old redelivery
        canonical("ver-1", 2 << 40 | 3, killed=0, injured=1, revision=2),
        canonical("ver-1", 1 << 40 | 9, killed=5, injured=5, revision=1),
    ]
    for model in arrivals:
        publish_output(producer, names, model)
    group = f"g-{uuid.uuid4().hex[:8]}"
    with running(make_sink(bootstrap, names, group, Inserter(db))):
        drained(bootstrap, group, names)
    assert queries.weekly(db, WEEK) == [
        {**dict.fromkeys(queries.COMPLIANCE_COUNTS, 0), "area": "madaya", "party": "gos",
         "violations": 4, "violations_verified": 0, "violations_exempt": 0, "killed": 9,
         "injured": 0}
    ]  # fmt: skip
    assert queries.weekly(db, WEEK, area="daraya") == []
    (row,) = queries.access(db, WEEK)
    assert (row["deliveries_blocked"], row["deliveries_completed"], row["beneficiaries"]) == (
        2, 0, 0,
    )  # fmt: skip
    (current,) = db.rows(queries.REPORT_CURRENT, report_id="ver-1")
    assert (current["revision"], current["killed"], current["injured"]) == (2, 0, 1)


def test_clickhouse_outage_loses_nothing_and_commits_nothing_early(
    bootstrap: str, db: Database, names: TopicNames, producer: KafkaProducer
) -> None:
    envelopes, outputs = mixed_batch("down")
    group = f"g-{uuid.uuid4().hex[:8]}"
    # raw_reports keeps working: each retry re-inserts it, a partial batch
    inserter = Inserter(db, spare=("raw_reports",))
    inserter.failing.set()
    sink = make_sink(bootstrap, names, group, inserter, max_backoff_s=0.4)
    with running(sink):
        for env in envelopes:
            publish_report(producer, names, env)
        for model in outputs:
            publish_output(producer, names, model)
        wait_for("three failed inserts", lambda: inserter.failures >= 3)
        assert not sink.healthy.is_set()
        assert sink.last_error is not None
        assert "simulated ClickHouse outage" in sink.last_error
        assert sample(sink, "truce_store_insert_failures_total") >= 3
        pending = lag(bootstrap, group, names)
        assert sum(pending.values()) == len(envelopes) + len(outputs), "committed too early"
        assert final_count(db, "canonical_reports") == 0

        inserter.failing.clear()
        drained(bootstrap, group, names)
        wait_for("the sink to be healthy", sink.healthy.is_set)
        assert sink.last_error is None

    assert db.rows("SELECT report_id, count() AS n FROM raw_reports FINAL GROUP BY report_id"
                   " ORDER BY report_id") == [
        {"report_id": "down-d1", "n": 1}, {"report_id": "down-v1", "n": 1},
        {"report_id": "down-v2", "n": 1},
    ]  # fmt: skip
    assert final_count(db, "canonical_reports") == 3
    assert final_count(db, "weekly_compliance_snapshots") == 2
    assert final_count(db, "weekly_access_snapshots") == 1
    assert final_count(db, "dead_letters") == 1
    assert recompute.verify(db, WEEK)["differences"] == []

    # the offsets are committed: a new sink of the group reads only what comes next
    fresh = Inserter(db)
    with running(make_sink(bootstrap, names, group, fresh)):
        publish_report(producer, names, envelope(violation("down-after")))
        wait_for("the next record", lambda: fresh.rows["raw_reports"] == 1)
        drained(bootstrap, group, names)
    assert fresh.rows == Counter({"raw_reports": 1})


def test_outage_across_a_group_rebalance_loses_nothing(
    bootstrap: str, db: Database, names: TopicNames, producer: KafkaProducer
) -> None:
    """A sink paused by a ClickHouse outage is handed more partitions by a rebalance: what
    it fetches from them meanwhile must not be skipped when its offsets are committed."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    broken = Inserter(db)
    broken.failing.set()
    working = Inserter(db)
    first = make_sink(bootstrap, names, group, working)
    second = make_sink(bootstrap, names, group, broken, max_backoff_s=0.2)
    with running(second):
        with running(first):
            # both members hold partitions of the reports topic once both are fed
            wait_for_members = time.monotonic() + 20
            sent = 0
            while not (broken.failures and working.rows["raw_reports"]):
                assert time.monotonic() < wait_for_members, "the group never split"
                for partition in (0, 1):
                    body = violation(f"split-{sent}", occurred_at="2016-03-01T10:00:00Z")
                    publish_report(producer, names, envelope(body), partition=partition)
                    sent += 1
                time.sleep(0.5)
        # the working member left: the broken one now owns every partition
        late = [f"late-{i}" for i in range(6)]
        for i, report_id in enumerate(late):
            body = violation(report_id, occurred_at="2016-03-01T10:00:00Z")
            publish_report(producer, names, envelope(body), partition=i % 2)
        time.sleep(3.0)  # the broken member rejoins and fetches while it retries
        broken.failing.clear()
        drained(bootstrap, group, names, timeout_s=30)
    stored = {r["report_id"] for r in db.rows("SELECT report_id FROM raw_reports FINAL")}
    expected = {f"split-{i}" for i in range(sent)} | set(late)
    assert sorted(expected - stored) == []


def test_an_undecodable_record_is_counted_and_skipped(
    bootstrap: str, db: Database, names: TopicNames, producer: KafkaProducer
) -> None:
    poison = [
        (names.reports, b"not json at all"),
        (names.reports, orjson.dumps({"report": {"report_id": "x"}, "org": "sarc"})),
        (names.events, b"{}"),
        (names.metrics, b'"a JSON string"'),
        (names.metrics, b"[1, 2]"),
        (names.metrics, orjson.dumps({"type": "compliance", "week": WEEK})),
        (names.metrics, orjson.dumps({"type": "spike", **access_row("madaya", 3).model_dump()})),
        (names.deadletter, b"\xff\xfe"),
    ]
    for topic, value in poison:
        send(producer, topic, "poison", value)
    publish_report(producer, names, envelope(violation("good-1")))
    publish_output(producer, names, compliance("madaya", "gos", 1, violations=1))
    group = f"g-{uuid.uuid4().hex[:8]}"
    with running(make_sink(bootstrap, names, group, Inserter(db))) as sink:
        drained(bootstrap, group, names)
        assert sink.is_alive()
        assert sink.healthy.is_set()
        assert sink.last_error is None
        by_topic = Counter(topic for topic, _ in poison)
        for topic, count in by_topic.items():
            assert sample(sink, "truce_store_undecodable_records_total", topic=topic) == count
        # and it keeps going after them
        publish_report(producer, names, envelope(violation("good-2")))
        drained(bootstrap, group, names)
    stored = {r["report_id"] for r in db.rows("SELECT report_id FROM raw_reports FINAL")}
    assert stored == {"good-1", "good-2"}
    assert len(queries.weekly(db, WEEK)) == 1
    assert final_count(db, "weekly_access_snapshots") == 0  # an unknown type is not "access"
