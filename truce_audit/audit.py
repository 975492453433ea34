"""The checks of `truce audit`: head signature, root over the entries, consistency with an
earlier head, the recount of an edition's figures, and a partner's receipt."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from core.merkle import RootBuilder, leaf_hash, verify_consistency, verify_inclusion
from truce_audit import client, compare, recount
from truce_audit.heads import AuditFailure, check_head, public_key

Entries = Iterable[tuple[int, bytes]]
EntriesFor = Callable[[int], Entries]
"""Where the entries ``[0, tree_size)`` come from: the service, or an auditor's own copy."""


@dataclass
class Outcome:
    """What an audit established; ``differences`` empty means every figure was recounted."""

    tree_size: int
    root_hash: str
    checks: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    not_checked: tuple[str, ...] = ()


def _key(fetch: client.Fetch, key: bytes | None) -> bytes:
    return key if key is not None else public_key(fetch("/v1/log/key", {}))


def verify_log(
    head: dict[str, Any],
    key: bytes,
    entries: Entries,
    since: dict[str, Any] | None = None,
    fold: recount.Fold | None = None,
) -> Outcome:
    """Signature of ``head`` and of ``since``, the entries hashing to the signed root (so
    none rewritten, dropped, added or reordered) and ``since`` being a prefix of it.
    Each entry also goes to ``fold``, trusted only once the root has been checked."""
    root = check_head(head, key)
    size = int(head["tree_size"])
    outcome = Outcome(size, root.hex(), checks=[f"signature of the head ({size} leaves)"])
    since_size = -1
    since_root = b""
    if since is not None:
        since_root = check_head(since, key)
        since_size = int(since["tree_size"])
        if since_size > size:
            raise AuditFailure(
                f"the earlier head has {since_size} leaves, more than this one's {size}",
                hint="--since-head must be a head published before the edition's",
            )
        outcome.checks.append(f"signature of the earlier head ({since_size} leaves)")
    builder = RootBuilder()
    for expected, (index, entry) in enumerate(entries):
        if index != expected:
            raise AuditFailure(f"entry {expected} came as index {index}: the log is out of order")
        if builder.size == since_size and builder.root() != since_root:
            raise AuditFailure(f"the first {since_size} entries do not hash to the earlier head")
        builder.append(leaf_hash(entry))
        if fold is not None:
            fold.add(entry)
    if builder.size == since_size and builder.root() != since_root:
        raise AuditFailure(f"the first {since_size} entries do not hash to the earlier head")
    if builder.size != size:
        raise AuditFailure(f"{builder.size} entries for a head of {size} leaves")
    if builder.root() != root:
        raise AuditFailure(
            "the entries do not hash to the signed root: an entry was rewritten, removed, "
            "added or moved",
            hint="compare the entries with an earlier copy, or ask for inclusion proofs",
        )
    outcome.checks.append(f"root over {size} entries")
    if since is not None:
        outcome.checks.append("the earlier head is a prefix of this one")
    return outcome


def check_consistency(fetch: client.Fetch, first: dict[str, Any], second: dict[str, Any]) -> None:
    """The service's RFC 9162 consistency proof between two signed heads verifies."""
    m, n = int(first["tree_size"]), int(second["tree_size"])
    proof = fetch("/v1/log/proof/consistency", {"first": m, "second": n})
    path = [bytes.fromhex(h) for h in proof["consistency_path"]]
    if not verify_consistency(
        m, n, bytes.fromhex(first["root_hash"]), bytes.fromhex(second["root_hash"]), path
    ):
        raise AuditFailure(f"the log's consistency proof from {m} to {n} leaves does not verify")


def _service(fetch: client.Fetch) -> EntriesFor:
    return lambda size: client.entries(fetch, size)


def _reference(fetch: client.Fetch) -> tuple[frozenset[str], dict[str, dict[str, Any]]]:
    parties = fetch("/v1/reference/parties", {})
    areas = fetch("/v1/reference/areas", {})
    return (
        frozenset(p["code"] for p in parties if p.get("designated")),
        {a["code"]: a for a in areas},
    )


