"""One supervisor per TRUCE_HOME: starts the processes in order, restarts crashed ones, stops
them in reverse order on SIGTERM/SIGINT, and publishes its state in ``run/state.json``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from core.errors import ProcessError, TruceError
from core.settings import Settings
from services.runtime.broker import log_tail, stop
from services.runtime.processes import ProcessSpec, process_specs

MAX_RESTARTS = 5
RESTART_WINDOW_S = 300.0
MAX_BACKOFF_S = 30.0
"""A process that keeps crashing is restarted this often, never given up on: a broker
outage makes services fail at start-up until it is back, and the stack must come back
by itself then."""


def state_path(settings: Settings) -> Path:
    return settings.run_dir / "state.json"


def read_state(settings: Settings) -> dict[str, Any] | None:
    """The state the running supervisor published, or None."""
    try:
        data: dict[str, Any] = json.loads(state_path(settings).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(FileNotFoundError, IndexError):
        # "pid (comm) S ...": a zombie (exited, not yet reaped by its parent) is gone
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # our own child (e.g. `truce demo`): reap it
            return False
    return True


@dataclass
class Running:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log: Path
    restarts: list[float]
    starting_since: float | None = None
    """Set while a restarted process has not passed its readiness probe yet."""
    restart_at: float | None = None
    """When a crashed process is due to be started again (its backoff)."""


class Supervisor:
    """Runs the stack in the foreground of the calling process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.specs = process_specs(settings)
        self.running: dict[str, Running] = {}
        self._stopping = False
        self._lock: TextIO | None = None
        self.errors: dict[str, str] = {}
        """Why each process (or "start-up") is not ready; cleared once it is."""
        self.hint: str = ""

    @property
    def error(self) -> str | None:
        return "\n".join(self.errors.values()) or None

    # -- state ---------------------------------------------------------------
    def _write_state(self, ready: bool) -> None:
        state = {
            "supervisor_pid": os.getpid(),
            "ready": ready,
            "error": self.error,
            "hint": self.hint,
            "processes": {
                name: {
                    "pid": r.process.pid,
                    "endpoint": r.spec.endpoint,
                    "log": str(r.log),
                    "restarts": len(r.restarts),
                }
                for name, r in self.running.items()
            },
        }
        path = state_path(self.settings)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(path)

    def _acquire_lock(self) -> None:
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.settings.run_dir / "supervisor.lock", "w")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise ProcessError(
                f"Truce is already running for {self.settings.home}",
                hint="`truce status` shows it; `truce down` stops it",
            ) from None
        self._lock = lock

    # -- processes -----------------------------------------------------------
    def _spawn(self, spec: ProcessSpec) -> Running:
        argv = spec.prepare()
        log = self.settings.logs_dir / f"{spec.name}.log"
        env = {**os.environ, **spec.env, "TRUCE_HOME": str(self.settings.home)}
        with open(log, "ab") as out:
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        return Running(spec, process, log, [])

    def _wait_ready(self, running: Running) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while time.monotonic() < deadline:
            if self._stopping:
                raise ProcessError("start-up interrupted")
            code = running.process.poll()
            if code is not None:
                raise ProcessError(
                    f"{running.spec.name} exited with code {code} during start-up\n"
                    + log_tail(running.log),
                    hint=f"see {running.log}",
                )
            if running.spec.ready():
                return
            time.sleep(0.3)
        raise ProcessError(
            f"{running.spec.name} was not ready within {self.settings.ready_timeout_s:.0f}s\n"
            + log_tail(running.log),
            hint=f"see {running.log}",
        )

    def start_all(self) -> None:
        """Start the processes in order; a gate (the broker) is waited for before the next
        starts, the others start together and are waited for at the end (a restart or
        `truce rebuild` took the sum of every process's start-up, not the longest)."""
        starting: list[Running] = []
        for spec in self.specs:
            running = self._spawn(spec)
            self.running[spec.name] = running
            self._write_state(ready=False)
            if spec.gate:
                self._wait_ready(running)
            else:
                starting.append(running)
        for running in starting:
            self._wait_ready(running)

    def stop_all(self) -> None:
        """Stop the processes that are not gates together, then the gates in reverse order."""
        every = list(self.running.values())
        together = [r for r in every if not r.spec.gate]
        with ThreadPoolExecutor(max_workers=max(1, len(together))) as pool:
            list(pool.map(self._stop, together))
        for running in reversed([r for r in every if r.spec.gate]):
            self._stop(running)

    @staticmethod
    def _stop(running: Running) -> None:
        stop(running.process.pid, running.spec.stop_timeout_s)
        with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
            running.process.wait(timeout=1)

    def _restart_crashed(self) -> None:
        """One pass over the processes, never blocking: a crashed one is started again once
        its backoff has passed, a restarted one is probed until ready. (Waiting for one
        restart to be ready held up every other: a broker SIGKILLed while the alerter was
        coming back stayed down until the alerter's start-up timed out.)"""
        changed = False
        for name, running in list(self.running.items()):
            if self._stopping:
                return
            now = time.monotonic()
            code = running.process.poll()
            if code is not None:
                changed |= self._crashed(name, running, code, now)
            elif running.starting_since is not None:
                changed |= self._probe_restart(name, running, now)
        if changed:
            self._write_state(ready=self.error is None)

    def _crashed(self, name: str, running: Running, code: int, now: float) -> bool:
        recent = [t for t in running.restarts if now - t < RESTART_WINDOW_S]
        if running.restart_at is None:
            running.restart_at = now + min(2 ** len(recent), MAX_BACKOFF_S)
            self.errors[name] = f"{name} exited with code {code}; restarting it"
            if len(recent) >= MAX_RESTARTS:
                self.errors[name] = (
                    f"{name} keeps crashing (exit {code}, {len(recent)} restarts in "
                    f"{RESTART_WINDOW_S:.0f} s); restarting it every {MAX_BACKOFF_S:.0f} s"
                )
            return True
        if now < running.restart_at:
            return False
        replacement = self._spawn(running.spec)
        replacement.restarts = [*recent, now]
        replacement.starting_since = now
        self.running[name] = replacement
        return True

    def _probe_restart(self, name: str, running: Running, now: float) -> bool:
        assert running.starting_since is not None
        if running.spec.ready():
            running.starting_since = None
            self.errors.pop(name, None)
            return True
        if now - running.starting_since > self.settings.ready_timeout_s:
            message = f"{name} was not ready within {self.settings.ready_timeout_s:.0f}s"
            if not self.errors.get(name, "").startswith(message):
                self.errors[name] = message + "\n" + log_tail(running.log)
                return True
        return False

    # -- lifecycle -----------------------------------------------------------
    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stopping = True

    def run(self, on_ready: Any = None) -> int:
        """Start everything, call ``on_ready``, supervise until signalled; return an exit code."""
        self._acquire_lock()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            try:
                self.start_all()
            except TruceError as exc:
                self.errors["start-up"], self.hint = str(exc), exc.hint
                self._write_state(ready=False)
                raise
            self._write_state(ready=True)
            if on_ready is not None:
                on_ready()
            while not self._stopping:
                self._restart_crashed()
                time.sleep(0.5)
            return 0
        finally:
            self.stop_all()
            if self.error is None:
                state_path(self.settings).unlink(missing_ok=True)
            else:
                self.running.clear()
                self._write_state(ready=False)
