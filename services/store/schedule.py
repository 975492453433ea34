"""The optional weekly schedule: last week's edition published by itself at a fixed time
(setting ``edition_schedule``, e.g. ``MON 12:00`` UTC; off by default).

Publishing is decided from the editions themselves, not from memory: at each check the
latest slot at or before now names the week before it, and that week is published unless
one of its editions was published at or after the slot. A restart, a late start or a
second check in the same slot therefore publishes nothing twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import structlog

from core.errors import TruceError
from schemas.weeks import previous_week, week_of_day
from services.store.database import Database
from services.store.editions import Publisher, editions

log = structlog.get_logger("schedule")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Slot:
    weekday: int  # Monday is 0
    at: time

    @classmethod
    def parse(cls, text: str) -> Slot:
        """``DAY HH:MM`` (UTC), as the setting is validated."""
        day, clock = text.strip().lower().split()
        hour, minute = (int(x) for x in clock.split(":"))
        return cls(DAYS.index(day), time(hour, minute, tzinfo=UTC))

    def latest(self, now: datetime) -> datetime:
        """The last occurrence of the slot at or before ``now``."""
        now = now.astimezone(UTC)
        day = now.date() - timedelta(days=(now.weekday() - self.weekday) % 7)
        moment = datetime.combine(day, self.at)
        return moment if moment <= now else moment - timedelta(days=7)


def due(db: Database, slot: Slot, now: datetime) -> str | None:
    """The week to publish now, if any: the one before the latest slot's week, unless it
    already has an edition published at or after that slot."""
    moment = slot.latest(now)
    week = previous_week(week_of_day(moment.date()))
    if any(e.published_at >= moment for e in editions(db, week)):
        return None
    return week


class Schedule(threading.Thread):
    """Checks every ``check_s`` seconds whether an edition is due, and publishes it."""

    def __init__(
        self,
        publisher: Publisher,
        slot: Slot,
        check_s: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(name="edition-schedule", daemon=True)
        self.publisher, self.slot, self.check_s, self.clock = publisher, slot, check_s, clock
        self._stop_event = threading.Event()

    def tick(self) -> str | None:
        """Publish the due week, if any; the week published."""
        week = due(self.publisher.db, self.slot, self.clock())
        if week is not None:
            summary = self.publisher.publish(week)
            log.info("published the scheduled edition", week=week, edition=summary.edition)
        return week

    def run(self) -> None:
        while not self._stop_event.wait(self.check_s):
            try:
                self.tick()
            except TruceError as exc:  # Kafka or ClickHouse down: the next check retries
                log.warning("the scheduled edition was not published", error=str(exc))
            except Exception:
                log.exception("the scheduled edition failed")

    def stop(self) -> None:
        self._stop_event.set()
