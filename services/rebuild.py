"""`truce rebuild`: every projection (the stream worker's state, its output topics and
the ClickHouse tables) dropped and rebuilt from the reports topic, the system of record.

The weekly metrics are read through the query API before and after; the rebuild fails
unless they are equal and `truce verify` agrees. The replay runs without the ingest API
(no report can arrive meanwhile; partners' clients retry) and without the alerter, whose
consumer group then starts after the rebuilt alerts: on-call staff are not told again
about alerts that were re-derived from history. The alerter's own delivery log is kept."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient
from kafka import errors as kafka_errors
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from core.errors import ProcessError, TruceError
from core.kafka import (
    GROUP_SESSION_TIMEOUT_S,
    admin_client,
    consumer_lag,
    end_offsets,
    topic_size,
)
from core.kafka_access import kafka_access
from core.merkle import verify_consistency
from core.settings import Settings
from schemas import group_names, topic_names
from services.published import Difference, MetricsSet, QueryClient, compare, fetch_published
from services.runtime import broker, control
from services.runtime.topics import ensure_all_topics
from services.store.database import Database
from services.verify import operator_key, reconcile

REPLAY_SKIPS = ("kafka", "ingest", "alerter")  # the broker is started by the rebuild itself
REPLAYED = ("streams", "store")


class RebuildError(TruceError):
    """The rebuilt projections differ from what was there before."""


@dataclass
class RebuildResult:
    reports: int
    seconds: float
    weeks: int
    differences: list[Difference]
    verified: bool
    workers: int
    log_problem: str | None = None
    """Why the rebuilt store's tree does not reproduce the head signed before (None: it does)."""

    @property
    def rate(self) -> float:
        return self.reports / self.seconds if self.seconds else 0.0


def derived_topics(settings: Settings, existing: list[str]) -> list[str]:
    """Every topic rebuilt from the log: the stream's outputs and its own internal topics
    (changelogs, named after its application id). The reports topic and the alerter's
    delivery log are never touched."""
    names = topic_names(settings.topic_prefix)
    app_id = group_names(settings.topic_prefix).streams
    outputs = {
        names.folded,
        names.verdicts,
        names.events,
        names.metrics,
        names.alerts,
        names.deadletter,
    }
    return sorted(t for t in existing if t in outputs or t.startswith(f"{app_id}-"))


def _log_head(settings: Settings) -> dict[str, Any] | None:
    """The signed tree head the store serves now (None when it serves none)."""
    client = QueryClient(settings.query_url, operator_key(settings))
    try:
        return dict(client.json("/v1/log/head"))
    except TruceError:
        return None
    finally:
        client.close()


def _log_kept(settings: Settings, before: dict[str, Any] | None, timeout_s: float) -> str | None:
    """None when the rebuilt store has re-derived the head signed before the rebuild: its
    tree of that size has the same root, and its current head extends it (RFC 9162
    consistency proof); otherwise why not."""
    if before is None or not before["tree_size"]:
        return None
    size = int(before["tree_size"])
    deadline = time.monotonic() + timeout_s
    client = QueryClient(settings.query_url, operator_key(settings))
    try:
        while True:
            try:
                head = client.json("/v1/log/head")
            except TruceError:  # 503 while the store re-reads the heads
                head = None
            if head is not None and int(head["tree_size"]) >= size:
                break
            if time.monotonic() > deadline:
                return f"the rebuilt store did not re-derive the signed head of {size} leaves"
            time.sleep(0.5)
        proof = client.json("/v1/log/proof/consistency", first=str(size),
                            second=str(head["tree_size"]))  # fmt: skip
    finally:
        client.close()
    if proof["first_root"] != before["root_hash"]:
        return f"the rebuilt tree of {size} leaves has another root than the head signed before"
    path = [bytes.fromhex(h) for h in proof["consistency_path"]]
    second = int(head["tree_size"])
    if not verify_consistency(size, second, bytes.fromhex(before["root_hash"]),
                              bytes.fromhex(head["root_hash"]), path):  # fmt: skip
        return f"the rebuilt log's head of {second} leaves does not extend the one of {size}"
    return None


