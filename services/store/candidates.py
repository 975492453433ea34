"""Incident candidates (CONTRACT 9): groups of current violations from different
organisations that look like one event, so the task force links them with one POST.

The rule, per area, walking its current (highest revision, not retracted) violations in
``(occurred_at, report_id)`` order: a violation joins the earliest-started open group of
its area that

- has no report from the violation's organisation yet (each organisation once: two
  reports of one partner are two events as far as this rule can tell),
- has a compatible perpetrator: equal, or either side ``unknown``,
- has a compatible category: equal, or either side ``other``,
- began at most ``TRUCE_CANDIDATE_WINDOW_MINUTES`` (default 120) before it: the window
  is anchored on the group's earliest report, so no group spans more than the window,
- holds fewer than 50 reports (an incident's largest ``members``);

otherwise it starts a group. A group's perpetrator and category are its first known
(not ``unknown``/``other``) ones, so once a group knows ``gos`` a later ``ru`` report
cannot join it. The target is not part of the rule (one shelling is "civilians" to one
partner and "infrastructure" to another). Groups of two or more reports are candidates.

The proposal reconciles the members: their area, the group's perpetrator and category,
the target most members give (ties: the earliest member's), the earliest ``occurred_at``,
and the **largest** ``killed`` and ``injured`` any member reports. The maximum, not the
sum: summing the same dead counted by three partners is the inflation incidents exist to
remove, and partners undercount more often than they invent casualties. The task force
edits the body before it posts it when it knows better.

A candidate belongs to the week of its earliest report; the walk starts one window before
the week (so a group begun late on Sunday is not cut in two) and runs one window past it.
Violations that already belong to a current incident (the stream's ``incident`` column of
the canonical reports, CONTRACT 9's membership rule) are left out: linked once, they are
no candidates any more, and the rest of their group may still be one."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from core.keys import ApiKey
from core.openapi import AUTHENTICATED, problems
from schemas.weeks import week_bounds
from services.store.database import Database
from services.store.params import check_week
from services.store.routes import State, as_utc, utc_text
from services.store.state import state

MAX_MEMBERS = 50
"""An incident links 2 to 50 violation reports (CONTRACT 9)."""
UNKNOWN_PARTY, OTHER_CATEGORY = "unknown", "other"

VIOLATIONS = """
SELECT report_id, org, area, party, target, category, killed, injured, occurred_at
FROM canonical_reports FINAL
WHERE kind = 'violation' AND NOT retracted AND incident = ''
  AND occurred_at >= {start:DateTime64(3, 'UTC')} AND occurred_at < {end:DateTime64(3, 'UTC')}
ORDER BY area, occurred_at, report_id
"""


class Member(BaseModel):
    """One violation of a candidate as its organisation reported it."""

    report_id: str
    org: str
    occurred_at: datetime
    perpetrator: str
    target: str
    category: str
    killed: int
    injured: int


class Proposal(BaseModel):
    """The reconciled fields the task force would file (see the module's rule)."""

    area: str
    perpetrator: str
    target: str
    category: str
    killed: int
    injured: int
    occurred_at: datetime


class Candidate(BaseModel):
    members: list[str]
    """Member report ids, in time order."""
    orgs: list[str]
    area: str
    reports: list[Member]
    proposal: Proposal
    incident: dict[str, Any]
    """A ready-to-POST ``incident`` report for the ingest API's ``POST /v1/reports``;
    its ``report_id`` is derived from the members, so posting it twice is a duplicate."""


class Candidates(BaseModel):
    week: str
    window_minutes: int
    candidates: list[Candidate]


def _compatible(known: str, other: str, wildcard: str) -> bool:
    return known == other or wildcard in (known, other)


@dataclass
class _Group:
    start: datetime
    members: list[Member] = field(default_factory=list)
    perpetrator: str = UNKNOWN_PARTY
    category: str = OTHER_CATEGORY

    def admits(self, m: Member, window: timedelta) -> bool:
        return (
            m.occurred_at - self.start <= window
            and len(self.members) < MAX_MEMBERS
            and all(m.org != x.org for x in self.members)
            and _compatible(self.perpetrator, m.perpetrator, UNKNOWN_PARTY)
            and _compatible(self.category, m.category, OTHER_CATEGORY)
        )

    def add(self, m: Member) -> None:
        self.members.append(m)
        if self.perpetrator == UNKNOWN_PARTY:
            self.perpetrator = m.perpetrator
        if self.category == OTHER_CATEGORY:
            self.category = m.category


def group(members: list[Member], window: timedelta) -> list[list[Member]]:
    """The rule of the module docstring on one area's violations; groups of two or more,
    in the order they began."""
    ordered = sorted(members, key=lambda m: (m.occurred_at, m.report_id))
    groups: list[_Group] = []
    for m in ordered:
        home = next((g for g in groups if g.admits(m, window)), None)
        if home is None:
            home = _Group(start=m.occurred_at)
            groups.append(home)
        home.add(m)
    return [g.members for g in groups if len(g.members) >= 2]


def _majority(values: list[str]) -> str:
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)  # ties: the earliest member's


