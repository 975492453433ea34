"""The supervisor starts the broker first and waits for it; the services after it start
together (a restart took the sum of their start-ups); on stop the services go together,
and the broker only after every one of them has exited."""

from __future__ import annotations

import time
from pathlib import Path

from core.settings import load_settings
from services.runtime.processes import ProcessSpec, process_specs
from services.runtime.supervisor import Supervisor, pid_alive

EVENTS: list[str] = []


def spec(name: str, gate: bool = False, ready_after_s: float = 0.0) -> ProcessSpec:
    started: list[float] = []

    def prepare() -> list[str]:
        EVENTS.append(f"spawn {name}")
        started.append(time.monotonic())
        return ["sleep", "60"]

    def ready() -> bool:
        if time.monotonic() - started[-1] < ready_after_s:
            return False
        EVENTS.append(f"ready {name}")
        return True

    return ProcessSpec(name, endpoint="-", prepare=prepare, ready=ready, gate=gate)


def test_the_services_start_together_once_the_broker_is_ready_and_stop_before_it(
    tmp_path: Path,
) -> None:
    EVENTS.clear()
    settings = load_settings(home=tmp_path)
    settings.logs_dir.mkdir(parents=True)
    settings.run_dir.mkdir(parents=True)
    supervisor = Supervisor(settings)
    supervisor.specs = [
        spec("kafka", gate=True, ready_after_s=0.5),
        spec("ingest", ready_after_s=1.0),
        spec("streams", ready_after_s=1.0),
        spec("store", ready_after_s=1.0),
    ]
    supervisor.start_all()
    assert EVENTS[:2] == ["spawn kafka", "ready kafka"]
    assert EVENTS[2:5] == ["spawn ingest", "spawn streams", "spawn store"]
    # every service was spawned before any of them was ready: their start-ups overlap
    assert sorted(EVENTS[5:]) == ["ready ingest", "ready store", "ready streams"]

    pids = {name: r.process.pid for name, r in supervisor.running.items()}
    broker = supervisor.running["kafka"].process
    gone_before_broker: list[str] = []
    original = supervisor._stop

    def watching(running: object) -> None:
        if running is supervisor.running["kafka"]:
            gone_before_broker.extend(n for n, p in pids.items() if not pid_alive(p))
        original(running)  # type: ignore[arg-type]

    supervisor._stop = watching  # type: ignore[method-assign]
    supervisor.stop_all()
    assert sorted(gone_before_broker) == ["ingest", "store", "streams"]
    assert broker.poll() is not None
    assert not any(pid_alive(pid) for pid in pids.values())


def test_several_stream_workers_each_have_a_port_and_are_skipped_together(
    tmp_path: Path,
) -> None:
    settings = load_settings(home=tmp_path, streams_port=18640, streams_workers=3)
    workers = [s for s in process_specs(settings) if s.name.startswith("streams")]
    assert [s.name for s in workers] == ["streams", "streams-2", "streams-3"]
    assert [s.env["TRUCE_STREAMS_PORT"] for s in workers] == ["18640", "18641", "18642"]
    assert [s.endpoint for s in workers] == [
        f"http://127.0.0.1:{port}" for port in (18640, 18641, 18642)
    ]
    assert not any(s.gate for s in workers)  # they start together
    skipped = load_settings(home=tmp_path, streams_workers=3, skip_processes="streams,alerter")
    assert [s.name for s in process_specs(skipped)] == ["kafka", "ingest", "store"]
    one = load_settings(home=tmp_path, streams_workers=2, skip_processes="streams-2")
    assert [s.name for s in process_specs(one) if s.name.startswith("streams")] == ["streams"]


def test_a_restart_that_fails_at_start_up_is_retried_until_ready_and_then_reported_ready(
    tmp_path: Path,
) -> None:
    """A service restarted while the broker is down exits during start-up; the next
    restart works, but the stack stayed "not ready" for good (the chaos soak: the alerter
    after a broker SIGKILL)."""
    settings = load_settings(home=tmp_path, ready_timeout_s=5)
    settings.logs_dir.mkdir(parents=True)
    settings.run_dir.mkdir(parents=True)
    attempts: list[int] = []

    def prepare() -> list[str]:
        attempts.append(1)
        # the first run crashes (the fault); the first restart fails at start-up
        return ["false"] if len(attempts) <= 2 else ["sleep", "60"]

    supervisor = Supervisor(settings)
    supervisor.specs = [ProcessSpec("alerter", "-", prepare, ready=lambda: len(attempts) > 2)]
    supervisor.running = {"alerter": supervisor._spawn(supervisor.specs[0])}
    supervisor.running["alerter"].process.wait(timeout=5)
    errors: list[str | None] = []
    deadline = time.monotonic() + 30
    while len(attempts) < 3 or supervisor.error is not None:
        assert time.monotonic() < deadline, (attempts, supervisor.error)
        supervisor._restart_crashed()  # the first restart exits during start-up
        errors.append(supervisor.error)
        time.sleep(0.05)
    assert len(attempts) == 3
    assert any(errors)
    assert supervisor.error is None
    supervisor.stop_all()


def test_a_restart_waiting_to_be_ready_does_not_hold_up_another(tmp_path: Path) -> None:
    """The soak: the broker SIGKILLed while the alerter was being restarted stayed down
    until the alerter's start-up had timed out (the supervisor waited on it)."""
    settings = load_settings(home=tmp_path, ready_timeout_s=60)
    settings.logs_dir.mkdir(parents=True)
    settings.run_dir.mkdir(parents=True)
    spawned: list[str] = []
    kafka_back: list[float] = []

    def spec_of(name: str, ready: bool) -> ProcessSpec:
        def prepare() -> list[str]:
            spawned.append(name)
            if name == "kafka" and spawned.count("kafka") == 2:
                kafka_back.append(time.monotonic())
            return ["sleep", "60"]

        return ProcessSpec(name, "-", prepare, ready=lambda: ready)

    supervisor = Supervisor(settings)
    supervisor.specs = [spec_of("alerter", False), spec_of("kafka", True)]
    supervisor.running = {s.name: supervisor._spawn(s) for s in supervisor.specs}
    for running in supervisor.running.values():
        running.process.kill()
        running.process.wait(timeout=5)
    killed = time.monotonic()
    while spawned.count("kafka") < 2:
        assert time.monotonic() - killed < 120, spawned
        supervisor._restart_crashed()
        time.sleep(0.05)
    assert kafka_back[0] - killed < 10  # not after the alerter's 60 s start-up timeout
    assert spawned.count("alerter") == 2  # restarted, and still not ready
    supervisor.stop_all()
