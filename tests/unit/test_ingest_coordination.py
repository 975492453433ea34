"""The claims ingest processes share (services/ingest/coordination.py), on a real SQLite
file: another live process's claim makes a request wait, a dead one's leaves its ids in
doubt, and accepts are kept until every live reader has read them back from the log."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from services.ingest.coordination import ClaimTimeout, Coordination, process_identity
from services.ingest.ledger import Entry, Ledger, Receipt, Verdict

HASH = "ab" * 32


def _other_process(path: Path, holder: str) -> Coordination:
    """A second process's view of the file (one test process plays both)."""
    other = Coordination(path, Ledger())
    other.holder = holder
    return other


def _entry(report_id: str, offset: int) -> Entry:
    return Entry(report_id, 1, HASH, "sarc", Receipt(b"\x01" * 32, 0, offset))


def test_an_accept_by_another_process_is_known_on_claiming_its_id(tmp_path: Path) -> None:
    mine = Coordination(tmp_path / "c.sqlite", Ledger())
    sibling = _other_process(tmp_path / "c.sqlite", process_identity(1) or "1:0")

    async def run() -> None:
        async with sibling.claim({"r-1"}, 1.0) as claim:
            claim.accepted.append(_entry("r-1", 4))
        async with mine.claim({"r-1", "r-2"}, 1.0) as claim:
            assert claim.in_doubt == set()
        assert mine.ledger.judge("r-1", 1, HASH, "sarc") is Verdict.DUPLICATE
        assert mine.ledger.receipt("r-1", 1) == Receipt(b"\x01" * 32, 0, 4)

    asyncio.run(run())


def test_a_live_holder_makes_others_wait_and_a_dead_ones_ids_are_in_doubt(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.sqlite"
    mine = Coordination(path, Ledger())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = process_identity(child.pid)
        assert holder is not None
        alive = _other_process(path, holder)

        async def hold_then_try() -> None:
            async with alive.claim({"r-1"}, 1.0):
                with pytest.raises(ClaimTimeout):
                    async with mine.claim({"r-1"}, 0.2):
                        pass

        asyncio.run(hold_then_try())

        # the holder dies with the claim still held (its release never ran): simulate by
        # claiming again and killing it before the release
        async def claim_and_die() -> None:
            context = alive.claim({"r-2"}, 1.0)
            await context.__aenter__()
            child.kill()
            child.wait()
            async with mine.claim({"r-2", "r-3"}, 1.0) as claim:
                assert claim.in_doubt == {"r-2"}  # it may have been publishing r-2
                claim.settled()
            async with mine.claim({"r-2"}, 1.0) as claim:
                assert claim.in_doubt == set()  # settled by the log, no doubt left

        asyncio.run(claim_and_die())
    finally:
        child.kill()


def test_a_failed_publish_leaves_its_ids_in_doubt_for_the_next_sender(tmp_path: Path) -> None:
    mine = Coordination(tmp_path / "c.sqlite", Ledger())
    sibling = _other_process(tmp_path / "c.sqlite", mine.holder)

    async def run() -> None:
        async with mine.claim({"r-1", "r-2"}, 1.0) as claim:
            claim.failed({"r-1"})
        async with sibling.claim({"r-1", "r-2"}, 1.0) as claim:
            assert claim.in_doubt == {"r-1"}

    asyncio.run(run())


def test_accepts_are_forgotten_once_every_live_reader_has_read_them(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    mine = Coordination(path, Ledger())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        reader = _other_process(path, process_identity(child.pid) or "")

        async def accept() -> None:
            async with mine.claim({"a", "b"}, 1.0) as claim:
                claim.accepted.extend([_entry("a", 3), _entry("b", 9)])

        asyncio.run(accept())
        reader.report_positions({})  # registered, has read nothing yet
        mine.report_positions({0: 10})
        assert _kept(path) == {"a", "b"}
        reader.report_positions({0: 5})
        mine.report_positions({0: 10})
        assert _kept(path) == {"b"}
        child.kill()
        child.wait()
        mine.report_positions({0: 10})  # a dead reader holds nothing back
        assert _kept(path) == set()
    finally:
        child.kill()


def _kept(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {rid for (rid,) in db.execute("SELECT report_id FROM accepted")}