def audit_edition(
    fetch: client.Fetch,
    week: str,
    edition: int,
    *,
    key: bytes | None = None,
    since: dict[str, Any] | None = None,
    entries_for: EntriesFor | None = None,
) -> Outcome:
    """CONTRACT 8 ``truce audit --week W --edition N``."""
    report = fetch(f"/v1/weekly-report/{week}", {"edition": edition, "format": "json"})
    head = report.get("log_head") if isinstance(report, dict) else None
    if not head:
        raise AuditFailure(f"edition {edition} of {week} pins no log head")
    raw_key = _key(fetch, key)
    size = int(head["tree_size"])
    fold = recount.Fold()
    outcome = verify_log(head, raw_key, (entries_for or _service(fetch))(size), since, fold)
    if since is not None:
        check_consistency(fetch, since, head)
        outcome.checks.append("the log's consistency proof")
    designated, areas = _reference(fetch)
    figures = recount.report_figures(recount.count(fold, designated), week, areas)
    outcome.differences = compare.differences(report, figures)
    outcome.checks.append(f"every figure of {week} edition {edition} recounted from the entries")
    outcome.not_checked = compare.NOT_CHECKED
    return outcome


def audit_metrics(
    fetch: client.Fetch,
    week: str,
    *,
    key: bytes | None = None,
    since: dict[str, Any] | None = None,
    entries_for: EntriesFor | None = None,
) -> Outcome:
    """The current head against its entries, and the published weekly metrics of ``week``
    (``/v1/metrics/weekly`` and ``/access``) against the recount of those entries: equal
    when the stream has processed exactly what the head covers."""
    head = fetch("/v1/log/head", {})
    raw_key = _key(fetch, key)
    size = int(head["tree_size"])
    fold = recount.Fold()
    outcome = verify_log(head, raw_key, (entries_for or _service(fetch))(size), since, fold)
    designated, _ = _reference(fetch)
    count = recount.count(fold, designated)
    for path, mine in (
        ("/v1/metrics/weekly", recount.weekly_rows(count, week)),
        ("/v1/metrics/access", recount.access_rows(count, week)),
    ):
        published = fetch(path, {"week": week})["rows"]
        theirs = {_row_key(r): r for r in published}
        ours = {_row_key(r): r for r in mine}
        for row_key in sorted(set(theirs) | set(ours)):
            a, b = theirs.get(row_key), ours.get(row_key)
            if a != b:
                outcome.differences.append(f"{path} {week} {row_key}: published {a}, recounted {b}")
    outcome.checks.append(f"the weekly metrics of {week} recounted from the entries")
    return outcome


def _row_key(row: dict[str, Any]) -> tuple[str, str]:
    return str(row["area"]), str(row.get("party", ""))


def audit_receipt(
    fetch: client.Fetch,
    receipt_leaf_hash: str,
    *,
    week: str | None = None,
    edition: int | None = None,
    key: bytes | None = None,
) -> Outcome:
    """ "My report with this receipt is in the tree behind this head (or edition)": an
    RFC 9162 inclusion proof against a signed root."""
    if week is not None and edition is not None:
        report = fetch(f"/v1/weekly-report/{week}", {"edition": edition, "format": "json"})
        head = report.get("log_head")
        if not head:
            raise AuditFailure(f"edition {edition} of {week} pins no log head")
    else:
        head = fetch("/v1/log/head", {})
    root = check_head(head, _key(fetch, key))
    size = int(head["tree_size"])
    wanted = receipt_leaf_hash.lower()
    proof = fetch("/v1/log/proof/inclusion", {"leaf_hash": wanted, "tree_size": size})
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    if not verify_inclusion(bytes.fromhex(wanted), int(proof["leaf_index"]), size, path, root):
        raise AuditFailure(f"the inclusion proof of {wanted} does not lead to the signed root")
    return Outcome(
        size,
        root.hex(),
        checks=[
            f"signature of the head ({size} leaves)",
            f"leaf {wanted} is entry {proof['leaf_index']} of the tree",
        ],
    )
