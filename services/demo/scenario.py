"""The demo scenario: the weeks after Munich 2016 as field partners would have reported them.

The public facts come from ``timeline.yaml``; everything else (violation reports, their
corrections and retractions, verifications, the access-request backlog, late and
repeated submissions) is drawn from the timeline's seed, so the same scale always gives
the same report ids and contents and replaying it twice changes nothing.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from schemas.reference import areas
from services.demo.timeline import KnownDelivery, Timeline, load_timeline

Report = dict[str, Any]

DAMASCUS_WINTER = timezone(timedelta(hours=2))
DAMASCUS_SUMMER = timezone(timedelta(hours=3))
SUMMER_TIME_FROM = date(2016, 3, 25)  # Syria moved to UTC+3 on Friday 25 March 2016

GOVERNMENT_HELD = {"nubl", "zahraa", "fouah", "kafrayah", "bludan"}
ISIL_HELD = {"raqqa", "al_bab", "manbij", "tadmur"}
BATCH_LIMIT = 250
"""Reports per request, well under the API's 1,000: partners on bad links send small batches."""


@dataclass(frozen=True)
class Submission:
    """One request a partner sends: ``reports`` posted together on ``day``."""

    day: date
    org: str
    reports: tuple[Report, ...]
    resend: bool = False
    """A retry of a request that had already been accepted (its answer was lost)."""


@dataclass
class Scenario:
    """Every revision to replay, in the order partners send them."""

    timeline: Timeline
    scale: float
    submissions: list[Submission] = field(default_factory=list)

    @property
    def revisions(self) -> int:
        return sum(len(s.reports) for s in self.submissions)

    @property
    def distinct_revisions(self) -> int:
        return sum(len(s.reports) for s in self.submissions if not s.resend)

    def organisations(self) -> list[str]:
        return sorted({s.org for s in self.submissions})

    def owners(self) -> dict[str, str]:
        """The organisation of every report (whoever sends its first revision)."""
        owners: dict[str, str] = {}
        for submission in self.submissions:
            for report in submission.reports:
                owners.setdefault(report["report_id"], submission.org)
        return owners

    def latest_revisions(self) -> dict[str, Report]:
        """The current (highest) revision of every report: what the metrics must count."""
        latest: dict[str, Report] = {}
        for submission in self.submissions:
            for report in submission.reports:
                held = latest.get(report["report_id"])
                if held is None or report["revision"] > held["revision"]:
                    latest[report["report_id"]] = report
        return latest


@dataclass(order=True)
class _Pending:
    day: date
    org: str
    seq: int
    report: Report = field(compare=False)


class _Builder:
    """Collects revisions with the day their organisation sends each of them."""

    def __init__(self, timeline: Timeline, scale: float) -> None:
        self.t = timeline
        self.scale = scale
        self.rng = random.Random(timeline.seed)
        # the co-reporters draw from their own stream, so adding them changes none of the
        # monitors' reports
        self.co_rng = random.Random(f"{timeline.seed}-co-reporters")
        self.pending: list[_Pending] = []
        self.ids: defaultdict[str, int] = defaultdict(int)

    def new_id(self, prefix: str) -> str:
        self.ids[prefix] += 1
        return f"{prefix}-{self.ids[prefix]:05d}"

    def send(self, day: date, org: str, report: Report) -> None:
        self.pending.append(_Pending(day, org, len(self.pending), report))

    def moment(self, day: date, hour: int | None = None) -> str:
        """A local Damascus time on ``day`` (as partners report it), as RFC 3339."""
        zone = DAMASCUS_SUMMER if day >= SUMMER_TIME_FROM else DAMASCUS_WINTER
        h = self.rng.randrange(5, 23) if hour is None else hour
        at = datetime.combine(day, time(h, self.rng.randrange(60)), zone)
        return at.isoformat()

    def delay(self) -> int:
        """Days between an event and its report: mostly at once, some weeks late."""
        roll = self.rng.random()
        if roll < 0.70:
            return 0
        if roll < 0.90:
            return self.rng.randint(1, 3)
        if roll < 0.98:
            return self.rng.randint(7, 35)
        return self.rng.randint(56, 84)  # up to twelve weeks late


