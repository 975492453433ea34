"""The weekly figures of CONTRACT section 3, each defined once: which reports it takes,
under which condition, and what it adds up.

Everything that counts derives from these definitions: the stream's running totals
(:meth:`FigureSet.row`), the ClickHouse columns and views and the SQL recounts
(:meth:`Figure.sql`, :meth:`FigureSet.present_sql`), the metric records on the topic, the
published-row reader, the weekly report and the demo's expectation. The test suite's
reference fold alone is written apart, from the contract's words.

Adding a figure is one entry here (and, where people read it, a line in the weekly
report's templates).

A figure is evaluated on a *classified* report: the current, non-retracted revision of a
report with its exemption and verification status decided (see :class:`Classified`).

Event figures (CONTRACT section 9, kind :data:`EVENT`) count events rather than reports:
each current incident once, at its own area, perpetrator and week, and each current
violation that no incident claims (a *lone* violation). ``Classified.event`` says whether
a report is such an event, ``Classified.sources`` how many organisations back it: the
distinct organisations of an incident's current members (its current, non-retracted
violations whose incident it is), 1 for a lone violation (its own organisation, so a lone
violation is never corroborated). An incident counts once whatever its members: even
when fewer than two of them are current, or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

from schemas.reports import AccessRequest, Delivery


class Classified(Protocol):
    """What a figure reads of one current report. ``status`` is a delivery's or access
    request's status ("" otherwise); ``verification`` the violation's current verdict."""

    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def exempt(self) -> bool: ...
    @property
    def verification(self) -> str: ...
    @property
    def killed(self) -> int: ...
    @property
    def injured(self) -> int: ...
    @property
    def beneficiaries(self) -> int: ...
    @property
    def event(self) -> bool: ...
    @property
    def sources(self) -> int: ...


@dataclass(frozen=True)
class Judged:
    """A plain :class:`Classified`: what the figures read of one report, as a record
    (readers of rows that are not stream members build one per report)."""

    kind: str
    status: str
    exempt: bool
    verification: str
    killed: int
    injured: int
    beneficiaries: int
    event: bool
    sources: int

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Judged:
        """From a row with those columns (a recounted classified report's)."""
        return cls(
            str(row["kind"]), str(row["status"]), bool(row["exempt"]), str(row["verification"]),
            int(row["killed"]), int(row["injured"]), int(row["beneficiaries"]),
            bool(row["event"]), int(row["sources"]),
        )  # fmt: skip


Summed = Literal["", "killed", "injured", "beneficiaries"]

EVENT = "event"
"""The pseudo-kind of the event figures: an incident, or a violation in no incident."""
EVENT_KINDS = ("violation", "incident")
"""The kinds whose reports may be events."""
CORROBORATED = 2
"""An event is corroborated when at least this many organisations back it."""


@dataclass(frozen=True)
class Figure:
    """One column of a weekly row."""

    name: str
    kind: str
    description: str
    statuses: tuple[str, ...] = ()  # any status when empty
    exempt: bool | None = None  # either when None
    verification: str = ""  # any verification status when empty
    summed: Summed = ""  # the field added up; "" counts reports
    column_type: str = "UInt32"
    min_sources: int = 0  # of an event figure: the organisations it needs at least

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of report the figure reads."""
        return EVENT_KINDS if self.kind == EVENT else (self.kind,)

    def value(self, report: Classified) -> int:
        """What one classified report adds to this figure."""
        if self.kind == EVENT:
            if not report.event or report.sources < self.min_sources:
                return 0
        elif report.kind != self.kind:
            return 0
        if self.statuses and report.status not in self.statuses:
            return 0
        if self.exempt is not None and report.exempt != self.exempt:
            return 0
        if self.verification and report.verification != self.verification:
            return 0
        return int(getattr(report, self.summed)) if self.summed else 1

    @property
    def counts_reports(self) -> bool:
        """True when the figure counts reports of a plain class (not a sum, not the
        verified subset): the counting figures of a row together cover each of its reports
        exactly once, so their sum says whether the row has any report."""
        return not self.summed and not self.verification and not self.min_sources

    def condition_sql(self) -> str:
        """The figure's condition over the columns ``kind``, ``status``, ``exempt``,
        ``verification``, ``event`` and ``sources`` (a classified report's; every value is
        a constant of ours)."""
        if self.kind == EVENT:
            parts = ["event"]
            if self.min_sources:
                parts.append(f"sources >= {self.min_sources}")
        else:
            parts = [f"kind = '{self.kind}'"]
        if self.statuses:
            parts.append("status IN (" + ", ".join(f"'{s}'" for s in self.statuses) + ")")
        if self.exempt is not None:
            parts.append("exempt" if self.exempt else "NOT exempt")
        if self.verification:
            parts.append(f"verification = '{self.verification}'")
        return " AND ".join(parts)

    def sql(self) -> str:
        """The aggregate that recounts the figure from classified rows, named after it."""
        if self.summed:
            return f"toUInt64(sumIf({self.summed}, {self.condition_sql()})) AS {self.name}"
        return f"toUInt64(countIf({self.condition_sql()})) AS {self.name}"


@dataclass(frozen=True)
class FigureSet:
    """The figures of one kind of weekly row and the keys a row is identified by."""

    name: Literal["compliance", "access"]
    keys: tuple[str, ...]  # after ``week``: ("area", "party") or ("area",)
    figures: tuple[Figure, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.figures)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(k for f in self.figures for k in f.kinds)

    def zero(self) -> dict[str, int]:
        return dict.fromkeys(self.names, 0)

    def row(self, reports: Iterable[Classified]) -> dict[str, int]:
        """Every figure over some classified reports (a row's, or a single one's)."""
        totals = self.zero()
        for report in reports:
            for figure in self.figures:
                totals[figure.name] += figure.value(report)
        return totals

    def counting(self, kind: str) -> tuple[Figure, ...]:
        """The figures that count reports of one kind: together, each such report once."""
        return tuple(f for f in self.figures if f.kind == kind and f.counts_reports)

    def present(self, row: Mapping[str, int]) -> bool:
        """A row is listed while it has any current report (CONTRACT section 3)."""
        return any(row.get(f.name, 0) for f in self.figures if f.counts_reports)

    def present_sql(self) -> str:
        """:meth:`present` as a ClickHouse condition over a row's figure columns."""
        return " + ".join(f.name for f in self.figures if f.counts_reports) + " > 0"

    def sql(self) -> str:
        """Every figure's aggregate, for a SELECT over classified rows."""
        return ",\n       ".join(f.sql() for f in self.figures)


def _statuses(model: type[Delivery] | type[AccessRequest]) -> tuple[str, ...]:
    return tuple(get_args(model.model_fields["status"].annotation))


DELIVERY_STATUSES = _statuses(Delivery)
REQUEST_STATUSES = _statuses(AccessRequest)
REACHED = ("completed", "partial")
"""Deliveries whose beneficiaries count as reached."""

COMPLIANCE = FigureSet(
    "compliance",
    ("area", "party"),
    (
        Figure("violations", "violation", "current violation reports that are not exempt",
               exempt=False),
        Figure("violations_verified", "violation",
               "non-exempt violations whose verification status is verified",
               exempt=False, verification="verified"),
        Figure("violations_exempt", "violation",
               "current violation reports that are exempt (designated groups)", exempt=True),
        Figure("killed", "violation", "killed, summed over the non-exempt violations",
               exempt=False, summed="killed"),
        Figure("injured", "violation", "injured, summed over the non-exempt violations",
               exempt=False, summed="injured"),
        Figure("incidents", EVENT,
               "non-exempt events: incidents, and current violations in no incident",
               exempt=False),
        Figure("incidents_exempt", EVENT, "exempt events (designated groups)", exempt=True),
        Figure("incidents_corroborated", EVENT,
               "non-exempt events backed by at least two organisations",
               exempt=False, min_sources=CORROBORATED),
        Figure("incident_killed", EVENT,
               "killed, summed over the non-exempt events (an incident's own figure)",
               exempt=False, summed="killed"),
        Figure("incident_injured", EVENT,
               "injured, summed over the non-exempt events (an incident's own figure)",
               exempt=False, summed="injured"),
    ),
)  # fmt: skip

ACCESS = FigureSet(
    "access",
    ("area",),
    (
        *(
            Figure(f"deliveries_{status}", "delivery", f"current deliveries that are {status}",
                   statuses=(status,))
            for status in DELIVERY_STATUSES
        ),
        Figure("beneficiaries", "delivery",
               "beneficiaries, summed over completed and partial deliveries",
               statuses=REACHED, summed="beneficiaries", column_type="UInt64"),
        *(
            Figure(f"requests_{status}", "access_request",
                   f"current access requests whose status is {status}", statuses=(status,))
            for status in REQUEST_STATUSES
        ),
    ),
)  # fmt: skip

FIGURE_SETS = (COMPLIANCE, ACCESS)
COUNTED_KINDS = COMPLIANCE.kinds | ACCESS.kinds
"""The kinds that weekly figures count; other kinds (verification, designation) only
change how these are classified."""
