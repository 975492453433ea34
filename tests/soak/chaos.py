"""The chaos soak (issue 15): sustained partner traffic against the whole stack, started
with `truce up` on its own broker, while a seeded schedule injects one fault at a time.

Clients behave as a good field client does: every failed request is resent, unchanged,
until it gets an answer; corrections, retractions and deliberate exact resends of what
was already accepted are mixed in. After each fault a canary (one violation per
partition of the reports topic and of the area-keyed topics) is posted, and the fault's
recovery time is how long it took until the canary is counted in the published metrics.

At the end, with the load stopped and the pipeline idle: every revision answered `202`
is on the reports topic exactly once and in ClickHouse's raw table, every deliberate
resend was answered `duplicate`, `truce verify` agrees, the published metrics equal the
independent reference fold (tests/support/reference.py), and the alert receiver, which
deduplicates by idempotency key as the contract asks, was told each alert state once."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from core.failpoints import STORE_INSERT, Failpoints
from core.keys import KeyStore, Role
from core.settings import Settings
from schemas import Alert, decode_envelope, parties, topic_names
from services.runtime import control
from services.runtime.supervisor import read_state
from services.store.database import Database
from tests.support.pipeline import partition_of
from tests.support.receiver import Receiver, http_receiver
from tests.support.reference import weekly_metrics
from tests.support.scenario import AREAS, partner_report, taskforce_reports
from tests.support.services import read_topic

FAULT_KINDS = (
    "kill-ingest",
    "kill-store",
    "kill-alerter",
    "kill-worker-1",
    "kill-worker-2",
    "kill-broker",
    "pause-broker",
    "clickhouse-inserts",
    "pause-worker",
    "down-up",
)
PROCESS_OF = {
    "kill-ingest": "ingest",
    "kill-store": "store",
    "kill-alerter": "alerter",
    "kill-worker-1": "streams",
    "kill-worker-2": "streams-2",
    "kill-broker": "kafka",
}
PAUSE_BROKER_S = 10.0
INSERT_FAILURES_S = 10.0
RECOVERY_LIMIT_S = 180.0
"""A fault not recovered from within this is a failure of the soak, not a slow result."""
RETRYABLE = frozenset({429, 500, 502, 503, 504})
GIVE_UP_S = 240.0
"""A client that waited this long for a definitive answer is a failure of the soak."""
PARTNERS = ("sarc", "wfp", "irc", "msf", "unicef")
BURST_AREAS = ("aleppo_east", "azaz", "jobar", "daraya")
"""Areas the ordinary traffic never uses: bursts there are spikes against a quiet past."""
SECRET = "a-webhook-secret-of-32-characters"


@dataclass(frozen=True)
class SoakPlan:
    seed: int
    duration_s: float
    """How long the clients post; the last fault is injected before this ends."""
    clients: int = 5
    fault_gap_s: float = 4.0
    """Quiet time between the recovery from one fault and the next fault."""
    kinds: tuple[str, ...] = FAULT_KINDS
    each_once: bool = False
    """The short version: every kind exactly once (in seeded order), then stop."""


@dataclass
class Exchange:
    """One request of a client, from its first attempt to its definitive answer."""

    started: float
    ended: float = 0.0
    attempts: int = 0

    @property
    def wait_s(self) -> float:
        return self.ended - self.started


@dataclass
class Fault:
    kind: str
    injected: float
    lifted: float = 0.0
    recovered: float = 0.0
    at: str = field(default_factory=lambda: time.strftime("%H:%M:%S"))
    """Wall-clock time of the injection, to find it in the logs."""

    @property
    def recovery_s(self) -> float:
        return self.recovered - self.lifted


@dataclass
class Ledger:
    """What clients were told: the revisions accepted, and everything that was wrong."""

    accepted: dict[tuple[str, int], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    anomalies: list[str] = field(default_factory=list)
    resends: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def confirm(self, org: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.accepted[(body["report_id"], body.get("revision", 1))] = (org, body)

    def wrong(self, what: str) -> None:
        with self.lock:
            self.anomalies.append(what)


@dataclass
class Summary:
    requests: int
    answers: dict[str, int]
    revisions: int
    resends: int
    faults: dict[str, list[float]]
    longest_wait_s: float
    longest_wait_by_fault: dict[str, float]
    timeline: list[str]
    alerts_notified: int
    redeliveries: int
    failures: list[str]

    def lines(self) -> list[str]:
        out = [
            f"requests {self.requests} ({', '.join(f'{k} {v}' for k, v in self.answers.items())})",
            f"revisions accepted {self.revisions}; deliberate resends {self.resends}",
            f"alerts notified {self.alerts_notified}; redeliveries (same key) {self.redeliveries}",
            f"longest client wait for a 202: {self.longest_wait_s:.1f} s",
            "faults: kind, count, recovery p50 / max, longest client wait during it",
        ]
        for kind, times in sorted(self.faults.items()):
            wait = self.longest_wait_by_fault.get(kind, 0.0)
            out.append(
                f"  {kind:<19} {len(times):>3}  {statistics.median(times):6.1f} s / "
                f"{max(times):6.1f} s   {wait:6.1f} s"
            )
        out.append("timeline: " + "; ".join(self.timeline))
        out.append("result: " + ("ok" if not self.failures else "FAILED"))
        out.extend(f"  - {failure}" for failure in self.failures)
        return out


class Poster:
    """A good client: resends the same body until the answer is definitive."""

    def __init__(self, url: str, key: str, ledger: Ledger) -> None:
        self.client = httpx.Client(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {key}"}
        )
        self.ledger = ledger

    def post(self, reports: list[dict[str, Any]]) -> tuple[Exchange, list[str] | None]:
        """(the exchange, each report's status) or None for a definitive refusal."""
        exchange = Exchange(started=time.monotonic())
        path, payload = (
            ("/v1/reports", reports[0]) if len(reports) == 1 else
            ("/v1/reports/batch", {"reports": reports})
        )  # fmt: skip
        backoff = 0.2
        while True:
            exchange.attempts += 1
            try:
                response = self.client.post(path, json=payload)
            except httpx.TransportError:
                answer, status = "connection failed", 0
            else:
                status = response.status_code
                answer = str(status)
            with self.ledger.lock:
                self.ledger.answers[answer] += 1
            if status == 202:
                exchange.ended = time.monotonic()
                self._record(exchange)
                return exchange, [r["status"] for r in response.json()["results"]]
            if status >= 500 and status != 503:
                self.ledger.wrong(f"{path} answered {status}: {response.text[:200]}")
            if time.monotonic() - exchange.started > GIVE_UP_S:
                exchange.ended = time.monotonic()
                self._record(exchange)
                self.ledger.wrong(f"{path} got no answer in {GIVE_UP_S:.0f} s (last: {answer})")
                return exchange, None
            if status and status not in RETRYABLE:
                exchange.ended = time.monotonic()
                self._record(exchange)
                self.ledger.wrong(f"{path} answered {status}: {response.text[:300]}")
                return exchange, None
            wait = backoff
            if status:
                wait = max(wait, float(response.headers.get("retry-after", "0") or 0))
            time.sleep(min(wait, 5.0))
            backoff = min(backoff * 2, 2.0)

    def _record(self, exchange: Exchange) -> None:
        with self.ledger.lock:
            self.ledger.exchanges.append(exchange)

    def close(self) -> None:
        self.client.close()


class PartnerClient(threading.Thread):
    """New reports (alone or in batches), corrections, retractions, exact resends."""

    def __init__(self, soak: Soak, org: str, key: str, seed: int) -> None:
        super().__init__(name=f"client-{org}", daemon=True)
        self.soak, self.org = soak, org
        self.rng = random.Random(seed)
        self.poster = Poster(soak.settings.ingest_url, key, soak.ledger)
        self.current: dict[str, dict[str, Any]] = {}
        self.serial = 0

    def run(self) -> None:
        try:
            while not self.soak.stopping.is_set():
                self.step()
                time.sleep(self.rng.uniform(0.02, 0.15))
        finally:
            self.poster.close()

    def step(self) -> None:
        roll = self.rng.random()
        live = [rid for rid, body in self.current.items() if not body.get("retracted")]
        if roll < 0.15 and live:
            self.correct(self.rng.choice(live))
        elif roll < 0.25 and self.current:
            self.resend()
        elif roll < 0.27:
            self.burst()
        else:
            count = self.rng.randint(2, 25) if roll > 0.85 else 1
            self.submit([self.fresh() for _ in range(count)])

    def fresh(self, kind: str | None = None) -> dict[str, Any]:
        self.serial += 1
        rid = f"{self.soak.tag}-{self.org}-{self.serial}"
        kind = kind or self.rng.choices(["violation", "delivery", "access_request"], [7, 2, 1])[0]
        return partner_report(self.rng, kind, rid, 1)

    def correct(self, rid: str) -> None:
        old = self.current[rid]
        body = partner_report(self.rng, old["kind"], rid, old["revision"] + 1)
        if self.rng.random() < 0.25:
            body["retracted"] = True
        self.submit([body])

    def resend(self) -> None:
        body = self.current[self.rng.choice(sorted(self.current))]
        self.soak.ledger.resends += 1
        _, statuses = self.poster.post([body])
        if statuses is not None and statuses != ["duplicate"]:
            self.soak.ledger.wrong(f"exact resend of {body['report_id']} answered {statuses}")

    def burst(self) -> None:
        """Violations on the latest day in an area nobody else reports from: a spike."""
        area = self.rng.choice(BURST_AREAS)
        reports = []
        for _ in range(self.rng.randint(8, 15)):
            body = self.fresh("violation")
            body.update(area=area, perpetrator="gos", occurred_at="2016-03-20T09:00:00Z")
            reports.append(body)
        self.submit(reports)

    def submit(self, reports: list[dict[str, Any]]) -> None:
        exchange, statuses = self.poster.post(reports)
        if statuses is None:
            return
        for body, status in zip(reports, statuses, strict=True):
            if status == "duplicate" and exchange.attempts == 1:
                self.soak.ledger.wrong(f"new revision {body['report_id']} answered duplicate")
            self.soak.ledger.confirm(self.org, body)
            self.current[body["report_id"]] = body


class TaskforceClient(threading.Thread):
    """Verifications of accepted violations, now and then."""

    def __init__(self, soak: Soak, key: str, seed: int) -> None:
        super().__init__(name="client-taskforce", daemon=True)
        self.soak = soak
        self.rng = random.Random(seed)
        self.poster = Poster(soak.settings.ingest_url, key, soak.ledger)
        self.rounds = 0

    def run(self) -> None:
        try:
            while not self.soak.stopping.wait(self.rng.uniform(2.0, 5.0)):
                with self.soak.ledger.lock:
                    ids = sorted(
                        rid for (rid, _), (_, b) in self.soak.ledger.accepted.items()
                        if b["kind"] == "violation"
                    )  # fmt: skip
                if not ids:
                    continue
                self.rounds += 1
                sample = self.rng.sample(ids, min(len(ids), 5))
                made = taskforce_reports(self.rng, sample, f"{self.soak.tag}-tf{self.rounds}")
                reports = [r for r in made if r["kind"] == "verification"]
                _, statuses = self.poster.post(reports)
                if statuses is not None:
                    for body in reports:
                        self.soak.ledger.confirm("taskforce", body)
        finally:
            self.poster.close()


class Soak:
    def __init__(self, settings: Settings, plan: SoakPlan, receiver: Receiver) -> None:
        self.settings = settings
        self.plan = plan
        self.receiver = receiver
        self.tag = f"s{plan.seed}"
        self.rng = random.Random(plan.seed)
        self.ledger = Ledger()
        self.stopping = threading.Event()
        self.faults: list[Fault] = []
        self.env = {**os.environ, **settings.as_env()}
        store = KeyStore(settings)
        self.keys = {org: store.create(f"{org}-soak", Role.PARTNER, org) for org in PARTNERS}
        self.taskforce = store.create("tf-soak", Role.TASKFORCE)
        self.monitor = store.create("monitor-soak", Role.MONITOR)
        self.canary_key = store.create("canary-soak", Role.PARTNER, "sarc")
        self.canaries = 0

    # -- the stack ------------------------------------------------------------------------
    def truce(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args], env=self.env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def up(self) -> None:
        started = self.truce("up", "--detach")
        if started.returncode != 0:
            raise RuntimeError(f"truce up failed: {started.stdout}{started.stderr}")

    def pid(self, process: str) -> int:
        state = read_state(self.settings) or {}
        return int(state["processes"][process]["pid"])

    # -- faults ---------------------------------------------------------------------------
    def schedule(self) -> Iterator[str]:
        kinds = list(self.plan.kinds)
        while True:
            self.rng.shuffle(kinds)
            yield from kinds
            if self.plan.each_once:
                return

    def inject(self, kind: str) -> Fault:
        fault = Fault(kind, injected=time.monotonic())
        if kind in PROCESS_OF:
            os.kill(self.pid(PROCESS_OF[kind]), signal.SIGKILL)
        elif kind == "pause-broker":
            pid = self.pid("kafka")
            os.kill(pid, signal.SIGSTOP)
            time.sleep(PAUSE_BROKER_S)
            _signal_if_alive(pid, signal.SIGCONT)
        elif kind == "clickhouse-inserts":
            failpoints = Failpoints(self.settings.failpoints_dir)
            failpoints.arm(STORE_INSERT)
            time.sleep(INSERT_FAILURES_S)
            failpoints.disarm(STORE_INSERT)
        elif kind == "pause-worker":
            # failover: measured from the freeze, the canary must count while it lasts
            pid = self.pid(self.rng.choice(["streams", "streams-2"]))
            os.kill(pid, signal.SIGSTOP)
            fault.lifted = time.monotonic()
            try:
                self.canary(fault)
                time.sleep(max(0.0, fault.injected + self.settings.streams_session_timeout_s
                               + 5 - time.monotonic()))  # fmt: skip
            finally:
                _signal_if_alive(pid, signal.SIGCONT)
            return fault
        elif kind == "down-up":
            stopped = self.truce("down")
            if stopped.returncode != 0:
                raise RuntimeError(f"truce down failed: {stopped.stderr}")
            self.up()
        else:
            raise ValueError(f"unknown fault kind {kind}")
        fault.lifted = time.monotonic()
        self.canary(fault)
        return fault

    def canary(self, fault: Fault) -> None:
        """One violation for each partition, in a week of its own; recovered once all count."""
        self.canaries += 1
        week_no = self.canaries
        # weeks before the load's (2016): a later date would move the stream's event-time
        # clock and resolve the spike alerts the clients' bursts raised
        year, week = 2015 - (week_no - 1) // 50, (week_no - 1) % 50 + 1
        day = date.fromisocalendar(year, week, 3).isoformat()
        reports = [
            {
                "report_id": rid, "kind": "violation", "occurred_at": f"{day}T10:00:00Z",
                "area": area, "perpetrator": "gos", "target": "civilians",
                "category": "shelling", "source": "witness", "confidence": "high",
            }
            for rid, area in _covering(self.settings.kafka_partitions, f"{self.tag}-c{week_no}")
        ]  # fmt: skip
        poster = Poster(self.settings.ingest_url, self.canary_key, self.ledger)
        try:
            _, statuses = poster.post(reports)
        finally:
            poster.close()
        if statuses is None:
            raise RuntimeError(f"the canary after {fault.kind} was refused")
        for body in reports:
            self.ledger.confirm("sarc", body)
        label = f"{year}-W{week:02d}"
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {self.monitor}"}) as c:
            while time.monotonic() - fault.lifted < RECOVERY_LIMIT_S:
                try:
                    rows = c.get(
                        f"{self.settings.query_url}/v1/metrics/weekly", params={"week": label}
                    ).json()["rows"]
                except (httpx.HTTPError, ValueError, KeyError):
                    rows = []
                if sum(r["violations"] + r["violations_exempt"] for r in rows) >= len(reports):
                    fault.recovered = time.monotonic()
                    return
                time.sleep(0.2)
        raise RuntimeError(f"no recovery from {fault.kind} within {RECOVERY_LIMIT_S:.0f} s")

    # -- the run --------------------------------------------------------------------------
    def run(self) -> Summary:
        self.up()
        clients: list[threading.Thread] = [
            PartnerClient(self, org, key, self.plan.seed * 100 + i)
            for i, (org, key) in enumerate(list(self.keys.items())[: self.plan.clients])
        ]
        clients.append(TaskforceClient(self, self.taskforce, self.plan.seed * 100 + 99))
        began = time.monotonic()
        for client in clients:
            client.start()
        failures: list[str] = []
        try:
            time.sleep(self.plan.fault_gap_s)
            for kind in self.schedule():
                if not self.plan.each_once and time.monotonic() - began > self.plan.duration_s:
                    break
                self.faults.append(self.inject(kind))
                time.sleep(self.plan.fault_gap_s)
        except RuntimeError as exc:
            failures.append(str(exc))
        finally:
            self.stopping.set()
            for client in clients:
                client.join(timeout=120)
        return self.check(failures)

    def check(self, failures: list[str]) -> Summary:
        failures.extend(self.ledger.anomalies)
        try:
            control.wait_until_idle(self.settings, 300)
        except Exception as exc:  # the checks below say what is missing
            failures.append(f"the pipeline did not go idle: {exc}")
        failures.extend(self.check_metrics())
        verified = self.truce("verify")
        if verified.returncode != 0:
            failures.append(f"truce verify: {verified.stdout[-500:]}{verified.stderr[-500:]}")
        failures.extend(self.check_topic())
        notified, redeliveries, alert_failures = self.check_alerts()
        failures.extend(alert_failures)
        self.truce("down")
        failures.extend(self.check_raw_table())
        return self.summary(failures, notified, redeliveries)

    def reference(self) -> tuple[dict[Any, dict[str, int]], dict[Any, dict[str, int]]]:
        log = [
            {"report": {"revision": 1, **body}, "org": org, "content_hash": ""}
            for org, body in self.ledger.accepted.values()
        ]
        designated = {code for code, party in parties().items() if party.designated}
        return weekly_metrics(log, designated)

    def check_metrics(self) -> list[str]:
        compliance, access = self.reference()
        want = {("weekly", *k): v for k, v in compliance.items() if any(v.values())}
        want |= {("access", *k): v for k, v in access.items() if any(v.values())}
        weeks = sorted({k[1] for k in want})
        got: dict[tuple[str, ...], dict[str, int]] = {}
        headers = {"Authorization": f"Bearer {self.monitor}"}
        with httpx.Client(base_url=self.settings.query_url, timeout=60, headers=headers) as c:
            for week in weeks:
                for row in c.get("/v1/metrics/weekly", params={"week": week}).json()["rows"]:
                    got[("weekly", week, row["area"], row["party"])] = row
                for row in c.get("/v1/metrics/access", params={"week": week}).json()["rows"]:
                    got[("access", week, row["area"])] = row
        fields = {
            "weekly": list(next(iter(compliance.values()), {})),
            "access": list(next(iter(access.values()), {})),
        }
        differences = []
        for key in sorted(set(want) | set(got)):
            expected = {name: want.get(key, {}).get(name, 0) for name in fields[key[0]]}
            actual = {name: got.get(key, {}).get(name, 0) for name in fields[key[0]]}
            if actual != expected:
                differences.append(f"{key}: published {actual}, reference {expected}")
        return [f"metrics differ from the reference fold at {len(differences)} rows: "
                f"{differences[:5]}"] if differences else []  # fmt: skip

    def check_topic(self) -> list[str]:
        names = topic_names(self.settings.topic_prefix)
        values = read_topic(self.settings.bootstrap_servers, names.reports, timeout_s=120)
        written = Counter(
            (e.report.report_id, e.report.revision) for e in map(decode_envelope, values)
        )
        twice = sorted(k for k, n in written.items() if n > 1)
        missing = sorted(set(self.ledger.accepted) - set(written))
        unanswered = sorted(set(written) - set(self.ledger.accepted))
        out = []
        if twice:
            out.append(f"{len(twice)} revisions written twice to the reports topic: {twice[:5]}")
        if missing:
            out.append(f"{len(missing)} accepted revisions not on the topic: {missing[:5]}")
        if unanswered:
            out.append(f"{len(unanswered)} revisions on the topic no client was told were "
                       f"accepted: {unanswered[:5]}")  # fmt: skip
        return out

    def check_alerts(self) -> tuple[int, int, list[str]]:
        """(notifications, redeliveries of one key, failures)."""
        names = topic_names(self.settings.topic_prefix)
        alerts = [
            Alert.model_validate(orjson.loads(v))
            for v in read_topic(self.settings.bootstrap_servers, names.alerts, timeout_s=60)
        ]
        calls = [c for c in self.receiver.on("/soak") if c.answered == 200]
        by_key: dict[str, dict[str, Any]] = {}
        for call in calls:
            by_key.setdefault(call.json()["idempotency_key"], call.json())
        told: Counter[tuple[str, int, str]] = Counter()
        for payload in by_key.values():
            for item in payload["alerts"]:
                told[(item["fingerprint"], item["version"], item["state"])] += 1
        out = []
        twice = [k for k, n in told.items() if n > 1]
        if twice:
            out.append(f"{len(twice)} alert states notified under two keys: {twice[:3]}")
        latest: dict[str, Alert] = {}
        for alert in alerts:
            if alert.rule == "violation_spike":
                held = latest.get(alert.fingerprint)
                if held is None or alert.version > held.version:
                    latest[alert.fingerprint] = alert
        # an alert resolved within the group wait is never announced (as Alertmanager
        # does); one still firing at the end must have been
        firing = {f for f, alert in latest.items() if alert.state == "firing"}
        heard = {fingerprint for fingerprint, _, state in told if state == "firing"}
        if not latest:
            out.append("no spike alert fired: the soak's bursts did not exercise the alerter")
        if firing - heard:
            out.append(f"alerts firing but never notified: {sorted(firing - heard)[:3]}")
        return len(by_key), len(calls) - len(by_key), out

    def check_raw_table(self) -> list[str]:
        db = Database(self.settings.clickhouse_url)
        try:
            rows = db.rows("SELECT report_id, revision, count() AS n FROM raw_reports FINAL "
                           "GROUP BY report_id, revision")  # fmt: skip
        finally:
            db.close()
        stored = {(r["report_id"], r["revision"]): r["n"] for r in rows}
        out = []
        twice = sorted(k for k, n in stored.items() if n > 1)
        missing = sorted(set(self.ledger.accepted) - set(stored))
        if twice:
            out.append(f"{len(twice)} revisions twice in raw_reports: {twice[:5]}")
        if missing:
            out.append(f"{len(missing)} accepted revisions not in raw_reports: {missing[:5]}")
        return out

    def summary(self, failures: list[str], notified: int, redeliveries: int) -> Summary:
        recoveries: dict[str, list[float]] = defaultdict(list)
        waits: dict[str, float] = defaultdict(float)
        previous = 0.0
        for fault in self.faults:
            recoveries[fault.kind].append(fault.recovery_s)
            for exchange in self.ledger.exchanges:  # the requests that met this fault first
                if previous < exchange.started <= fault.recovered:
                    waits[fault.kind] = max(waits[fault.kind], exchange.wait_s)
            previous = fault.recovered
        exchanges = self.ledger.exchanges
        return Summary(
            requests=sum(self.ledger.answers.values()),
            answers=dict(self.ledger.answers.most_common()),
            revisions=len(self.ledger.accepted),
            resends=self.ledger.resends,
            faults=dict(recoveries),
            longest_wait_s=max((e.wait_s for e in exchanges), default=0.0),
            longest_wait_by_fault=dict(waits),
            timeline=[f"{f.at} {f.kind} recovered in {f.recovery_s:.1f} s" for f in self.faults],
            alerts_notified=notified,
            redeliveries=redeliveries,
            failures=failures,
        )


def _signal_if_alive(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the supervisor replaced it meanwhile
        os.kill(pid, sig)


def _covering(partitions: int, prefix: str) -> list[tuple[str, str]]:
    """(report id, area) pairs whose keys reach every partition of the reports topic and of
    the area-keyed topics."""
    areas: dict[int, str] = {}
    for area in [*AREAS, *BURST_AREAS]:
        areas.setdefault(partition_of(area, partitions), area)
    ids: dict[int, str] = {}
    n = 0
    while len(ids) < partitions:
        rid = f"{prefix}-{n}"
        ids.setdefault(partition_of(rid, partitions), rid)
        n += 1
    spread = list(areas.values())
    return [(rid, spread[i % len(spread)]) for i, rid in enumerate(ids.values())] + [
        (f"{prefix}-a{i}", area) for i, area in enumerate(spread)
    ]


def alerter_config(path: Path, receiver: Receiver) -> Path:
    path.write_text(yaml.safe_dump({
        "version": 1,
        "defaults": {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "4h"},
        "retry": {"max_attempts": 50, "initial_backoff": "200ms", "max_backoff": "2s"},
        "receivers": [{"name": "soak", "kind": "webhook", "url": receiver.url("/soak"),
                       "secret": SECRET}],
        "routes": [{"match": {"rule": "violation_spike"}, "receivers": ["soak"]}],
    }))  # fmt: skip
    return path


@contextmanager
def soak_stack(settings: Settings, plan: SoakPlan) -> Iterator[Soak]:
    """A soak on ``settings`` (its own TRUCE_HOME and broker), stopped afterwards."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with http_receiver() as receiver:
        config = alerter_config(settings.home.parent / f"alerter-{uuid.uuid4().hex[:6]}.yaml",
                                receiver)  # fmt: skip
        soak = Soak(settings.model_copy(update={"alerter_config": config}), plan, receiver)
        try:
            yield soak
        finally:
            control.stop_stack(soak.settings)
