"""`truce up --detach`, `down` and `status` seen from outside the supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from core.errors import ProcessError
from core.kafka import consumer_lag
from core.kafka_access import kafka_access
from core.settings import Settings
from schemas import group_inputs
from services.runtime.broker import log_tail
from services.runtime.processes import process_specs
from services.runtime.supervisor import pid_alive, read_state, state_path
from services.runtime.topics import topic_mismatches


def supervisor_pid(settings: Settings) -> int | None:
    state = read_state(settings)
    if state is None:
        return None
    pid = int(state.get("supervisor_pid", 0))
    return pid if pid and pid_alive(pid) else None


def start_detached(
    settings: Settings, skip: Sequence[str] | None = None, streams_workers: int | None = None
) -> dict[str, Any]:
    """Start the supervisor in its own session and wait until it reports everything ready
    (every process but those in ``skip``; by default those the settings skip), with
    ``streams_workers`` stream workers (by default as many as the settings say)."""
    if supervisor_pid(settings) is not None:
        raise ProcessError(
            f"Truce is already running for {settings.home}", hint="`truce down` stops it"
        )
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    state_path(settings).unlink(missing_ok=True)
    log = settings.logs_dir / "supervisor.log"
    skipped = settings.skip_processes if skip is None else ",".join(skip)
    workers = settings.streams_workers if streams_workers is None else streams_workers
    env = {
        **os.environ,
        "TRUCE_HOME": str(settings.home),
        "TRUCE_SKIP_PROCESSES": skipped,
        "TRUCE_STREAMS_WORKERS": str(workers),
    }
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.runtime"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + settings.ready_timeout_s + settings.kafka_start_timeout_s
    while time.monotonic() < deadline:
        state = read_state(settings)
        if state and state.get("ready"):
            return state
        if process.poll() is not None:
            state = state or {}
            reason = state.get("error") or log_tail(log)
            hint = state.get("hint") or f"see {settings.logs_dir}"
            raise ProcessError(f"Truce did not start: {reason}", hint=hint)
        time.sleep(0.3)
    stop_stack(settings)
    raise ProcessError("Truce was not ready in time", hint=f"see {settings.logs_dir}")


def stop_stack(settings: Settings, timeout_s: float = 120.0) -> bool:
    """Stop the supervisor (which stops its children in order). False when nothing ran."""
    state = read_state(settings)
    if state is None:
        return False
    pid = int(state.get("supervisor_pid", 0))
    children = [int(p["pid"]) for p in state.get("processes", {}).values()]
    stopped_any = False
    if pid and pid_alive(pid):
        stopped_any = True
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    for child in children:  # a supervisor killed with -9 leaves its children behind
        if pid_alive(child):
            stopped_any = True
            os.kill(child, signal.SIGTERM)
            deadline = time.monotonic() + 60
            while pid_alive(child) and time.monotonic() < deadline:
                time.sleep(0.2)
            if pid_alive(child):
                os.kill(child, signal.SIGKILL)
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    state_path(settings).unlink(missing_ok=True)
    return stopped_any


def status(settings: Settings) -> dict[str, Any]:
    """CONTRACT section 5 fields plus each process, checked live."""
    state = read_state(settings) or {}
    running = supervisor_pid(settings) is not None
    processes: dict[str, Any] = {}
    for spec in process_specs(settings):
        info = state.get("processes", {}).get(spec.name, {})
        pid = info.get("pid")
        alive = bool(running and pid and pid_alive(int(pid)))
        processes[spec.name] = {
            "endpoint": spec.endpoint,
            "pid": pid if alive else None,
            "running": alive,
            "ready": alive and spec.ready(),
            "restarts": info.get("restarts", 0),
        }
    brokers = [p["ready"] for name, p in processes.items() if name.startswith("kafka")]
    kafka_ready = any(brokers) if brokers else running
    return {
        "ingest_url": settings.ingest_url,
        "query_url": settings.query_url,
        "kafka_bootstrap": settings.bootstrap_servers,
        "clickhouse_url": settings.clickhouse_url,
        "home": str(settings.home),
        "running": running,
        "ready": running and all(p["ready"] for p in processes.values()),
        "error": state.get("error"),
        "processes": processes,
        "lag": consumer_lags(settings) if running and kafka_ready else {},
        "replication": {
            "factor": settings.replication_factor,
            "min_insync": settings.min_insync_replicas,
            "mismatches": _mismatches(settings) if running and kafka_ready else [],
        },
    }


def _mismatches(settings: Settings) -> list[str]:
    """Existing topics whose replication differs from the settings (never fixed silently)."""
    try:
        return topic_mismatches(settings)
    except Exception as exc:  # the broker just went away: say so rather than "none"
        return [f"could not check the topics: {exc}"]


def consumer_lags(settings: Settings) -> dict[str, dict[str, int]]:
    """Records each consumer group has not committed yet, per topic."""
    lags: dict[str, dict[str, int]] = {}
    for name, (group, topics) in group_inputs(settings.topic_prefix).items():
        try:
            lags[name] = consumer_lag(kafka_access(settings), group, topics)
        except Exception:  # a group that never committed yet, or the broker just went away
            lags[name] = {}
    return lags


def wait_until_idle(
    settings: Settings,
    timeout_s: float,
    on_poll: Callable[[int], None] = lambda behind: None,
    settle_polls: int = 3,
    poll_s: float = 1.0,
    groups: Sequence[str] = ("streams", "store", "alerter"),
) -> None:
    """Return once every consumer group has committed everything on its topics (the
    metrics have caught up with what was accepted), seen on ``settle_polls`` polls in a
    row so a record still on its way between the two stages is not missed."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while True:
        lags = {group: lag for group, lag in consumer_lags(settings).items() if group in groups}
        behind = sum(sum(topics.values()) for topics in lags.values())
        complete = all(lags.get(group) for group in groups)
        on_poll(behind)
        quiet = quiet + 1 if complete and behind == 0 else 0
        if quiet >= settle_polls:
            return
        if time.monotonic() > deadline:
            raise ProcessError(
                f"the pipeline is still {behind} records behind after {timeout_s:.0f} s",
                hint=f"`truce status` shows the lag per topic; logs are in {settings.logs_dir}",
            )
        time.sleep(poll_s)
