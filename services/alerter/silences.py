"""Silences: kept in a compacted Kafka topic of their own, keyed by silence id.

Why a topic and not a file under TRUCE_HOME: every replica of the alerter group must
see the same silences, they must survive restarts and machine loss like the rest of
the state, and the topic is the same log-as-truth the project runs on. Expiring a
silence republishes it with ``ends_at`` = now, so the compacted topic keeps only its
latest state; the alerter reads the topic to its end before it is ready and tails it.
The CLI writes the topic directly (an operator on the host, like ``truce keys``); the
HTTP API writes it the same way and applies the change at once."""

from __future__ import annotations

import difflib
import secrets
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

import structlog
from pydantic import ValidationError

from core.errors import BrokerError, TruceError
from core.kafka import Replication, durable_producer, ensure_topics
from core.kafka_access import Cluster, access_of
from schemas import Alert, Silence, silences_topic
from services.alerter.labels import alert_labels, known_values
from services.alerter.replay import open_from_start, poll_into, read_to_end, replay, values

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
    _check_values(matchers)
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


def _check_values(matchers: Mapping[str, str]) -> None:
    """Refuse a value no alert can carry: a silence on ``area=dariya`` would mute nothing
    while on-call staff believed Daraya muted."""
    for label, value in matchers.items():
        known = known_values(label)
        if not known or value in known:
            continue  # an unknown label is refused by the model, with its own message
        close = difflib.get_close_matches(value, sorted(known), n=3, cutoff=0.6)
        raise SilenceError(
            f"no alert has {label}={value!r}",
            hint=f"did you mean {' or '.join(f'{label}={c}' for c in close)}?"
            if close
            else f"GET /v1/reference/{label}s lists them"
            if label in ("area", "party")
            else f"{label} is one of {', '.join(sorted(known))}",
        )


def matching(silence: Silence, alerts: Iterable[Alert]) -> list[Alert]:
    """The firing alerts ``silence`` would mute (its preview)."""
    return [a for a in alerts if a.state == "firing" and silence.matches(alert_labels(a))]


def by_prefix(silences: Iterable[Silence], prefix: str) -> Silence:
    """The silence whose id is ``prefix`` or starts with it, if exactly one does."""
    found = [s for s in silences if s.silence_id.startswith(prefix)] if prefix else []
    exact = [s for s in found if s.silence_id == prefix]
    if exact:
        return exact[0]
    if len(found) == 1:
        return found[0]
    if not found:
        raise SilenceError(
            f"no silence {prefix!r}", hint="`truce alerts silence list` shows them"
        )
    raise SilenceError(
        f"{len(found)} silences start with {prefix!r}", hint="give more of the id"
    )


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

    def find(self, prefix: str) -> Silence:
        """By id or unique id prefix (``SilenceError`` otherwise)."""
        with self._lock:
            return by_prefix(list(self._by_id.values()), prefix)

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
        replay(self.bootstrap, self.topic, values(book.apply_record))
        return book.all()

    def expire(self, prefix: str) -> Silence:
        """Expire the silence with this id or unique id prefix."""
        expired = expired_now(by_prefix(self.read_all(), prefix))
        self.publish(expired)
        return expired

    def follow(self, book: SilenceBook, loaded: threading.Event, stop: threading.Event) -> None:
        """Load the topic into ``book``, set ``loaded``, then keep applying new records
        until ``stop`` (runs in its own thread; reconnects on broker trouble)."""
        while not stop.is_set():
            try:
                consumer, end = open_from_start(self.bootstrap, self.topic)
                try:
                    read_to_end(consumer, end, values(book.apply_record), timeout_s=60)
                    loaded.set()
                    while not stop.is_set():
                        poll_into(consumer, values(book.apply_record))
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