def _snapshot(settings: Settings) -> MetricsSet:
    weeks = reconcile(settings, None)["weeks"]
    client = QueryClient(settings.query_url, operator_key(settings))
    try:
        return fetch_published(client, list(weeks))
    finally:
        client.close()


GROUP_GONE = ("OK", "GroupIdNotFoundError")


def _retriable(exc: BaseException) -> bool:
    return isinstance(exc, KafkaError) and exc.retriable


def _delete_groups(admin: KafkaAdminClient, groups: list[str], members_expire_s: float) -> None:
    """Forget the committed offsets of ``groups`` (a group that does not exist is fine).

    Each group is deleted by name and its result checked: a broker that has just started
    answers ListGroups without error but without the groups its coordinator has not
    loaded yet (the replay then started from the old offsets and rebuilt nothing), and
    answers DeleteGroups with a retriable error per group until it has loaded them.

    Every consumer is stopped when this runs, so a group that still has members holds a
    worker that was killed, or stopped without leaving: the coordinator keeps it (across
    a broker restart too) until its session times out, within ``members_expire_s``."""
    patience = members_expire_s + 30.0
    started = time.monotonic()
    for attempt in Retrying(
        retry=retry_if_exception(_retriable),
        wait=wait_fixed(0.5),
        stop=stop_after_delay(60 + patience),
        reraise=True,
    ):
        with attempt:
            results: dict[str, str] = admin.delete_groups(groups)
            failed = {group: name for group, name in results.items() if name not in GROUP_GONE}
            for group, name in failed.items():
                error: Any = getattr(kafka_errors, name, None)  # the class for_code() named
                if error is not None and error.retriable:
                    raise error(group)
            stale = [group for group, name in failed.items() if name == "NonEmptyGroupError"]
            if stale and stale == list(failed) and time.monotonic() - started < patience:
                raise kafka_errors.RequestTimedOutError(f"members of {stale} not expired yet")
            if failed:
                raise ProcessError(
                    f"Kafka did not delete the consumer groups: {failed}",
                    hint="a group with members has a consumer still running: stop it "
                    "(truce down; check `ps` for a stray `streams` or `services.store`).",
                )


def members_expire_s(settings: Settings) -> float:
    """The longest session of the consumers whose groups the rebuild deletes."""
    return max(settings.streams_session_timeout_s, GROUP_SESSION_TIMEOUT_S)


def _reset_kafka(settings: Settings) -> None:
    admin = admin_client(kafka_access(settings), timeout_ms=30_000)
    try:
        groups = group_names(settings.topic_prefix)
        _delete_groups(admin, [groups.streams, groups.store_sink], members_expire_s(settings))
        doomed = derived_topics(settings, admin.list_topics())
        if doomed:
            admin.delete_topics(doomed, timeout_ms=30_000)
        deadline = time.monotonic() + 60
        while set(doomed) & set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise ProcessError("Kafka did not delete the derived topics in time")
            time.sleep(0.5)
    finally:
        admin.close()
    ensure_all_topics(settings)


def _skip_alert_history(settings: Settings) -> None:
    """Point the alerter's group at the end of the rebuilt alerts topic (it is stopped)."""
    names = topic_names(settings.topic_prefix)
    group = group_names(settings.topic_prefix).alerter
    ends = end_offsets(kafka_access(settings), names.alerts)
    admin = admin_client(kafka_access(settings), timeout_ms=30_000)
    try:
        _delete_groups(admin, [group], members_expire_s(settings))  # offsets of the old topic
        offsets = {tp: OffsetAndMetadata(end, "", -1) for tp, end in ends.items()}
        admin.alter_group_offsets(group, offsets)
    finally:
        admin.close()


def _reset_clickhouse(settings: Settings) -> None:
    db = Database(settings.clickhouse_url)
    try:
        db.drop_all()
    finally:
        db.close()


