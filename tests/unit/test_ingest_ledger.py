"""The ingest ledger: CONTRACT section 2 verdicts, and a heap the garbage collector skips."""

from __future__ import annotations

import gc

from services.ingest.ledger import Entry, Ledger, Receipt, Verdict


def _hash(text: str) -> str:
    return text.encode().hex().ljust(64, "0")


def _entry(report_id: str, revision: int, content: str, org: str, offset: int = 0) -> Entry:
    return Entry(report_id, revision, _hash(content), org, Receipt(b"\x07" * 32, 1, offset))


def test_verdicts_follow_ownership_then_revision_identity() -> None:
    ledger = Ledger()
    h1, h2 = _hash("h1"), _hash("h2")
    assert ledger.judge("r-1", 1, h1, "sarc") is Verdict.NEW
    ledger.record(_entry("r-1", 1, "h1", "sarc"))
    assert ledger.judge("r-1", 1, h1, "sarc") is Verdict.DUPLICATE
    assert ledger.judge("r-1", 1, h2, "sarc") is Verdict.CONFLICT
    assert ledger.judge("r-1", 2, h2, "sarc") is Verdict.NEW
    assert ledger.judge("r-1", 2, h2, "wfp") is Verdict.FOREIGN
    assert ledger.judge("r-11", 1, h1, "wfp") is Verdict.NEW  # no prefix confusion


def test_first_write_of_a_revision_and_first_owner_stay() -> None:
    ledger = Ledger()
    ledger.record_many(
        [_entry("r-1", 1, "h1", "sarc", 5), _entry("r-1", 1, "h9", "wfp", 6),
         _entry("r-1", 2, "h2", "wfp", 7)]
    )  # fmt: skip
    assert len(ledger) == 1
    assert ledger.judge("r-1", 1, _hash("h1"), "sarc") is Verdict.DUPLICATE
    assert ledger.judge("r-1", 2, _hash("h2"), "sarc") is Verdict.DUPLICATE
    assert ledger.judge("r-1", 1, _hash("h1"), "wfp") is Verdict.FOREIGN
    assert ledger.receipt("r-1", 1) == Receipt(b"\x07" * 32, 1, 5)  # the first write's
    assert ledger.receipt("r-1", 3) is None


def test_remembered_reports_add_nothing_for_the_garbage_collector_to_walk() -> None:
    """Full collections walk every tracked object; a per-report object made them 50-160 ms
    pauses at 150,000 reports, which was the single-POST p99."""
    ledger = Ledger()
    gc.collect()
    before = len(gc.get_objects())
    ledger.record_many(
        Entry(f"r-{i}", 1 + i % 3, f"{i:064x}", "sarc", Receipt(b"\x01" * 32, 0, i))
        for i in range(20_000)
    )
    gc.collect()
    assert len(gc.get_objects()) - before < 100


def test_latest_revision_and_openrosa_instances() -> None:
    """CONTRACT 10: an instance id names the revision it was accepted as; the first
    write of an instance stays, like the first write of a revision."""
    ledger = Ledger()
    assert ledger.latest("uuid:a") == 0
    assert ledger.instance("uuid:a") is None
    receipt = Receipt(b"\x07" * 32, 1, 0)
    ledger.record_many(
        [Entry("uuid:a", 1, _hash("h1"), "sarc", receipt, "uuid:a"),
         Entry("uuid:a", 3, _hash("h3"), "sarc", receipt, "uuid:c"),
         Entry("uuid:a", 2, _hash("h2"), "sarc", receipt, "uuid:b"),
         Entry("uuid:a", 4, _hash("h4"), "sarc", receipt, "uuid:c"),
         Entry("json-1", 5, _hash("j"), "sarc", receipt)]
    )  # fmt: skip
    assert ledger.latest("uuid:a") == 4  # revisions in any order: the highest
    assert ledger.latest("json-1") == 5
    assert ledger.instance("uuid:a") == ("uuid:a", 1)
    assert ledger.instance("uuid:b") == ("uuid:a", 2)
    assert ledger.instance("uuid:c") == ("uuid:a", 3)
    assert ledger.instance("json-1") is None
