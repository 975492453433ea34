"""Silences: kept in a compacted Kafka topic of their own, keyed by silence id.

Why a topic and not a file under TRUCE_HOME: every replica of the alerter group must
see the same silences, they must survive restarts and machine loss like the rest of
the state, and the topic is the same log-as-truth the project runs on. Expiring a
silence republishes it with ``ends_at`` = now, so the compacted topic keeps only its
latest state; the alerter reads the topic to its end before it is ready and tails it.
The CLI writes the topic directly (an operator on the host, like ``truce keys``); the
HTTP API writes it the same way and applies the change at once."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import structlog
from pydantic import ValidationError

from core.errors import BrokerError, TruceError
from core.kafka import Replication, durable_producer, ensure_topics
from core.kafka_access import Cluster, access_of
from schemas import Silence, silences_topic
from services.alerter.replay import open_from_start, poll_into, read_to_end, replay

log = structlog.get_logger("alerter.silences")


class SilenceError(TruceError):
    """A silence could not be created, found or expired."""


MAX_SILENCE = timedelta(days=366)
"""The longest a silence may last: a longer mute is a routing change (alerter.yaml), and
far-off ends overflow the calendar."""


def new_silence(
    matchers: Mapping[str, str], ends_at: datetime, created_by: str, comment: str = ""
) -> Silence:
    now = datetime.now(UTC)
    if ends_at <= now:
        raise SilenceError("a silence must end in the future", hint="e.g. --for 2h")
    if ends_at - now > MAX_SILENCE:
        raise SilenceError(
            f"a silence may last at most {MAX_SILENCE.days} days",
            hint="mute longer by changing the routes in alerter.yaml",
        )
    try:
        return _validate(
            {
                "silence_id": secrets.token_hex(8),
                "matchers": dict(matchers),
                "starts_at": now,
                "ends_at": ends_at,
                "created_by": created_by,
                "comment": comment,
                "created_at": now,
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SilenceError(
            f"invalid silence: {where}: {first['msg']}",
            hint="match on rule, area, governorate, party or severity, e.g. --match area=daraya",
        ) from exc


def _validate(data: dict[str, object]) -> Silence:
    return Silence.model_validate(data)


class SilenceBook:
    """The current silences in memory (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Silence] = {}

    def apply(self, silence: Silence) -> None:
        with self._lock:
            self._by_id[silence.silence_id] = silence

    def apply_record(self, value: bytes) -> None:
        try:
            self.apply(Silence.model_validate_json(value))
        except ValueError as exc:
            log.error("silence record does not decode; skipped", error=str(exc)[:300])

    def get(self, silence_id: str) -> Silence | None:
        with self._lock:
            return self._by_id.get(silence_id)

    def all(self) -> list[Silence]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda s: s.created_at, reverse=True)

    def silencing(self, labels: dict[str, str], now: datetime) -> Silence | None:
        """The first active silence that matches ``labels``, if any."""
        with self._lock:
            for silence in self._by_id.values():
                if silence.active(now) and silence.matches(labels):
                    return silence
        return None


class SilenceLog:
    """Reading and writing the silences topic."""

    def __init__(
        self,
        bootstrap: Cluster,
        prefix: str,
        partitions: int,
        replication: Replication = Replication(),  # noqa: B008 - frozen
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = silences_topic(prefix)
        self.partitions = partitions
        self.replication = replication

    def ensure(self) -> None:
        try:
            ensure_topics(
                self.bootstrap,
                [self.topic],
                partitions=self.partitions,
                compacted=[self.topic],
                replication=self.replication,
            )
        except Exception as exc:
            raise BrokerError(
                f"Kafka at {access_of(self.bootstrap).bootstrap} does not answer: {exc}",
                hint="is Truce running? `truce up --detach` starts it",
            ) from exc

    def publish(self, silence: Silence) -> None:
        """Write durably (``acks=all``) before returning."""
        producer = durable_producer(self.bootstrap)
        try:
            producer.send(
                self.topic,
                key=silence.silence_id.encode(),
                value=silence.model_dump_json().encode(),
            ).get(timeout=30)
        finally:
            producer.close()

    def read_all(self) -> list[Silence]:
        book = SilenceBook()
        replay(self.bootstrap, self.topic, book.apply_record)
        return book.all()

    def expire(self, silence_id: str) -> Silence:
        found = {s.silence_id: s for s in self.read_all()}.get(silence_id)
        if found is None:
            raise SilenceError(
                f"no silence {silence_id!r}", hint="`truce alerts silence list` shows them"
            )
        expired = expired_now(found)
        self.publish(expired)
        return expired

    def follow(self, book: SilenceBook, loaded: threading.Event, stop: threading.Event) -> None:
        """Load the topic into ``book``, set ``loaded``, then keep applying new records
        until ``stop`` (runs in its own thread; reconnects on broker trouble)."""
        while not stop.is_set():
            try:
                consumer, end = open_from_start(self.bootstrap, self.topic)
                try:
                    read_to_end(consumer, end, book.apply_record, timeout_s=60)
                    loaded.set()
                    while not stop.is_set():
                        poll_into(consumer, book.apply_record)
                finally:
                    consumer.close()
            except Exception:
                log.exception("following the silences topic failed; retrying")
                stop.wait(2.0)


def expired_now(silence: Silence) -> Silence:
    now = datetime.now(UTC)
    if silence.ends_at <= now:
        return silence
    return silence.model_copy(update={"ends_at": max(now, silence.starts_at)})
