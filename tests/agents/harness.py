"""Drives the real agents of ``streams.app.create_app`` without Kafka.

``agent.test_context()`` feeds records through an in-memory channel; the agents' outboxes
deliver every output record and every table changelog record through a recording
transport instead of Kafka (and anything sent through the app producer's ``send_soon``
is recorded too). Tables use the in-memory store. A test waits for outputs instead of
sleeping: records are handled in order, so once a marker record's output is there,
everything put before it is handled.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import orjson

import streams.app
from core.settings import load_settings
from schemas import encode_envelope, make_envelope, parse_report, parties, topic_names
from streams.logic.packing import unpack
from streams.outbox import Records

TIMEOUT_S = 5.0
POLL_S = 0.005
PREFIX = "t."
RECEIVED_AT = datetime(2016, 3, 1, tzinfo=UTC)
RECEIVED_TEXT = "2016-03-01T00:00:00Z"  # RECEIVED_AT as the envelope stores it
DESIGNATED = {code for code, party in parties().items() if party.designated}


class AgentCrashed(RuntimeError):
    """Raised instead of ``os._exit`` when an agent hits an unexpected error."""


@dataclass(frozen=True)
class Sent:
    """One record handed to the producer."""

    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None

    @property
    def key_text(self) -> str:
        return (self.key or b"").decode()

    @property
    def data(self) -> Any:
        return orjson.loads(self.value or b"null")


@dataclass
class Recorder:
    """The outbox transport of the tests: records what would be written to Kafka."""

    sent: list[Sent]

    async def deliver(self, topic: str, partition: int | None, records: Records) -> int | None:
        self.sent.extend(Sent(topic, partition, key, value) for key, value in records)
        return None


@dataclass
class Harness:
    """One app (fresh tables) and everything it sent."""

    app: faust.App
    sent: list[Sent] = field(default_factory=list)
    crashes: list[BaseException] = field(default_factory=list)
    _markers: itertools.count[int] = field(default_factory=itertools.count)
    _verdicts_fed: int = 0

    def __post_init__(self) -> None:
        self.names = topic_names(PREFIX)
        self.app.producer.send_soon = self._record  # type: ignore[method-assign]

    def _record(self, fut: Any) -> Any:
        message = fut.message
        topic = message.channel.get_topic_name()
        self.sent.append(Sent(topic, message.partition, message.key, message.value))
        return fut

    # -- what was sent ----------------------------------------------------------
    def on(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]

    def folded(self) -> list[Sent]:
        """Stage one's placements, one per report, unpacked from the folded records."""
        return [
            Sent(s.topic, s.partition, s.key, orjson.dumps(placement))
            for s in self.folded_records()
            for placement in unpack(s.data)
        ]

    def folded_records(self) -> list[Sent]:
        """The folded records as sent (packs of placements)."""
        return self.on(self.names.folded)

    def deadletters(self) -> list[dict[str, Any]]:
        """Dead letters, without the markers' own."""
        return [
            s.data for s in self.on(self.names.deadletter) if not s.key_text.startswith("~marker")
        ]

    def events(self, report_id: str) -> list[dict[str, Any]]:
        return [s.data for s in self.on(self.names.events) if s.key_text == report_id]

    def metrics(self, key: str) -> list[dict[str, Any]]:
        return [s.data for s in self.on(self.names.metrics) if s.key_text == key]

    def latest_metrics(self) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for sent in self.on(self.names.metrics):
            latest[sent.key_text] = sent.data
        return latest

    def changelog(self, table: str) -> list[Sent]:
        return self.on(f"{self.app.conf.id}-{table}-changelog")

    # -- waiting ------------------------------------------------------------------
    async def wait_for(self, ready: Callable[[], bool], what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT_S
        while not ready():
            if self.crashes:
                raise AssertionError(f"agent crashed while waiting for {what}") from self.crashes[0]
            if loop.time() > deadline:
                sent = "\n".join(f"  {s.topic} {s.key!r} {s.value!r}" for s in self.sent)
                raise AssertionError(f"timed out waiting for {what}; sent:\n{sent}")
            await asyncio.sleep(POLL_S)
        if self.crashes:
            raise AssertionError("agent crashed") from self.crashes[0]

    async def settle_fold(self, agent: Any) -> None:
        """Put an undecodable marker record and wait for its dead letter; then hand the
        verdicts the agent sent back to it on the verdicts topic (as Kafka would) and
        settle again, until no new verdict comes out."""
        while True:
            key = f"~marker-{next(self._markers)}"
            await agent.put(b"\x00 marker", key=key.encode())
            await self.wait_for(
                lambda key=key: any(s.key_text == key for s in self.on(self.names.deadletter)),
                f"the dead letter of {key}",
            )
            fresh = self.on(self.names.verdicts)[self._verdicts_fed :]
            if not fresh:
                return
            self._verdicts_fed += len(fresh)
            for sent in fresh:
                await put_on(agent, self.names.verdicts, sent.key, sent.value)


Scenario = Callable[[Harness, Any], Awaitable[None]]


def build_app(home: Path, recorder: Recorder) -> faust.App:
    settings = load_settings(home=home, topic_prefix=PREFIX, kafka_partitions=1)
    app = streams.app.create_app(settings, recorder)
    # Tables create their store on first use, so the store can still be swapped here.
    app.conf.store = "memory://"
    return app


async def put_on(agent: Any, topic: str, key: bytes | None, value: bytes | None) -> None:
    """``agent.put`` for a record of one named topic of an agent reading several (faust's
    test wrapper names none of them)."""
    message = agent.to_message(key, value, offset=agent.sent_offset)
    message.topic = topic
    channel = agent.stream().channel
    await channel.put(await channel.decode(message))
    agent.sent_offset += 1


def agent_of(app: faust.App, name: str) -> Any:
    return next(agent for agent in app.agents.values() if agent.name.endswith(f".{name}"))


def run_agent(
    home: Path,
    crashes: list[BaseException],
    name: str,
    scenario: Scenario,
) -> Harness:
    """Start agent ``name`` of a fresh app in a test context and run ``scenario`` on it."""

    async def main() -> Harness:
        sent: list[Sent] = []
        harness = Harness(build_app(home, Recorder(sent)), sent=sent, crashes=crashes)
        async with agent_of(harness.app, name).test_context() as agent:
            await asyncio.wait_for(scenario(harness, agent), TIMEOUT_S * 4)
        return harness

    return asyncio.run(main())


def crash_recorder(crashes: list[BaseException]) -> Callable[[str], None]:
    """Replacement of ``streams.app._crash``: record the error and stop the agent."""

    def crash(where: str) -> None:
        error = sys.exc_info()[1]
        crashes.append(error if error is not None else AgentCrashed(where))
        raise AgentCrashed(where) from error

    return crash


# -- reports -------------------------------------------------------------------------
WHEN = "2016-02-27T10:00:00Z"  # ISO week 2016-W08
WEEK = "2016-W08"


def violation(rid: str, revision: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "report_id": rid,
        "revision": revision,
        "kind": "violation",
        "occurred_at": WHEN,
        "area": "madaya",
        "perpetrator": "gos",
        "target": "civilians",
        "category": "shelling",
        "source": "witness",
        "confidence": "high",
        **fields,
    }


def verification(rid: str, subject: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "report_id": rid,
        "kind": "verification",
        "occurred_at": WHEN,
        "subject": subject,
        "status": status,
        **fields,
    }


def designation(rid: str, area: str, party: str, **fields: Any) -> dict[str, Any]:
    return {
        "report_id": rid,
        "kind": "designation",
        "occurred_at": "2016-02-20T00:00:00Z",
        "area": area,
        "party": party,
        **fields,
    }


def delivery(rid: str, **fields: Any) -> dict[str, Any]:
    return {
        "report_id": rid,
        "kind": "delivery",
        "occurred_at": WHEN,
        "area": "madaya",
        "agency": "WFP",
        "modality": "convoy",
        "status": "completed",
        "beneficiaries": 100,
        **fields,
    }


def envelope(report: dict[str, Any], org: str = "sarc") -> bytes:
    """The reports-topic record ingest would write for ``report``."""
    model = make_envelope(
        parse_report(report), org=org, key_name=f"{org}-key", received_at=RECEIVED_AT
    )
    return encode_envelope(model)


def stored(report: dict[str, Any]) -> dict[str, Any]:
    """``report`` as an envelope stores it (validated, defaults filled in, UTC)."""
    result: dict[str, Any] = orjson.loads(envelope(report))["report"]
    return result


def folded(
    report: dict[str, Any],
    *,
    seq: int = 1,
    org: str = "sarc",
    verification: str = "unverified",
    removed_from: str | None = None,
) -> bytes:
    """The folded record stage one sends for ``report``: its placement in its area, or
    with ``removed_from`` the removal from an area it left."""
    body = stored(report)
    return orjson.dumps(
        {
            "report_id": body["report_id"],
            "seq": seq,
            "kind": body["kind"],
            "org": org,
            "revision": body["revision"],
            "received_at": RECEIVED_TEXT,
            "verification": verification,
            "area": removed_from or body["area"],
            "removed": removed_from is not None,
            "report": None if removed_from else body,
        }
    )
