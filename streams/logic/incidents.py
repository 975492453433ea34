"""Incident membership (CONTRACT section 9), as pure functions over the facts one
partition holds.

A violation belongs to the current, non-retracted incident that lists it with the latest
``occurred_at`` (ties: the greatest ``report_id``). Reports are keyed by their own id, so
an incident and its members may sit in different partitions. Two records on the
references topic (the verdicts topic, partitioned like the reports) carry what each side
needs from the other:

- a **claim** (incident -> member, keyed by the member): "incident X, at this time, lists
  you" or, once X no longer lists it (revised, retracted, changed kind), the claim
  withdrawn. Sent to every report X ever listed, so a member dropped by a revision hears
  of it. Versioned by X's current revision: its content is a function of that revision
  alone, so a redelivered or replayed claim can never outrank a newer one.
- a **membership** (member -> incident, keyed by the incident): "report M, of organisation
  O, is (or is not) a current member of yours", sent to every incident that ever claimed
  M. Its content is a function of M's current revision and of the claims M's partition
  holds, so it is versioned by M's revision plus the revisions of every claim held: that
  sum grows with every change of those inputs and is the same for the same inputs, so the
  highest version is always the latest state whatever the order of arrival or replay.

The member's partition decides the winner among the claims it holds and places the
violation as a lone event or not; the incident's partition counts the distinct
organisations of its current members (its ``sources``). Either side may arrive first: a
claim or membership about a report not yet seen is kept and read when it arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.weeks import parse_utc
from streams.logic.records import Claim, Membership


def winner(claims: Iterable[Claim]) -> str:
    """The incident a report belongs to ("" for none) among the claims about it."""
    live = [c for c in claims if c.live]
    if not live:
        return ""
    assert all(c.occurred_at is not None for c in live)
    return max(live, key=lambda c: (parse_utc(str(c.occurred_at)), c.incident)).incident


def claims_of(held: Mapping[str, Any]) -> list[Claim]:
    return [Claim.of(c) for c in held.values()]


def membership_version(revision: int, claims: Iterable[Claim]) -> int:
    """See the module docstring: grows with every change of a membership's inputs."""
    return revision + sum(c.version for c in claims)


def sources(memberships: Iterable[Membership]) -> tuple[str, ...]:
    """The distinct organisations of an incident's current members."""
    return tuple(sorted({m.org for m in memberships if m.live}))


def keep_newer(held: dict[str, Any], key: str, record: Claim | Membership) -> bool:
    """Store ``record`` under ``key`` unless a newer version is held; True if stored."""
    before = held.get(key)
    if before is not None and int(before["version"]) > record.version:
        return False
    held[key] = record.wire()
    return True
