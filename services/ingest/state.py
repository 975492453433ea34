"""Everything the ingest handlers share, built once per process in the app's lifespan."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from fastapi import Request
from prometheus_client import CollectorRegistry

from core.http import require_roles
from core.kafka import cluster_answers, end_offsets, ensure_topics, replication
from core.kafka_access import kafka_access
from core.keys import ApiKey, KeyStore, Role
from core.limits import RateLimiter
from core.settings import Settings
from schemas import topic_names
from services.ingest.follower import LogFollower
from services.ingest.ledger import Ledger
from services.ingest.locks import IdLocks
from services.ingest.metrics import IngestMetrics
from services.ingest.publisher import Publisher


class IngestState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = topic_names(settings.topic_prefix).reports
        self.keys = KeyStore(settings)
        self.ledger = Ledger()
        self.kafka = kafka_access(settings)
        self.follower = LogFollower(self.kafka, self.topic, self.ledger)
        self.publisher = Publisher(self.kafka, self.topic, settings.publish_timeout_s)
        self.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
        self.metrics = IngestMetrics()
        self.locks = IdLocks()
        limiter = self.limiter
        self._submit = require_roles(
            lambda: self.keys, Role.PARTNER, Role.TASKFORCE, limiter=limiter
        )
        self._any = require_roles(lambda: self.keys, *Role, limiter=limiter)
        self._kafka_ok = False
        self._kafka_checked = 0.0
        self._kafka_lock = threading.Lock()
        self.in_doubt: set[str] = set()
        """Report ids of requests whose publish failed without an answer from Kafka: their
        records may be in the log even though the partner was told 503."""

    def start(self) -> None:
        ensure_topics(
            self.kafka,
            [self.topic],
            partitions=self.settings.kafka_partitions,
            replication=replication(self.settings),
        )
        self.follower.start()

    def stop(self) -> None:
        self.follower.stop()
        self.publisher.close()

    async def settle_doubts(self, report_ids: set[str]) -> bool:
        """Before judging a resend of a report whose last publish is in doubt, read the log
        up to its current end: if the earlier attempt did land, the resend is a duplicate
        (answering it "accepted" wrote the revision twice). False if Kafka cannot tell yet.
        Called with the ids' locks held."""
        doubtful = report_ids & self.in_doubt
        if not doubtful:
            return True
        await self.publisher.settled()
        try:
            ends = await asyncio.to_thread(end_offsets, self.kafka, self.topic)
        except Exception:  # the broker is away: still in doubt
            return False
        by_partition = {tp.partition: offset for tp, offset in ends.items()}
        timeout = self.settings.publish_timeout_s
        if not await asyncio.to_thread(self.follower.wait_applied, by_partition, timeout):
            return False
        self.in_doubt -= doubtful
        return True

    def auth_submit(self, request: Request) -> ApiKey:
        return self._submit(request)

    def auth_any(self, request: Request) -> ApiKey:
        return self._any(request)

    def kafka_answers(self) -> bool:
        """Cached for two seconds so probes do not hammer the broker."""
        with self._kafka_lock:
            if time.monotonic() - self._kafka_checked > 2.0:
                self._kafka_ok = cluster_answers(self.kafka, timeout_ms=1_500)
                self._kafka_checked = time.monotonic()
            return self._kafka_ok

    def readiness(self) -> dict[str, bool]:
        kafka = self.kafka_answers()
        return {
            "kafka": kafka,
            "ledger": self.follower.caught_up.is_set(),
            # after a failed publish, ready again only once a fresh producer reaches the
            # topic: the broker answering an admin probe is not the producer working
            "producer": self.publisher.healthy or (kafka and self.publisher.probe()),
        }

    def readiness_details(self) -> dict[str, Any]:
        details: dict[str, Any] = {"ledger_records_read": self.follower.records_read}
        if not self.publisher.healthy:
            details["producer_error"] = self.publisher.last_error
        return details

    def metrics_registry(self) -> CollectorRegistry:
        self.metrics.ledger_size.set(len(self.ledger))
        return self.metrics.registry


def ingest_state(request: Request) -> IngestState:
    st: IngestState = request.app.state.ingest
    return st


async def state(request: Request) -> IngestState:
    """:func:`ingest_state` as a FastAPI dependency (async, so it skips the threadpool)."""
    return ingest_state(request)
