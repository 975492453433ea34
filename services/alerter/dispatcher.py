"""From alerts to notifications: routing, silences, Alertmanager-style grouping, and one
delivery queue per receiver with retries (exponential backoff, full jitter) and a
dead-letter record after the last attempt.

Each receiver has its own queue and task, so a slow or failing receiver only delays
itself. Every piece of work carries the alerts records it covers; a record's offset
becomes committable only when all its receivers are done (see ``offsets``). Runs on the
alerter's event loop; nothing here is thread-safe, nothing here blocks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from core.settings import Settings
from schemas import Alert, AlertDelivery
from services.alerter.channels import AnyReceiver, DeliveryFailed, send
from services.alerter.config import ConfigSource, Route, RoutingConfig, Timing
from services.alerter.history import MsgType
from services.alerter.labels import alert_labels
from services.alerter.ledger import DeliveryLedger
from services.alerter.notification import Item, Notification
from services.alerter.offsets import OffsetTracker, RecordRef
from services.alerter.silences import SilenceBook
from services.alerter.telemetry import AlerterMetrics

log = structlog.get_logger("alerter.dispatch")

Publish = Callable[[AlertDelivery], None]


def targets(config: RoutingConfig, labels: dict[str, str]) -> list[tuple[int, Route, str]]:
    """(route index, route, receiver) for every receiver the alert goes to, each once:
    routes in order, the first match ends the walk unless it says ``continue``."""
    found: list[tuple[int, Route, str]] = []
    seen: set[str] = set()
    for index, route in enumerate(config.routes):
        if not route.matches(labels):
            continue
        for receiver in route.receivers:
            if receiver not in seen:
                seen.add(receiver)
                found.append((index, route, receiver))
        if not route.continue_:
            break
    return found


@dataclass
class Group:
    """Alerts of one receiver and one ``group_by`` value set, and their timers."""

    receiver: str
    labels: dict[str, str]
    timing: Timing
    pending: dict[str, tuple[Alert, list[RecordRef]]] = field(default_factory=dict)
    firing: dict[str, Alert] = field(default_factory=dict)
    flushed_at: float | None = None
    flush_handle: asyncio.TimerHandle | None = None
    repeat_handle: asyncio.TimerHandle | None = None

    def add(self, alert: Alert, ref: RecordRef) -> float | None:
        """Queue ``alert``; returns the delay of a flush to schedule (None: one is)."""
        before = self.pending.get(alert.fingerprint)
        refs = [*before[1], ref] if before else [ref]
        keep = alert if before is None or alert.version >= before[0].version else before[0]
        self.pending[alert.fingerprint] = (keep, refs)
        if self.flush_handle is not None:
            return None
        if self.flushed_at is None:
            return self.timing.group_wait.total_seconds()
        due = self.flushed_at + self.timing.group_interval.total_seconds()
        return max(0.0, due - time.monotonic())


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        config: ConfigSource,
        silences: SilenceBook,
        ledger: DeliveryLedger,
        tracker: OffsetTracker,
        publish: Publish,
        metrics: AlerterMetrics,
        client: httpx.AsyncClient,
    ) -> None:
        self.settings = settings
        self.config = config
        self.silences = silences
        self.ledger = ledger
        self.tracker = tracker
        self.publish = publish
        self.metrics = metrics
        self.client = client
        self.groups: dict[tuple[str, int, tuple[str, ...]], Group] = {}
        self.queues: dict[str, asyncio.Queue[Notification]] = {}
        self.tasks: list[asyncio.Task[None]] = []

    # -- intake -----------------------------------------------------------------------------
    def submit(self, alert: Alert, ref: RecordRef) -> None:
        """Route one consumed alert; the record counts as pending for each receiver."""
        config = self.config.current(time.monotonic())
        self.metrics.config_reload_failures.set(self.config.reload_failures)
        labels = alert_labels(alert)
        work = [
            t for t in targets(config, labels)
            if not self.ledger.handled(t[2], alert.fingerprint, alert.version)
        ]  # fmt: skip
        self.tracker.add(ref, len(work))
        now = datetime.now(UTC)
        for index, route, receiver in work:
            told = self.ledger.last_told(receiver, alert.fingerprint)
            if (
                alert.state == "resolved"
                and told != "firing"
                and not self._pending(receiver, alert.fingerprint)
            ):
                self.tracker.done([ref])  # nothing was said, so there is nothing to cancel
                continue
            silence = self.silences.silencing(labels, now)
            if silence is not None:
                self._silenced(receiver, alert, told, silence.silence_id)
                self.tracker.done([ref])
                continue
            timing = route.timing(config.defaults)
            key = (receiver, index, tuple(labels[name] for name in timing.group_by))
            group = self.groups.get(key)
            if group is None:
                group_labels: dict[str, str] = {n: labels[n] for n in timing.group_by}
                group = self.groups[key] = Group(receiver, group_labels, timing)
            delay = group.add(alert, ref)
            if delay is not None:
                loop = asyncio.get_running_loop()
                group.flush_handle = loop.call_later(delay, self._flush, group)

    def _pending(self, receiver: str, fingerprint: str) -> bool:
        return any(
            g.receiver == receiver and fingerprint in g.pending for g in self.groups.values()
        )

    def _silenced(self, receiver: str, alert: Alert, told: str | None, silence_id: str) -> None:
        msg_type: MsgType = (
            "Cancel" if alert.state == "resolved" else "Update" if told == "firing" else "Alert"
        )
        item = Item(alert, msg_type)
        notification = Notification(receiver, {}, [item])
        self._record(notification, "silenced", 0, 0, f"silence {silence_id}")
        self.metrics.silenced.labels(receiver).inc()

    # -- grouping ---------------------------------------------------------------------------
    def _flush(self, group: Group) -> None:
        group.flush_handle = None
        items: list[Item] = []
        refs: list[RecordRef] = []
        for fingerprint, (alert, alert_refs) in group.pending.items():
            refs.extend(alert_refs)
            told = self.ledger.last_told(group.receiver, fingerprint)
            if alert.state == "resolved":
                group.firing.pop(fingerprint, None)
                if told != "firing":
                    continue  # fired and resolved within the wait: nothing to say
                items.append(Item(alert, "Cancel"))
            else:
                group.firing[fingerprint] = alert
                items.append(Item(alert, "Update" if told == "firing" else "Alert"))
            self.ledger.tell(group.receiver, fingerprint, alert.state)
        group.pending.clear()
        group.flushed_at = time.monotonic()
        if items:
            self._enqueue(Notification(group.receiver, group.labels, items, refs))
        else:
            self.tracker.done(refs)
        self._schedule_repeat(group)

    def _schedule_repeat(self, group: Group) -> None:
        if group.repeat_handle is not None:
            group.repeat_handle.cancel()
            group.repeat_handle = None
        if group.firing:
            delay = group.timing.repeat_interval.total_seconds()
            loop = asyncio.get_running_loop()
            group.repeat_handle = loop.call_later(delay, self._repeat, group)

    def _repeat(self, group: Group) -> None:
        """Remind about a group still firing and unchanged. The repeat number is the
        wall-clock slot, so a reminder after a restart is not mistaken for a duplicate."""
        group.repeat_handle = None
        if not group.firing or group.pending:
            return
        slot = int(time.time() // max(1.0, group.timing.repeat_interval.total_seconds()))
        items = [Item(alert, "Update") for alert in group.firing.values()]
        self._enqueue(Notification(group.receiver, group.labels, items, repeat=slot))
        self._schedule_repeat(group)

    # -- delivery ---------------------------------------------------------------------------
    def _enqueue(self, notification: Notification) -> None:
        notification.enqueued_at = time.monotonic()
        queue = self.queues.get(notification.receiver)
        if queue is None:
            queue = self.queues[notification.receiver] = asyncio.Queue()
            self.tasks.append(asyncio.create_task(self._worker(notification.receiver, queue)))
        queue.put_nowait(notification)
        self.metrics.queued.labels(notification.receiver).set(queue.qsize())

    async def _worker(self, receiver: str, queue: asyncio.Queue[Notification]) -> None:
        while True:
            notification = await queue.get()
            self.metrics.queued.labels(receiver).set(queue.qsize())
            try:
                await self._deliver(notification)
            except asyncio.CancelledError:
                raise  # shutting down: not committed, so delivered after the restart
            except Exception:
                log.exception("delivery crashed; dead-lettering", receiver=receiver)
                self._record(notification, "dead_lettered", 0, 0, "internal error")
                self.tracker.done(notification.refs)

    async def _deliver(self, notification: Notification) -> None:
        name = notification.receiver
        config = self.config.current(time.monotonic())
        try:
            receiver = config.receiver(name)
        except KeyError:
            self._record(notification, "dead_lettered", 0, 0, "receiver no longer configured")
            self.metrics.dead_lettered.labels(name).inc()
            self.tracker.done(notification.refs)
            return
        policy = config.retry_for(name)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_attempts),
            wait=wait_random_exponential(
                multiplier=policy.initial_backoff.total_seconds(),
                max=policy.max_backoff.total_seconds(),
            ),
            retry=retry_if_exception(lambda e: isinstance(e, DeliveryFailed) and e.retryable),
            reraise=True,
        )
        number = 0
        try:
            async for attempt in retrying:
                with attempt:
                    number = attempt.retry_state.attempt_number
                    status = await self._attempt(receiver, notification, number)
        except DeliveryFailed as exc:
            self._record(notification, "dead_lettered", number, exc.status, str(exc))
            self.metrics.dead_lettered.labels(name).inc()
            log.error("notification dead-lettered", receiver=name, key=notification.key)
        else:
            self._record(notification, "delivered", number, status, "")
            log.info("notification delivered", receiver=name, key=notification.key,
                     attempt=number, alerts=len(notification.items))  # fmt: skip
            self.metrics.sent.labels(name).inc()
            self.metrics.seconds.labels(name).observe(time.monotonic() - notification.enqueued_at)
        self.tracker.done(notification.refs)

    async def _attempt(self, receiver: AnyReceiver, notification: Notification, number: int) -> int:
        name = notification.receiver
        if number > 1:
            self.metrics.retried.labels(name).inc()
        try:
            return await send(receiver, notification, number, self.client, self.settings)
        except DeliveryFailed as exc:
            self.metrics.failed.labels(name).inc()
            self._record(notification, "failed", number, exc.status, str(exc))
            log.warning("delivery failed", receiver=name, attempt=number, error=str(exc))
            raise

    def _record(
        self, notification: Notification, outcome: str, attempt: int, status: int, error: str
    ) -> None:
        config = self.config.current(time.monotonic())
        try:
            channel: str = config.receiver(notification.receiver).kind
        except KeyError:
            channel = "unknown"
        at = datetime.now(UTC)
        for item in notification.items:
            self.publish(
                AlertDelivery.model_validate(
                    {
                        "delivery_id": notification.key,
                        "receiver": notification.receiver,
                        "channel": channel,
                        "fingerprint": item.alert.fingerprint,
                        "alert_version": item.alert.version,
                        "alert_state": item.alert.state,
                        "msg_type": item.msg_type,
                        "outcome": outcome,
                        "attempt": attempt,
                        "status_code": status,
                        "error": error[:1000],
                        "at": at,
                    }
                )
            )

    async def close(self) -> None:
        for group in self.groups.values():
            for handle in (group.flush_handle, group.repeat_handle):
                if handle is not None:
                    handle.cancel()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
