"""Self-fencing of a stream worker that was frozen past its session timeout.

A frozen process (SIGSTOP, a paused VM, a machine swapping) misses its heartbeats; the
group coordinator gives its partitions to another worker. When it thaws it does not know
yet, and for a moment it goes on: it processes what it had fetched with state that is no
longer current and writes to the changelogs, which also moves the offsets its own RocksDB
says it has applied past the other worker's writes, so when it gets the partitions back it
skips them (seen: a report dropped from the weekly totals after a freeze and a failover).
Kafka cannot fence such a "zombie" without transactions, so the worker fences itself: a
thread that wakes every ``tick_s`` sees the gap in the monotonic clock a freeze leaves and
ends the process before the event loop writes anything. The supervisor starts it again,
and it restores its partitions from their changelogs."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("streams.fencing")

FROZEN_EXIT_CODE = 75
"""EX_TEMPFAIL: restart me."""
SESSION_SHARE = 0.75
"""A freeze of this share of the session timeout is treated as expulsion: by the time the
thawed worker could learn it from a failed heartbeat, it may have written already."""


def freeze_limit(session_timeout_s: float) -> float:
    return session_timeout_s * SESSION_SHARE


def _exit(gap_s: float) -> None:
    log.error(
        "this worker was frozen longer than its group session allows; its partitions "
        "belong to another worker now, so it exits before writing anything",
        frozen_s=round(gap_s, 1),
    )
    os._exit(FROZEN_EXIT_CODE)


class FreezeWatchdog(threading.Thread):
    """Calls ``on_frozen(gap)`` (by default: exits) when the process did not run for more
    than ``limit_s``."""

    def __init__(
        self,
        limit_s: float,
        tick_s: float = 0.1,
        on_frozen: Callable[[float], None] = _exit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name="freeze-watchdog", daemon=True)
        self.limit_s, self.tick_s = limit_s, tick_s
        self.on_frozen, self.clock = on_frozen, clock
        self.stopped = threading.Event()

    def run(self) -> None:
        last = self.clock()
        while not self.stopped.wait(self.tick_s):
            now = self.clock()
            if now - last > self.limit_s:
                self.on_frozen(now - last)
            last = now
