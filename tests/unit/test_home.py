"""Tightening a home while the stack runs in it: entries come and go meanwhile."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from core.home import prepare_home


def test_entries_that_vanish_during_the_walk_are_skipped(tmp_path: Path) -> None:
    """`truce down` failed with "No such file or directory" on a ClickHouse merge's
    temporary directory that was removed while the home was being walked."""
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            part = home / "clickhouse" / f"tmp_merge_{n % 3}"
            for d in range(10):
                (part / f"d{d}" / "b").mkdir(parents=True, exist_ok=True)
                (part / f"d{d}" / "b" / "f").write_text("x")
            shutil.rmtree(part, ignore_errors=True)
            n += 1

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            prepare_home(home)
    finally:
        stop.set()
        worker.join()
