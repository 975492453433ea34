"""`truce up --detach`, `status --json`, `down` in a temporary TRUCE_HOME (CONTRACT section 5)."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.keys import KeyStore, Role
from core.settings import Settings
from services.verify import operator_key
from tests.conftest import isolated_settings, settings_env
from tests.support.scenario import partner_reports

pytestmark = pytest.mark.integration


def truce(
    env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_up_status_down_in_fresh_home(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "home")
    env = settings_env(settings)
    try:
        started = truce(env, "up", "--detach")
        assert started.returncode == 0, started.stderr
        assert settings.ingest_url in started.stdout

        status = truce(env, "status", "--json")
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["ready"] is True
        assert info["kafka_bootstrap"] == f"127.0.0.1:{settings.kafka_port}"
        assert info["ingest_url"] == settings.ingest_url
        assert info["query_url"] == settings.query_url
        assert info["clickhouse_url"] == f"chdb://{settings.home}/clickhouse"
        assert info["processes"]["kafka"]["ready"] is True
        # issue 16: the Kafka log, ClickHouse's data and logs, keys: the owner's alone
        opened = {
            str(p): oct(p.lstat().st_mode & 0o777)
            for p in [settings.home, *settings.home.rglob("*")]
            if not p.is_symlink() and p.lstat().st_mode & 0o077
        }
        assert not opened, opened
        assert (settings.kafka_data_dir).is_dir()
        assert any(settings.logs_dir.iterdir())

        again = truce(env, "up", "--detach")
        assert again.returncode == 1
        assert "already running" in again.stderr
    finally:
        stopped = truce(env, "down")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert (settings.logs_dir / "kafka-server.log").exists()

    twice = truce(env, "down")
    assert twice.returncode == 0
    assert "not running" in twice.stdout
    after = json.loads(truce(env, "status", "--json").stdout)
    assert after["ready"] is False
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", settings.kafka_port))  # the broker released its port


def test_up_detach_fails_with_reason_when_port_taken(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = isolated_settings(tmp_path / "home", kafka_port=port)
        result = truce(settings_env(settings), "up", "--detach", timeout=120)
    assert result.returncode == 1
    assert f"port 127.0.0.1:{port} is already in use" in result.stderr
    assert "hint: stop what listens there or set TRUCE_KAFKA_PORT" in result.stderr


def test_foreground_up_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    import signal
    import time

    settings = isolated_settings(tmp_path / "home")
    env = {**os.environ, **settings_env(settings)}
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and not ready:
            status = truce(settings_env(settings), "status", "--json")
            ready = status.returncode == 0 and json.loads(status.stdout)["ready"]
            time.sleep(0.5)
        assert ready
        kafka_pid = json.loads(truce(settings_env(settings), "status", "--json").stdout)[
            "processes"
        ]["kafka"]["pid"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=90) == 0
    finally:
        if process.poll() is None:
            process.kill()
    from services.runtime.supervisor import pid_alive

    assert not pid_alive(int(kafka_pid))
    assert "Kafka Server started" in (settings.logs_dir / "kafka-server.log").read_text()
    assert "shut down completely" in (settings.logs_dir / "kafka-server.log").read_text()


def test_supervisor_restarts_a_crashed_process(tmp_path: Path) -> None:
    import signal
    import time

    settings = isolated_settings(tmp_path / "home")
    env = settings_env(settings)
    try:
        assert truce(env, "up", "--detach").returncode == 0
        before = json.loads(truce(env, "status", "--json").stdout)["processes"]["ingest"]
        os.kill(int(before["pid"]), signal.SIGKILL)
        deadline = time.monotonic() + 90
        after = before
        while time.monotonic() < deadline:
            after = json.loads(truce(env, "status", "--json").stdout)["processes"]["ingest"]
            if after["restarts"] == 1 and after["ready"]:
                break
            time.sleep(1)
        assert after["restarts"] == 1
        assert after["ready"] is True
        assert after["pid"] != before["pid"]
    finally:
        assert truce(env, "down").returncode == 0


def test_rebuild_on_the_stacks_own_broker(tmp_path: Path) -> None:
    """The embedded default: the broker is one of the stack's processes, so it is down
    whenever the stack is, and rebuild must run it itself for its topic changes. Two
    stream workers share the partitions and the state directory, before and after."""
    settings = isolated_settings(tmp_path / "home", streams_workers=2, log_head_interval_s=1.0)
    env = settings_env(settings)
    partner = KeyStore(settings).create("sarc-1", Role.PARTNER, "sarc")
    reports = partner_reports(random.Random(11), 40, "rb")
    try:
        started = truce(env, "up", "--detach")
        assert started.returncode == 0, started.stderr
        posted = httpx.post(
            f"{settings.ingest_url}/v1/reports/batch", json={"reports": reports},
            headers={"Authorization": f"Bearer {partner}"}, timeout=60,
        )  # fmt: skip
        assert posted.status_code == 202, posted.text
        head = _head_over(settings, posted.json()["accepted"])  # signed within a second
        rebuilt = truce(env, "rebuild", timeout=600)
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        accepted = posted.json()["accepted"]
        assert accepted > 0
        assert f"replayed {accepted} report revisions" in rebuilt.stdout
        status = json.loads(truce(env, "status", "--json").stdout)
        assert status["ready"] is True  # it was running before, so it runs again
        assert status["processes"]["streams-2"]["ready"] is True
        assert "the log's signed tree head from before the rebuild is reproduced" in rebuilt.stdout
        assert _head_over(settings, head["tree_size"]) == head  # nothing new: the same head
    finally:
        stopped = truce(env, "down")
    assert stopped.returncode == 0, stopped.stderr


def _head_over(settings: Settings, leaves: int, timeout_s: float = 60) -> dict[str, Any]:
    """The store's signed tree head once it covers ``leaves`` leaves."""
    headers = {"Authorization": f"Bearer {operator_key(settings)}"}
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(f"{settings.query_url}/v1/log/head", headers=headers, timeout=10)
        if answer.status_code == 200 and answer.json()["tree_size"] >= leaves:
            head: dict[str, Any] = answer.json()
            return head
        assert time.monotonic() < deadline, f"no head over {leaves} leaves: {answer.text}"
        time.sleep(0.5)
