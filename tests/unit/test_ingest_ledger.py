"""The ingest ledger: CONTRACT section 2 verdicts, and a heap the garbage collector skips."""

from __future__ import annotations

import gc

from services.ingest.ledger import Ledger, Verdict


def test_verdicts_follow_ownership_then_revision_identity() -> None:
    ledger = Ledger()
    assert ledger.judge("r-1", 1, "h1", "sarc") is Verdict.NEW
    ledger.record("r-1", 1, "h1", "sarc")
    assert ledger.judge("r-1", 1, "h1", "sarc") is Verdict.DUPLICATE
    assert ledger.judge("r-1", 1, "h2", "sarc") is Verdict.CONFLICT
    assert ledger.judge("r-1", 2, "h2", "sarc") is Verdict.NEW
    assert ledger.judge("r-1", 2, "h2", "wfp") is Verdict.FOREIGN
    assert ledger.judge("r-11", 1, "h1", "wfp") is Verdict.NEW  # no prefix confusion


def test_first_write_of_a_revision_and_first_owner_stay() -> None:
    ledger = Ledger()
    ledger.record_many([("r-1", 1, "h1", "sarc"), ("r-1", 1, "h9", "wfp"), ("r-1", 2, "h2", "wfp")])
    assert len(ledger) == 1
    assert ledger.judge("r-1", 1, "h1", "sarc") is Verdict.DUPLICATE
    assert ledger.judge("r-1", 2, "h2", "sarc") is Verdict.DUPLICATE
    assert ledger.judge("r-1", 1, "h1", "wfp") is Verdict.FOREIGN


def test_remembered_reports_add_nothing_for_the_garbage_collector_to_walk() -> None:
    """Full collections walk every tracked object; a per-report object made them 50-160 ms
    pauses at 150,000 reports, which was the single-POST p99."""
    ledger = Ledger()
    gc.collect()
    before = len(gc.get_objects())
    ledger.record_many((f"r-{i}", 1 + i % 3, f"{i:064x}", "sarc") for i in range(20_000))
    gc.collect()
    assert len(gc.get_objects()) - before < 100