def _days(start: date, end: date) -> Iterator[date]:
    for n in range((end - start).days + 1):
        yield start + timedelta(days=n)


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: the rates here are a few per day."""
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _violation_rate_factor(t: Timeline, day: date, area: str) -> float:
    """Fighting falls when the cessation starts (except against designated groups)."""
    start = t.cessation_starts.astimezone(UTC).date() + timedelta(days=1)
    if day < start or area in ISIL_HELD:
        return 1.0
    span = max(1, (t.end - start).days)
    progress = (day - start).days / span
    v = t.violations
    return v.after_cessation + (v.end_of_march - v.after_cessation) * progress


def _perpetrator(rng: random.Random, area: str) -> tuple[str, str]:
    """(perpetrator, target) by who holds the area."""
    if area in ISIL_HELD:
        who = rng.choices(["coalition", "ru", "gos", "sdf", "isil"], [30, 25, 15, 10, 20])[0]
        if who == "isil":
            return who, rng.choice(["civilians", "civilians", "sdf", "gos"])
        return who, rng.choices(["isil", "civilians", "infrastructure"], [50, 35, 15])[0]
    if area == "deir_ez_zor":
        return rng.choices(["isil", "unknown"], [85, 15])[0], "civilians"
    if area in GOVERNMENT_HELD:
        who = rng.choices(["ahrar", "fsa", "nusra", "unknown"], [35, 25, 25, 15])[0]
        return who, rng.choices(["civilians", "infrastructure", "gos", "ndf"], [60, 20, 10, 10])[0]
    who = rng.choices(["gos", "ru", "hzb", "ndf", "ir", "unknown"], [50, 25, 7, 5, 3, 10])[0]
    target = rng.choices(["civilians", "infrastructure", "fsa", "ahrar", "jai", "faylaq"])[0]
    return who, target


def _category(rng: random.Random, perpetrator: str) -> str:
    if perpetrator in {"ru", "coalition", "tr"}:
        return "airstrike"
    if perpetrator in {"gos", "hzb", "ndf", "ir"}:
        return rng.choices(
            ["airstrike", "shelling", "ground_attack", "sniper", "siege", "aid_obstruction"],
            [35, 35, 12, 8, 6, 4],
        )[0]
    return rng.choices(
        ["shelling", "ground_attack", "sniper", "ied", "other"], [45, 25, 15, 10, 5]
    )[0]


def _casualties(rng: random.Random, category: str) -> tuple[int, int]:
    heavy = category in {"airstrike", "shelling", "ied"}
    killed = rng.choices(
        range(8), [40, 20, 12, 9, 7, 5, 4, 3] if heavy else [70, 18, 7, 5, 0, 0, 0, 0]
    )
    injured = rng.choices(range(12), [30, 10, 10, 9, 8, 7, 6, 5, 5, 4, 3, 3])
    return killed[0], injured[0]


def _monitor_of(t: Timeline) -> dict[str, str]:
    return {area: org for org, codes in t.organisations.monitors.items() for area in codes}


def _violations(b: _Builder) -> list[Report]:
    """Synthetic violation reports with the corrections and retractions partners send."""
    t, rng = b.t, b.rng
    monitor = _monitor_of(t)
    made: list[Report] = []
    for day in _days(t.start, t.end):
        for area, rate in t.violations.rates.items():
            count = _poisson(rng, rate * _violation_rate_factor(t, day, area) * b.scale)
            bursts = [x for x in t.violations.bursts if x.day == day and x.area == area]
            planned: list[tuple[str, str, str | None]] = [
                (*_perpetrator(rng, area), None) for _ in range(count)
            ]
            for burst in bursts:
                planned += [(burst.perpetrator, "civilians", burst.category)] * burst.reports
            for perpetrator, target, category in planned:
                chosen = category or _category(rng, perpetrator)
                killed, injured = _casualties(rng, chosen)
                org = monitor[area]
                report: Report = {
                    "report_id": b.new_id(f"{org}-{day:%m%d}"),
                    "revision": 1,
                    "kind": "violation",
                    "occurred_at": b.moment(day),
                    "area": area,
                    "perpetrator": perpetrator,
                    "target": target,
                    "category": chosen,
                    "killed": killed,
                    "injured": injured,
                    "source": rng.choice(["witness", "staff", "media", "remote"]),
                    "confidence": rng.choices(["low", "medium", "high"], [20, 50, 30])[0],
                }
                sent = day + timedelta(days=b.delay())
                b.send(sent, org, report)
                made.append(report)
                _revise(b, report, sent, org, t.organisations.monitors[org])
                _co_reports(b, report, day)
    return made


def _co_reports(b: _Builder, first: Report, day: date) -> None:
    """Other partners' reports of the same event (timeline ``duplicates``): the same
    area, perpetrator (or ``unknown``), target and category, a few minutes later by their
    account, casualties a little off, sent within two days; the task force links most of
    them into an incident a few days later (``linked``)."""
    co, rng = b.t.duplicates, b.co_rng
    seen: list[Report] = []
    for org, org_areas in sorted(co.partners.items()):
        if first["area"] not in org_areas or rng.random() >= co.share:
            continue
        at = datetime.fromisoformat(first["occurred_at"]) + timedelta(
            minutes=rng.randint(1, co.minutes)
        )
        report: Report = {
            **first,
            "report_id": b.new_id(f"{org}-{day:%m%d}"),
            "revision": 1,
            "occurred_at": at.isoformat(),
            "perpetrator": "unknown" if rng.random() < 0.2 else first["perpetrator"],
            "killed": max(0, first["killed"] + rng.choice([-1, 0, 0, 1, 2])),
            "injured": max(0, first["injured"] + rng.randint(-2, 3)),
            "source": rng.choice(["witness", "staff", "media", "remote"]),
            "confidence": rng.choices(["low", "medium", "high"], [30, 50, 20])[0],
        }
        b.send(day + timedelta(days=rng.choice([0, 0, 0, 1, 2])), org, report)
        seen.append(report)
    if seen and rng.random() < co.linked:
        _incident(b, [first, *seen], day + timedelta(days=rng.randint(2, 6)))


def _incident(b: _Builder, members: list[Report], sent: date) -> None:
    """The task force links the reports of one event (CONTRACT 9): the first report's
    area, perpetrator, target, category and time, the largest casualty counts."""
    first = members[0]
    report: Report = {
        "report_id": f"inc-{first['report_id']}",
        "revision": 1,
        "kind": "incident",
        "members": [m["report_id"] for m in members],
        "occurred_at": first["occurred_at"],
        **{k: first[k] for k in ("area", "perpetrator", "target", "category")},
        "killed": max(m["killed"] for m in members),
        "injured": max(m["injured"] for m in members),
    }
    b.send(sent, b.t.organisations.taskforce, report)


def _blacked_out(t: Timeline, pending: list[_Pending]) -> list[_Pending]:
    """The reports as a blackout (timeline ``blackouts``) leaves them: a report first
    dated in a blacked-out area on one of its days (UTC) never reaches anyone (every
    revision and every verdict about it is lost, and incidents list it no more; one left
    with fewer than two members is not filed); a later revision dated there (a
    decision on an access request, a correction) is dated the day after, when the area
    can be reached again."""

    def dark(report: Report) -> Any:
        if "area" not in report:
            return None
        day = datetime.fromisoformat(report["occurred_at"]).astimezone(UTC).date()
        return next(
            (b for b in t.blackouts if b.area == report["area"] and b.from_ <= day <= b.to), None
        )

    first: dict[str, Report] = {}
    for p in pending:
        held = first.get(p.report["report_id"])
        if held is None or p.report["revision"] < held["revision"]:
            first[p.report["report_id"]] = p.report
    lost = {rid for rid, report in first.items() if dark(report) is not None}
    kept = []
    for p in pending:
        if p.report["report_id"] in lost or p.report.get("subject") in lost:
            continue
        if "members" in p.report and lost & set(p.report["members"]):
            members = [m for m in p.report["members"] if m not in lost]
            if len(members) < 2:
                continue
            p = _Pending(p.day, p.org, p.seq, {**p.report, "members": members})
        blackout = dark(p.report)
        if blackout is not None:
            at = datetime.fromisoformat(p.report["occurred_at"])
            after = at + timedelta(days=(blackout.to - at.astimezone(UTC).date()).days + 1)
            p = _Pending(max(p.day, after.date()), p.org, p.seq,
                         {**p.report, "occurred_at": after.isoformat()})  # fmt: skip
        kept.append(p)
    return kept


def _revise(b: _Builder, report: Report, sent: date, org: str, org_areas: list[str]) -> None:
    """Corrections (new figures, sometimes another area or week) and retractions."""
    rng = b.rng
    current = report
    roll = rng.random()
    if roll < 0.07:
        current = {**current, "revision": current["revision"] + 1}
        current["killed"] = current["killed"] + rng.randint(0, 3)
        current["injured"] = max(0, current["injured"] + rng.randint(-2, 4))
        if rng.random() < 0.15:
            current["area"] = rng.choice(org_areas)
        if rng.random() < 0.1:
            moved = datetime.fromisoformat(current["occurred_at"]) - timedelta(days=7)
            current["occurred_at"] = moved.isoformat()
        sent = sent + timedelta(days=rng.randint(1, 6))
        b.send(sent, org, current)
    if rng.random() < 0.02:
        retraction = {**current, "revision": current["revision"] + 1, "retracted": True}
        b.send(sent + timedelta(days=rng.randint(1, 10)), org, retraction)


def _verifications(b: _Builder, violations: list[Report]) -> None:
    """The task force's verdicts on some violations, a few of them revised later."""
    rng, org = b.rng, b.t.organisations.taskforce
    for subject in violations:
        if rng.random() >= 0.25:
            continue
        at = datetime.fromisoformat(subject["occurred_at"]) + timedelta(days=rng.randint(2, 9))
        status = rng.choices(["verified", "disputed", "rejected"], [60, 25, 15])[0]
        verdict: Report = {
            "report_id": f"ver-{subject['report_id']}",
            "revision": 1,
            "kind": "verification",
            "occurred_at": at.isoformat(),
            "subject": subject["report_id"],
            "status": status,
        }
        b.send(at.date(), org, verdict)
        if rng.random() < 0.1:  # a second look: a later verdict supersedes the first
            later = at + timedelta(days=rng.randint(3, 14))
            second = {**verdict, "report_id": f"ver2-{subject['report_id']}"}
            second["occurred_at"] = later.isoformat()
            second["status"] = "verified" if status != "verified" else "disputed"
            b.send(later.date(), org, second)
        elif rng.random() < 0.02:  # a verdict withdrawn: the violation is unverified again
            b.send(
                at.date() + timedelta(days=2), org, {**verdict, "revision": 2, "retracted": True}
            )


