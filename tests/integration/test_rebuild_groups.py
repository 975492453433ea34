"""`truce rebuild` forgets the stream worker's and the store's committed offsets on the
stack's own broker, which it has just started for that."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from core.kafka import admin_client, ensure_topics
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
            _delete_groups(admin, ["replayer"])  # waits for the group coordinator
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
            _delete_groups(admin, ["replayer", "never-used"])
            assert not admin.list_group_offsets("replayer").get("replayer")
        finally:
            admin.close()
    finally:
        broker.stop(process.pid)
