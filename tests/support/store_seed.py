"""A known week for the store's read side (weekly report, drill-down, dashboard): what the
stream and ingest would have published, sent through Kafka so that the store's real sink
writes it, with the numbers it must produce written out by hand.

The week is 2016-W09 (Monday 29 February to Sunday 6 March 2016); W08 is the previous one."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from kafka.errors import KafkaError

from core.clickhouse import dsn_database, with_database
from core.kafka import consumer_lag, durable_producer, ensure_topics
from core.keys import KeyStore, Role
from core.settings import Settings
from schemas import (
    Alert,
    CanonicalReport,
    ReportEnvelope,
    TopicNames,
    WeeklyAccess,
    WeeklyCompliance,
    encode_envelope,
    group_inputs,
    make_envelope,
    parse_report,
    partition_key,
    topic_names,
)
from services.store.app import create_app
from services.store.database import Database
from services.store.queries import ACCESS_COUNTS, COMPLIANCE_COUNTS
from services.store.state import StoreState
from tests.conftest import isolated_settings
from tests.support.ingest import violation
from tests.support.reference import lone_events

WEEK, PREVIOUS, NEXT = "2016-W09", "2016-W08", "2016-W10"


def at(day: str, hour: int = 10) -> datetime:
    """A moment in 2016, ``day`` as MM-DD."""
    month, dom = (int(x) for x in day.split("-"))
    return datetime(2016, month, dom, hour, 0, tzinfo=UTC)


def week_of(moment: datetime) -> str:
    year, number, _ = moment.isocalendar()
    return f"{year}-W{number:02d}"


def canonical(report_id: str, kind: str, day: str, area: str, **fields: Any) -> CanonicalReport:
    occurred = at(day)
    values: dict[str, Any] = {
        "report_id": report_id, "version": 1 << 40, "kind": kind, "revision": 1,
        "org": "sarc", "received_at": occurred, "occurred_at": occurred,
        "week": week_of(occurred), "area": area, "party": "", "target": "", "category": "",
        "status": "", "subject": "", "killed": 0, "injured": 0, "beneficiaries": 0,
        "retracted": False, "counts": True, "exempt": False, "exempt_reason": "",
        "verification": "unverified",
        "report_json": orjson.dumps({"report_id": report_id, "kind": kind}).decode(),
    }  # fmt: skip
    values.update(fields)
    return CanonicalReport(**values)


def hit(report_id: str, day: str, area: str, party: str, **fields: Any) -> CanonicalReport:
    fields = {"target": "civilians", "category": "shelling", **fields}
    return canonical(report_id, "violation", day, area, party=party, **fields)


def aid(report_id: str, day: str, area: str, status: str, people: int = 0, **fields: Any) -> Any:
    return canonical(report_id, "delivery", day, area, org="wfp", status=status,
                     beneficiaries=people, **fields)  # fmt: skip


def ask(report_id: str, day: str, status: str, **fields: Any) -> CanonicalReport:
    return canonical(report_id, "access_request", day, "madaya", org="wfp", status=status,
                     **fields)  # fmt: skip


CANONICAL = [
    # W09 violations: gos 2 (1 verified), ru 1 (verified), 2 exempt, 1 retracted
    hit("v-gos-1", "03-01", "madaya", "gos", killed=2, injured=5, verification="verified",
        revision=2),
    hit("v-gos-2", "03-03", "daraya", "gos", injured=1),
    hit("v-gos-3", "03-04", "madaya", "gos", killed=9, retracted=True, counts=False),
    hit("v-ru-1", "03-05", "daraya", "ru", killed=1, verification="verified"),
    hit("v-isil-1", "03-02", "madaya", "isil", killed=3, exempt=True,
        exempt_reason="designated_perpetrator"),
    hit("v-raqqa-1", "03-06", "raqqa", "gos", killed=1, injured=2, exempt=True,
        exempt_reason="designation:des-raqqa"),
    # W08: gos 3, hzb 1; W10: gos 1
    hit("v-w8-1", "02-22", "madaya", "gos"),
    hit("v-w8-2", "02-23", "madaya", "gos"),
    hit("v-w8-3", "02-28", "daraya", "gos"),
    hit("v-w8-4", "02-24", "fouah", "hzb"),
    hit("v-w10-1", "03-07", "madaya", "gos"),
    # deliveries: Madaya 2 completed + 1 partial (400 reached), 1 blocked; Fouah blocked
    # this week, last completed on 16 February; a retracted and a later completed one
    aid("d-mad-1", "02-29", "madaya", "completed", 100),
    aid("d-mad-2", "03-02", "madaya", "completed", 250),
    aid("d-mad-3", "03-03", "madaya", "partial", 50),
    aid("d-mad-4", "03-04", "madaya", "blocked", 30),
    aid("d-mad-5", "03-05", "madaya", "completed", 999, retracted=True, counts=False),
    aid("d-mad-6", "03-07", "madaya", "completed", 500),
    aid("d-fou-1", "02-16", "fouah", "completed", 2000),
    aid("d-fou-2", "03-01", "fouah", "blocked", 0),
    # access requests: W08 approved, denied, pending; W09 approved, pending, withdrawn,
    # retracted; W10 approved
    ask("r-1", "02-22", "approved"),
    ask("r-2", "02-23", "denied"),
    ask("r-3", "02-24", "submitted"),
    ask("r-4", "03-01", "approved"),
    ask("r-5", "03-02", "submitted"),
    ask("r-6", "03-03", "withdrawn"),
    ask("r-7", "03-03", "approved", retracted=True, counts=False),
    ask("r-8", "03-08", "approved"),
]  # fmt: skip


def compliance(week: str, area: str, party: str, *counts: int) -> WeeklyCompliance:
    """A row of (violations, verified, exempt, killed, injured); none of the seed's
    violations is in an incident, so each is also an event of one source."""
    row = lone_events(dict(zip(COMPLIANCE_COUNTS[:5], counts, strict=True)))
    return WeeklyCompliance(week=week, area=area, party=party, version=9, **row)


def access(week: str, area: str, *counts: int) -> WeeklyAccess:
    return WeeklyAccess(
        week=week, area=area, version=9, **dict(zip(ACCESS_COUNTS, counts, strict=True))
    )


# What the stream publishes for the canonical reports above (/v1/verify agrees).
SNAPSHOTS: list[WeeklyCompliance | WeeklyAccess] = [
    compliance(WEEK, "madaya", "gos", 1, 1, 0, 2, 5),
    compliance(WEEK, "madaya", "isil", 0, 0, 1, 0, 0),
    compliance(WEEK, "daraya", "gos", 1, 0, 0, 0, 1),
    compliance(WEEK, "daraya", "ru", 1, 1, 0, 1, 0),
    compliance(WEEK, "raqqa", "gos", 0, 0, 1, 0, 0),
    compliance(PREVIOUS, "madaya", "gos", 2, 0, 0, 0, 0),
    compliance(PREVIOUS, "daraya", "gos", 1, 0, 0, 0, 0),
    compliance(PREVIOUS, "fouah", "hzb", 1, 0, 0, 0, 0),
    compliance(NEXT, "madaya", "gos", 1, 0, 0, 0, 0),
    access(WEEK, "madaya", 2, 1, 1, 0, 400, 1, 1, 0, 1),
    access(WEEK, "fouah", 0, 0, 1, 0, 0, 0, 0, 0, 0),
    access(PREVIOUS, "madaya", 0, 0, 0, 0, 0, 1, 1, 1, 0),
    access("2016-W07", "fouah", 1, 0, 0, 0, 2000, 0, 0, 0, 0),
    access(NEXT, "madaya", 1, 0, 0, 0, 500, 0, 1, 0, 0),
]


def alert(fingerprint: str, state: str, starts: str, updated: str, summary: str = "") -> Alert:
    return Alert(
        fingerprint=fingerprint, rule="violation_spike", area="madaya", party="", window="P1D",
        state=state, severity="severe", summary=summary or f"spike {fingerprint}", value=9,
        threshold=5, starts_at=at(starts), updated_at=at(updated), version=1,
        report_ids=["v-gos-1", "v-gos-3"],
    )  # fmt: skip


ALERTS = [
    alert("a-new", "firing", "03-01", "03-02", summary="7 violations in <b>Madaya</b> | 24 h"),
    alert("a-old", "resolved", "02-15", "02-25"),  # over before the week
    alert("a-ended", "resolved", "02-27", "03-01"),  # ended during the week
    alert("a-later", "firing", "03-08", "03-08"),  # after the week
    alert("a-long", "firing", "02-08", "02-09"),  # still firing
]
WEEK_ALERTS = ["a-long", "a-ended", "a-new"]  # by start


def envelope(
    report_id: str, revision: int, occurred: str, received: str, **fields: Any
) -> ReportEnvelope:
    body = violation(report_id, occurred_at=at(occurred).isoformat(), revision=revision,
                     **fields)  # fmt: skip
    return make_envelope(parse_report(body), org="sarc", key_name="sarc-1",
                         received_at=at(received))  # fmt: skip


def _body(report: CanonicalReport, revision: int, retracted: bool) -> dict[str, Any]:
    common = {"report_id": report.report_id, "revision": revision, "kind": report.kind,
              "occurred_at": report.occurred_at.isoformat(), "retracted": retracted,
              "area": report.area}  # fmt: skip
    if report.kind == "violation":
        return violation(**common, perpetrator=report.party, target=report.target,
                         category=report.category, killed=report.killed,
                         injured=report.injured)  # fmt: skip
    if report.kind == "delivery":
        return {**common, "agency": "WFP", "modality": "convoy", "status": report.status,
                "beneficiaries": report.beneficiaries}  # fmt: skip
    return {**common, "status": report.status}


def raw_log(reports: Sequence[CanonicalReport], received: datetime) -> list[ReportEnvelope]:
    """The records of the reports topic the stream classified these canonical reports from
    (revisions 1 to the current one, verifications, designations), all received at
    ``received``: what `truce verify` recounts them from."""

    def sent(body: dict[str, Any], org: str) -> ReportEnvelope:
        return make_envelope(parse_report(body), org=org, key_name=f"{org}-1",
                             received_at=received)  # fmt: skip

    log: list[ReportEnvelope] = []
    for report in reports:
        for revision in range(1, report.revision + 1):
            retracted = report.retracted and revision == report.revision
            log.append(sent(_body(report, revision, retracted), report.org))
        if report.verification != "unverified":
            log.append(sent({"report_id": f"ver-{report.report_id}", "kind": "verification",
                             "occurred_at": report.occurred_at.isoformat(),
                             "subject": report.report_id, "status": report.verification},
                            "taskforce"))  # fmt: skip
        designation = report.exempt_reason.removeprefix("designation:")
        if designation != report.exempt_reason:
            log.append(sent({"report_id": designation, "kind": "designation",
                             "occurred_at": report.occurred_at.isoformat(),
                             "area": report.area, "party": "isil"}, "taskforce"))  # fmt: skip
    return log


# Arrivals: one late report (W08, received in W09) sent twice, on time, revised, next week.
# Received after the week, the records behind the canonical reports change none of them.
ENVELOPES = [
    envelope("late-1", 1, "02-26", "03-01"),
    envelope("late-1", 1, "02-26", "03-01"),  # redelivered: still one report
    envelope("prompt-1", 1, "02-26", "02-27"),
    envelope("v-gos-2", 1, "03-03", "03-04", area="daraya", killed=0, injured=1),
    envelope("rev-1", 2, "02-20", "03-03"),
    envelope("rev-1", 3, "02-20", "03-04"),
    envelope("rev-2", 2, "02-20", "02-28"),  # revised before the week
    envelope("late-2", 1, "02-20", "03-08"),  # arrives after the week
    *raw_log(CANONICAL, at("03-20")),
]
LATE_REPORTS, REVISED_REPORTS = 1, 1

LATE_AT = at("03-22")
DESIGNATED_AT = at("03-25")
LATE = [
    envelope("late-w9", 1, "03-02", "03-22", area="madaya", killed=4, injured=0),
    envelope("v-ru-1", 2, "03-05", "03-22", area="daraya", perpetrator="ru", killed=1,
             injured=0, retracted=True),
    make_envelope(parse_report({"report_id": "des-daraya", "kind": "designation",
                                "occurred_at": "2016-02-20T00:00:00Z", "area": "daraya",
                                "party": "isil"}),
                  org="taskforce", key_name="tf-1", received_at=DESIGNATED_AT),
]  # fmt: skip
"""Sent after a first edition of W09 (the editions tests): a late W09 violation in Madaya,
v-ru-1 retracted, and a designation of Daraya that makes v-gos-2 exempt. The stream's
records are not resent: only the raw-log recount (as-of, editions, restatements) sees them."""


def publish_records(
    bootstrap: str,
    names: TopicNames,
    *,
    envelopes: Sequence[ReportEnvelope] = (),
    canonical: Sequence[CanonicalReport] = (),
    snapshots: Sequence[WeeklyCompliance | WeeklyAccess] = (),
    alerts: Sequence[Alert] = (),
) -> None:
    """Send records to the topics the store's sink reads, keyed as ingest and the stream
    key them."""
    producer = durable_producer(bootstrap)
    try:
        for env in envelopes:
            producer.send(names.reports, key=partition_key(env.report).encode(),
                          value=encode_envelope(env))  # fmt: skip
        for record in canonical:
            producer.send(names.events, key=record.report_id.encode(),
                          value=record.model_dump_json().encode())  # fmt: skip
        for snap in snapshots:
            if isinstance(snap, WeeklyCompliance):
                kind, key = "compliance", f"compliance|{snap.week}|{snap.area}|{snap.party}"
            else:
                kind, key = "access", f"access|{snap.week}|{snap.area}"
            value = orjson.dumps({"type": kind, **snap.model_dump()})
            producer.send(names.metrics, key=key.encode(), value=value)
        for record in alerts:
            producer.send(names.alerts, key=record.fingerprint.encode(),
                          value=record.model_dump_json().encode())  # fmt: skip
        producer.flush(timeout=15)
    finally:
        producer.close()


def publish(bootstrap: str, names: TopicNames) -> None:
    """The known week, as above."""
    publish_records(bootstrap, names, envelopes=ENVELOPES, canonical=CANONICAL,
                    snapshots=SNAPSHOTS, alerts=ALERTS)  # fmt: skip


def store_keys(settings: Settings) -> dict[str, str]:
    """A key per role (two partners) and a revoked monitor key, by short name."""
    keys = KeyStore(settings)
    made = {
        "sarc": keys.create("sarc-1", Role.PARTNER, "sarc"),
        "wfp": keys.create("wfp-1", Role.PARTNER, "wfp"),
        "monitor": keys.create("monitor-1", Role.MONITOR),
        "taskforce": keys.create("tf-1", Role.TASKFORCE),
        "admin": keys.create("admin-1", Role.ADMIN),
        "revoked": keys.create("old-1", Role.MONITOR),
    }
    keys.revoke("old-1")
    return made


def wait_stored(bootstrap: str, prefix: str, timeout_s: float = 60) -> None:
    """Until the store's sink has committed everything on its topics."""
    group, topics = group_inputs(prefix)["store"]
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if not any(consumer_lag(bootstrap, group, topics).values()):
                return
        except KafkaError:
            pass  # the group's coordinator is still loading
        assert time.monotonic() < deadline, "the sink did not store the seeded records"
        time.sleep(0.2)