def incident_id(members: list[str]) -> str:
    """The same members always give the same id (a second click is a duplicate)."""
    digest = hashlib.sha256("\n".join(sorted(members)).encode()).hexdigest()
    return f"incident-{digest[:24]}"


def candidate(area: str, members: list[Member]) -> Candidate:
    known_party = next((m.perpetrator for m in members if m.perpetrator != UNKNOWN_PARTY), None)
    known_category = next((m.category for m in members if m.category != OTHER_CATEGORY), None)
    proposal = Proposal(
        area=area,
        perpetrator=known_party or UNKNOWN_PARTY,
        target=_majority([m.target for m in members]),
        category=known_category or OTHER_CATEGORY,
        killed=max(m.killed for m in members),
        injured=max(m.injured for m in members),
        occurred_at=members[0].occurred_at,
    )
    ids = [m.report_id for m in members]
    body: dict[str, Any] = {
        "report_id": incident_id(ids),
        "kind": "incident",
        "members": ids,
        **proposal.model_dump(exclude={"occurred_at"}),
        "occurred_at": utc_text(proposal.occurred_at),
    }
    return Candidate(
        members=ids,
        orgs=sorted({m.org for m in members}),
        area=area,
        reports=members,
        proposal=proposal,
        incident=body,
    )


def candidates(db: Database, week: str, window: timedelta) -> list[Candidate]:
    """Every candidate whose earliest report occurred in ``week``, by area then time."""
    start, end = week_bounds(week)
    by_area: dict[str, list[Member]] = {}
    for row in db.rows(VIOLATIONS, start=start - window, end=end + window):
        by_area.setdefault(row["area"], []).append(
            Member(
                report_id=row["report_id"],
                org=row["org"],
                occurred_at=as_utc(row["occurred_at"]),
                perpetrator=row["party"],
                target=row["target"],
                category=row["category"],
                killed=row["killed"],
                injured=row["injured"],
            )
        )
    return [
        candidate(area, found)
        for area in sorted(by_area)
        for found in group(by_area[area], window)
        if start <= found[0].occurred_at < end
    ]


def _taskforce(request: Request) -> ApiKey:
    return state(request).auth_publisher(request)  # taskforce (and admin) keys


router = APIRouter()


@router.get(
    "/v1/incidents/candidates",
    summary="Violations from different organisations that look like one event (task force)",
    response_model=Candidates,
    responses=problems(*AUTHENTICATED, 403, 422),
)
def candidates_route(
    st: State, _key: Annotated[ApiKey, Depends(_taskforce)], week: str
) -> Candidates:
    checked = check_week(week)
    minutes = st.settings.candidate_window_minutes
    found = candidates(st.db, checked, timedelta(minutes=minutes))
    return Candidates(week=checked, window_minutes=minutes, candidates=found)
