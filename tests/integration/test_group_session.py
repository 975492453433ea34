"""Our kafka-python consumer groups (store sink, alerter) hand a killed member's
partitions on within seconds: kafka-python's default session of 45 s left the store
without fresh figures for that long after every crash (the chaos soak)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import pytest

from core.kafka import GROUP_SESSION_TIMEOUT_S, ensure_topics, group_consumer
from core.settings import Settings

pytestmark = pytest.mark.integration

MEMBER = """
import sys
from core.kafka import group_consumer
consumer = group_consumer(sys.argv[1], sys.argv[2], group_id=sys.argv[3])
while not consumer.assignment():
    consumer.poll(timeout_ms=200)
print("joined", flush=True)
sys.stdin.read()
"""
BOUND_S = 30.0
"""Well above the session plus a rebalance, well below kafka-python's default 45 s."""


def test_a_killed_members_partitions_move_within_the_session(broker_settings: Settings) -> None:
    bootstrap = broker_settings.bootstrap_servers
    topic, group = f"sess-{uuid.uuid4().hex[:8]}", f"sess-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions=2)
    member = subprocess.Popen(
        [sys.executable, "-c", MEMBER, bootstrap, topic, group],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert member.stdout is not None
        assert member.stdout.readline().strip() == "joined"
    finally:
        member.send_signal(signal.SIGKILL)
        member.wait(timeout=10)
    killed = time.monotonic()
    successor = group_consumer(bootstrap, topic, group_id=group)
    try:
        while not successor.assignment():
            assert time.monotonic() - killed < BOUND_S, "the dead member kept its partitions"
            successor.poll(timeout_ms=200)
        took = time.monotonic() - killed
    finally:
        successor.close()
    print(f"partitions moved {took:.1f} s after the kill (session {GROUP_SESSION_TIMEOUT_S} s)")