@dataclass
class InProcessStore:
    client: TestClient
    keys: dict[str, str]
    settings: Settings
    store: StoreState
    names: TopicNames


@contextmanager
def in_process_store(
    bootstrap: str,
    clickhouse_root: str,
    home: Path,
    seed: Callable[[str, TopicNames], None],
    **overrides: object,
) -> Iterator[InProcessStore]:
    """The real store app (lifespan: migrations, sink thread) on fresh topics and a fresh
    ClickHouse database, after ``seed`` published its records and the sink stored them;
    ``overrides`` are settings."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    dsn = with_database(clickhouse_root, f"store_{uuid.uuid4().hex[:12]}")
    settings = isolated_settings(home, kafka_bootstrap=bootstrap, topic_prefix=prefix,
                                 clickhouse_dsn=dsn, **overrides)  # fmt: skip
    names = topic_names(prefix)
    ensure_topics(bootstrap, names.all(), partitions=2, compacted=[names.events, names.metrics])
    keys = store_keys(settings)
    seed(bootstrap, names)
    database = Database(dsn)
    store = StoreState(settings, database=database)
    try:
        with TestClient(create_app(settings, store=store)) as client:
            wait_stored(bootstrap, prefix)
            yield InProcessStore(client, keys, settings, store, names)
    finally:
        database.client.command(f"DROP DATABASE IF EXISTS `{dsn_database(dsn)}`")
        database.close()