def _designations(b: _Builder) -> None:
    org = b.t.organisations.taskforce
    for d in b.t.designations:
        report: Report = {
            "report_id": d.id,
            "revision": 1,
            "kind": "designation",
            "occurred_at": datetime.combine(d.from_, time(0), UTC).isoformat(),
            "area": d.area,
            "party": d.party,
        }
        if d.to is not None:
            report["effective_to"] = datetime.combine(d.to, time(0), UTC).isoformat()
        b.send(d.filed, org, report)
        if d.retracted is not None:
            b.send(d.retracted, org, {**report, "revision": 2, "retracted": True})


def _delivery(b: _Builder, known: KnownDelivery, area: str, day: date) -> Report:
    people = areas()[area].people_in_need
    report: Report = {
        "report_id": b.new_id(f"dlv-{day:%m%d}-{area}"),
        "revision": 1,
        "kind": "delivery",
        "occurred_at": b.moment(day, hour=b.rng.randrange(8, 17)),
        "area": area,
        "agency": known.agency,
        "modality": known.modality,
        "status": known.status,
        "beneficiaries": round(people * known.coverage),
    }
    if known.trucks is not None:
        report["trucks"] = known.trucks
    return report


def _deliveries(b: _Builder) -> None:
    """The known convoys and airdrops, plus weekly synthetic cross-line convoys to
    hard-to-reach areas once the cessation holds."""
    t, rng, org = b.t, b.rng, b.t.organisations.deliveries
    for known in t.deliveries:
        for area in known.areas:
            report = _delivery(b, known, area, known.day)
            if known.modality == "airdrop" and known.status == "partial":
                # First reported as a success, corrected once the pallets were counted.
                first = {**report, "status": "completed", "beneficiaries": 20_000}
                b.send(known.day, org, first)
                b.send(known.day + timedelta(days=2), org, {**report, "revision": 2})
            else:
                b.send(known.day + timedelta(days=b.delay() % 4), org, report)
    hard_to_reach = sorted(code for code, a in areas().items() if a.hard_to_reach)
    start = t.cessation_starts.astimezone(UTC).date() + timedelta(days=2)
    for day in _days(start, t.end):
        if day.weekday() not in (1, 4):  # convoys leave on Tuesdays and Fridays
            continue
        for area in rng.sample(hard_to_reach, 2):
            status = rng.choices(["completed", "partial", "blocked", "cancelled"], [60, 20, 12, 8])
            synthetic = KnownDelivery(
                day=day,
                areas=[area],
                agency=rng.choice(["UN/SARC", "WFP", "UNICEF", "ICRC/SARC"]),
                modality="convoy",
                status=status[0],
                coverage=0.0 if status[0] in {"blocked", "cancelled"} else rng.uniform(0.05, 0.3),
                trucks=rng.randint(5, 40),
            )
            b.send(day + timedelta(days=b.delay() % 4), org, _delivery(b, synthetic, area, day))


