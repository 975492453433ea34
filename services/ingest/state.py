"""Everything the ingest handlers share, built once per process in the app's lifespan."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import Request
from prometheus_client import CollectorRegistry

from core.http import require_roles
from core.kafka import cluster_answers, end_offsets, ensure_topics, replication
from core.kafka_access import kafka_access
from core.keys import ApiKey, KeyStore, Role
from core.limits import SharedRateLimiter
from core.settings import Settings
from schemas import topic_names
from services.ingest.coordination import Claim, Coordination
from services.ingest.follower import LogFollower
from services.ingest.ledger import Ledger
from services.ingest.locks import IdLocks
from services.ingest.metrics import IngestMetrics
from services.ingest.publisher import Publisher

log = structlog.get_logger("ingest.state")


class IngestState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = topic_names(settings.topic_prefix).reports
        self.keys = KeyStore(settings)
        self.ledger = Ledger()
        self.kafka = kafka_access(settings)
        shared = settings.ingest_shared_dir
        self.coordination = Coordination(shared / "intake.sqlite", self.ledger)
        self.follower = LogFollower(
            self.kafka, self.topic, self.ledger, report=self._report_positions
        )
        self.publisher = Publisher(self.kafka, self.topic, settings.publish_timeout_s)
        self.limiter = SharedRateLimiter(
            shared / "limits.sqlite", settings.rate_limit_per_s, settings.rate_limit_burst
        )
        self.metrics = IngestMetrics(settings)
        self.locks = IdLocks()
        limiter = self.limiter
        self._submit = require_roles(
            lambda: self.keys, Role.PARTNER, Role.TASKFORCE, limiter=limiter
        )
        self._any = require_roles(lambda: self.keys, *Role, limiter=limiter)
        self._kafka_ok = False
        self._kafka_checked = 0.0
        self._kafka_lock = threading.Lock()

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
        self.coordination.forget_reader()

    def _report_positions(self, positions: Mapping[int, int]) -> None:
        try:
            self.coordination.report_positions(positions)
        except Exception:  # the next report retries; until then accepts are kept longer
            log.exception("could not share how far the ledger has read")
        self.metrics.ledger_size.set(len(self.ledger))

    async def settle_doubts(self, claim: Claim) -> bool:
        """Before judging a resend of a report whose last publish is in doubt (by this or
        another ingest process, or by one that died), read the log up to its current end:
        if the earlier attempt did land, the resend is a duplicate (answering it "accepted"
        wrote the revision twice). False if Kafka cannot tell yet. Called with the claim
        held; a process that failed a publish releases it only once its producer is shut."""
        if not claim.in_doubt:
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
        claim.settled()
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
        if self.settings.ingest_workers > 1:  # which of the processes on the port answered
            details["worker"] = self.settings.ingest_worker
        if not self.publisher.healthy:
            details["producer_error"] = self.publisher.last_error
        return details

    def metrics_registry(self) -> CollectorRegistry:
        self.metrics.ledger_size.set(len(self.ledger))
        return self.metrics.collect()


def ingest_state(request: Request) -> IngestState:
    st: IngestState = request.app.state.ingest
    return st


async def state(request: Request) -> IngestState:
    """:func:`ingest_state` as a FastAPI dependency (async, so it skips the threadpool)."""
    return ingest_state(request)