@contextmanager
def _broker_only(settings: Settings) -> Iterator[None]:
    """With every service stopped, run the stack's own broker (unless Kafka is external)
    outside of any supervisor, for the duration of the rebuild."""
    if settings.kafka_bootstrap:
        yield
        return
    with broker.running(settings):
        yield


def _reset(settings: Settings) -> None:
    """With the services stopped and the broker up: drop every projection."""
    _reset_kafka(settings)
    shutil.rmtree(settings.streams_dir, ignore_errors=True)
    _reset_clickhouse(settings)


def replay_workers(settings: Settings) -> int:
    """Stream workers for the replay: one per core, up to the partitions (the replay is
    bound by the worker, one process uses one core), and never fewer than `truce up` runs."""
    return max(settings.streams_workers, min(os.cpu_count() or 1, settings.kafka_partitions))


def _replay(
    settings: Settings,
    workers: int,
    on_phase: Callable[[str], None],
    on_replayed: Callable[[int, int], None],
    timeout_s: float,
    log_before: dict[str, Any] | None = None,
) -> tuple[float, int, dict[str, Any], MetricsSet, str | None]:
    """Reset, replay with the stream workers and the store, check: (seconds, reports, the
    verdict of `truce verify`, the metrics after, what differs in the log's heads)."""
    on_phase("dropping the stream state, derived topics and ClickHouse tables")
    _reset(settings)
    on_phase("starting the stream workers and the store on empty projections")
    control.start_detached(settings, skip=REPLAY_SKIPS, streams_workers=workers)
    started = time.monotonic()
    names = topic_names(settings.topic_prefix)
    group = group_names(settings.topic_prefix).streams
    total = topic_size(kafka_access(settings), names.reports)
    on_phase("replaying the reports topic")

    def polled(_: int) -> None:
        left = sum(consumer_lag(kafka_access(settings), group, [names.reports]).values())
        on_replayed(max(0, total - left), total)

    control.wait_until_idle(settings, timeout_s, on_poll=polled, poll_s=0.5, groups=REPLAYED)
    seconds = time.monotonic() - started
    on_phase("checking: truce verify, the metrics and the log's signed head against before")
    log_problem = _log_kept(settings, log_before, timeout_s=120.0)
    return seconds, total, reconcile(settings, None), _snapshot(settings), log_problem


def rebuild(
    settings: Settings,
    *,
    on_phase: Callable[[str], None] = lambda phase: None,
    on_replayed: Callable[[int, int], None] = lambda done, total: None,
    timeout_s: float = 3600.0,
    workers: int | None = None,
) -> RebuildResult:
    """Rebuild every projection with ``workers`` stream workers (by default
    :func:`replay_workers`); leaves the stack running only if it was running, and stopped
    if anything fails.

    One broker serves the reset, the replay and the alerter's new offsets: the stack's
    own broker runs on its own, and the replay's supervisor starts only the stream workers
    and the store against it (each broker stop and start cost seconds)."""
    workers = workers or replay_workers(settings)
    was_running = control.supervisor_pid(settings) is not None
    if not was_running:
        on_phase("starting Truce to read the current metrics")
        control.start_detached(settings)
    try:
        control.wait_until_idle(settings, timeout_s)
        on_phase("reading the current metrics")
        before = _snapshot(settings)
        log_before = _log_head(settings)
        on_phase("stopping the services")
        control.stop_stack(settings)
        with _broker_only(settings):
            try:
                seconds, total, verdict, after, log_problem = _replay(
                    settings, workers, on_phase, on_replayed, timeout_s, log_before
                )
            finally:
                control.stop_stack(settings)  # the services, before their broker
            _skip_alert_history(settings)
        if was_running:
            on_phase("starting every service again")
            control.start_detached(settings)
        return RebuildResult(
            reports=total,
            seconds=seconds,
            weeks=len(verdict["weeks"]),
            differences=compare(after, before),
            verified=bool(verdict["ok"]),
            workers=workers,
            log_problem=log_problem,
        )
    except BaseException:
        control.stop_stack(settings)  # never leave a half-rebuilt stack running
        raise