def _request(b: _Builder, area: str, day: date, ref: str) -> Report:
    return {
        "report_id": ref.lower(),
        "revision": 1,
        "kind": "access_request",
        "occurred_at": b.moment(day, hour=9),
        "area": area,
        "status": "submitted",
        "request_ref": ref,
        "beneficiaries_planned": areas()[area].people_in_need,
    }


def _decide(b: _Builder, request: Report, day: date, status: str, send_on: date) -> None:
    """A decision on a request is its next revision, dated when it was taken."""
    decided = {**request, "revision": 2, "status": status, "occurred_at": b.moment(day, hour=15)}
    b.send(send_on, b.t.organisations.deliveries, decided)


def _access_requests(b: _Builder) -> None:
    """The backlog pending at Munich ("114 requests, 13 approved"), worked through by the
    task force afterwards, and the new requests of each following week."""
    t, rng, org = b.t, b.rng, b.t.organisations.deliveries
    targets = sorted(code for code, a in areas().items() if a.besieged or a.hard_to_reach)
    backlog = t.access_backlog
    span = (backlog.filed_to - backlog.filed_from).days
    filed = sorted(
        backlog.filed_from + timedelta(days=rng.randint(0, span)) for _ in range(backlog.requests)
    )
    approved_early = set(rng.sample(range(backlog.requests), backlog.approved))
    for n, day in enumerate(filed):
        request = _request(b, rng.choice(targets), day, f"HTF-{day:%Y}-{n + 1:03d}")
        b.send(t.start, org, request)  # uploaded in bulk on the first day, months late
        if n in approved_early:
            decided = min(day + timedelta(days=rng.randint(10, 40)), t.start - timedelta(days=1))
            _decide(b, request, decided, "approved", t.start)
            continue
        roll = rng.random()
        if roll < backlog.approved_after_munich + backlog.denied_after_munich:
            status = "approved" if roll < backlog.approved_after_munich else "denied"
            decided = t.munich_statement + timedelta(days=rng.randint(2, (t.end - t.start).days))
            _decide(b, request, min(decided, t.end), status, min(decided, t.end))
    for week_start in _days(t.munich_statement, t.end):
        if week_start.weekday() != 0:
            continue
        for _ in range(max(1, round(8 * b.scale))):
            day = week_start + timedelta(days=rng.randint(0, 4))
            if day > t.end:
                continue
            n = b.ids["request"] = b.ids["request"] + 1
            request = _request(b, rng.choice(targets), day, f"HTF-2016-N{n:03d}")
            b.send(day, org, request)
            roll = rng.random()
            decided = day + timedelta(days=rng.randint(3, 12))
            if roll < 0.75 and decided <= t.end:
                status = rng.choices(["approved", "denied", "withdrawn"], [55, 15, 5])[0]
                _decide(b, request, decided, status, decided)


