"""`truce rebuild` forgets the stream worker's and the store's committed offsets on the
stack's own broker, which it has just started for that."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from core.kafka import admin_client, ensure_topics
from core.settings import Settings
from services.rebuild import _delete_groups
from services.runtime import broker
from tests.conftest import isolated_settings

pytestmark = pytest.mark.integration


def test_groups_are_deleted_on_a_broker_that_has_just_started(tmp_path: Path) -> None:
    """Right after a start the broker answers ListGroups without the groups it has not
    loaded yet; a rebuild that deleted only the listed groups kept the old offsets and
    replayed nothing."""
    settings = isolated_settings(tmp_path / "home")
    bootstrap = settings.bootstrap_servers
    process = broker.start(settings)
    try:
        ensure_topics(bootstrap, ["reports"], partitions=2)
        admin = admin_client(bootstrap, timeout_ms=30_000)
        try:
            _delete_groups(admin, ["replayer"], 10.0)  # waits for the group coordinator
            committed = {TopicPartition("reports", 0): OffsetAndMetadata(0, "", -1)}
            admin.alter_group_offsets("replayer", committed)
            assert admin.list_group_offsets("replayer")["replayer"]
        finally:
            admin.close()
    finally:
        broker.stop(process.pid)
    process = broker.start(settings)
    try:
        admin = admin_client(bootstrap, timeout_ms=30_000)
        try:
            _delete_groups(admin, ["replayer", "never-used"], 10.0)
            assert not admin.list_group_offsets("replayer").get("replayer")
        finally:
            admin.close()
    finally:
        broker.stop(process.pid)


MEMBER = """
import sys
from kafka import KafkaConsumer
consumer = KafkaConsumer(sys.argv[2], bootstrap_servers=sys.argv[1], group_id=sys.argv[3],
                         session_timeout_ms=6000, heartbeat_interval_ms=1000)
while not consumer.assignment():
    consumer.poll(timeout_ms=500)
consumer.commit()
print("joined", flush=True)
sys.stdin.read()
"""


def test_a_killed_members_group_is_deleted_once_its_session_expires(
    broker_settings: Settings,
) -> None:
    """A worker killed (or stopped without leaving its group) stays a member until its
    session times out; the rebuild ran right after stopping the stack and failed with
    NonEmptyGroupError (CI, test_rebuild_on_the_stacks_own_broker)."""
    bootstrap = broker_settings.bootstrap_servers
    topic, group = f"stale-{uuid.uuid4().hex[:8]}", f"stale-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], partitions=2)
    member = subprocess.Popen(
        [sys.executable, "-c", MEMBER, bootstrap, topic, group],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert member.stdout is not None
        assert member.stdout.readline().strip() == "joined"
    finally:
        member.send_signal(signal.SIGKILL)  # no LeaveGroup
        member.wait(timeout=10)
    admin = admin_client(bootstrap, timeout_ms=30_000)
    try:
        _delete_groups(admin, [group], 6.0)
        assert not admin.list_group_offsets(group).get(group)
    finally:
        admin.close()
