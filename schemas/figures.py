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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

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


Summed = Literal["", "killed", "injured", "beneficiaries"]


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

    def value(self, report: Classified) -> int:
        """What one classified report adds to this figure."""
        if report.kind != self.kind:
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
        return not self.summed and not self.verification

    def condition_sql(self) -> str:
        """The figure's condition over the columns ``kind``, ``status``, ``exempt`` and
        ``verification`` (a canonical report's; every value is a constant of ours)."""
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
        return frozenset(f.kind for f in self.figures)

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