def _batches(pending: list[_Pending], rng: random.Random) -> list[Submission]:
    """Group by (day, org) into requests; a few accepted requests are sent again."""
    grouped: defaultdict[tuple[date, str], list[Report]] = defaultdict(list)
    for item in sorted(pending):
        grouped[(item.day, item.org)].append(item.report)
    submissions: list[Submission] = []
    for (day, org), reports in sorted(grouped.items()):
        for i in range(0, len(reports), BATCH_LIMIT):
            chunk = tuple(reports[i : i + BATCH_LIMIT])
            submissions.append(Submission(day, org, chunk))
            if rng.random() < 0.05:
                submissions.append(Submission(day, org, chunk, resend=True))
    return submissions


def build_scenario(scale: float = 1.0, timeline: Timeline | None = None) -> Scenario:
    """The whole scenario; ``scale`` multiplies the synthetic traffic (tests use less)."""
    if not 0 < scale <= 10:
        raise ValueError("scale must be in (0, 10]")
    t = timeline or load_timeline()
    b = _Builder(t, scale)
    _designations(b)
    violations = _violations(b)
    _verifications(b, violations)
    _deliveries(b)
    _access_requests(b)
    pending = _blacked_out(t, b.pending)
    return Scenario(timeline=t, scale=scale, submissions=_batches(pending, b.rng))
