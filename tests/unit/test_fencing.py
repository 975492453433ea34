"""The freeze watchdog: a gap in the clock longer than the limit is a freeze."""

from __future__ import annotations

import threading

from streams.fencing import FreezeWatchdog, freeze_limit


class SteppedClock:
    def __init__(self, steps: list[float]) -> None:
        self.steps, self.now = list(steps), 0.0

    def __call__(self) -> float:
        if self.steps:
            self.now += self.steps.pop(0)
        return self.now


def run(steps: list[float], limit_s: float) -> list[float]:
    gaps: list[float] = []
    done = threading.Event()
    clock = SteppedClock(steps)

    def frozen(gap: float) -> None:
        gaps.append(gap)

    watchdog = FreezeWatchdog(limit_s, tick_s=0.001, on_frozen=frozen, clock=clock)
    watchdog.start()
    while clock.steps:
        done.wait(0.01)
    watchdog.stopped.set()
    watchdog.join(timeout=5)
    return gaps


def test_regular_ticks_are_not_a_freeze() -> None:
    assert run([0.0] + [0.1] * 50 + [4.0], limit_s=4.5) == []


def test_a_gap_past_the_limit_is_reported_once() -> None:
    assert run([0.0, 0.1, 0.1, 7.0, 0.1, 0.1], limit_s=4.5) == [7.0]


def test_the_limit_is_under_the_session_timeout() -> None:
    assert 0 < freeze_limit(6.0) < 6.0
