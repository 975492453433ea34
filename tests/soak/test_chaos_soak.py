"""The chaos soak's short version (CI): every fault kind once, under partner load, on the
stack's own broker; the long version is `python -m tests.soak` (README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import isolated_settings
from tests.soak.chaos import FAULT_KINDS, SoakPlan, soak_stack

pytestmark = pytest.mark.integration


@pytest.mark.timeout(1500)
def test_every_fault_once_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path / "home", streams_workers=2)
    plan = SoakPlan(seed=7, duration_s=0, clients=3, fault_gap_s=3.0, each_once=True)
    with soak_stack(settings, plan) as soak:
        summary = soak.run()
    print("\n".join(summary.lines()))
    assert summary.failures == []
    assert set(summary.faults) == set(FAULT_KINDS)
    assert summary.revisions > 100
    assert summary.resends > 0
    assert summary.alerts_notified > 0
