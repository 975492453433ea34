"""Sending the scenario through the public ingest API the way partners do: batches per
organisation and day (JSON, or a CSV sheet for the organisations that keep spreadsheets),
retried on 429/503 after the server's ``Retry-After``."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from core.errors import TruceError
from schemas.columns import COLUMNS
from services.demo.openrosa import OpenRosaClient, outcome
from services.demo.scenario import Report, Scenario, Submission

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class ReplayError(TruceError):
    """The ingest API refused part of the scenario."""


class _TryAgain(Exception):
    def __init__(self, wait_s: float) -> None:
        super().__init__(f"retry in {wait_s}s")
        self.wait_s = wait_s


@dataclass
class ReplayTotals:
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    retries: int = 0
    sheets: int = 0
    """Requests sent as CSV sheets."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):  # a list cell (an incident's members), space separated
        return " ".join(str(v) for v in value)
    return str(value)


def sheet(reports: Sequence[Report]) -> bytes:
    """The reports as a partner's CSV sheet: a column for each field any of them has, in
    the import templates' order."""
    kinds = dict.fromkeys(str(r["kind"]) for r in reports)
    order = dict.fromkeys(c.name for kind in kinds for c in COLUMNS[kind])
    names = [name for name in order if any(name in r for r in reports)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names)
    writer.writerows([_cell(r.get(name)) for name in names] for r in reports)
    return out.getvalue().encode()


def _wait(state: RetryCallState) -> float:
    """The server's Retry-After when it gave one, else exponential backoff with jitter."""
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    if isinstance(error, _TryAgain) and error.wait_s > 0:
        return error.wait_s
    return float(wait_exponential_jitter(initial=0.2, max=5)(state))


class Replayer:
    """Posts submissions with the key of the organisation that sends each of them; the
    share ``openrosa`` of first field reports goes through OpenRosa, as from a phone."""

    def __init__(
        self,
        ingest_url: str,
        keys: Mapping[str, str],
        timeout_s: float = 60,
        spreadsheets: Collection[str] = (),
        openrosa: float = 0.0,
    ) -> None:
        self.client = httpx.Client(base_url=ingest_url, timeout=timeout_s)
        self.keys = keys
        self.spreadsheets = frozenset(spreadsheets)
        self.totals = ReplayTotals()
        self.phone = OpenRosaClient(self.client, openrosa)

    def close(self) -> None:
        self.client.close()

    @retry(
        retry=retry_if_exception_type((_TryAgain, httpx.TransportError)),
        wait=_wait,
        stop=stop_after_delay(120),
        reraise=True,
    )
    def _post(self, submission: Submission, reports: list[Report]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[submission.org]}"}
        if submission.org in self.spreadsheets:
            headers["Content-Type"] = "text/csv"
            content = sheet(reports)
            response = self.client.post("/v1/reports/import", content=content, headers=headers)
        else:
            batch = {"reports": reports}
            response = self.client.post("/v1/reports/batch", json=batch, headers=headers)
        return self._retried(response)

    def _retried(self, response: httpx.Response) -> httpx.Response:
        if response.status_code in RETRY_STATUSES:
            self.totals.retries += 1
            raise _TryAgain(float(response.headers.get("Retry-After", "0") or 0))
        return response

    @retry(
        retry=retry_if_exception_type((_TryAgain, httpx.TransportError)),
        wait=_wait,
        stop=stop_after_delay(120),
        reraise=True,
    )
    def _submit(self, submission: Submission, report: Report) -> httpx.Response:
        key = self.keys[submission.org]
        return self._retried(self.phone.submit(submission.org, key, report))

    def send(self, submission: Submission) -> None:
        by_phone = [r for r in submission.reports if self.phone.takes(r)]
        for report in by_phone:
            answer = self._submit(submission, report)
            status, text = outcome(answer)
            if answer.status_code != 201:
                raise ReplayError(
                    f"/submission refused {report['report_id']} of {submission.org} for "
                    f"{submission.day}: {answer.status_code} {text}"
                )
            self.totals.requests += 1
            self.totals.accepted += status == "accepted"
            self.totals.duplicates += status == "duplicate"
        rest = [r for r in submission.reports if not self.phone.takes(r)]
        if rest:
            self._send_batch(submission, rest)

    def _send_batch(self, submission: Submission, reports: list[Report]) -> None:
        response = self._post(submission, reports)
        if response.status_code != 202:
            problem = response.json() if response.content else {}
            detail = problem.get("detail", response.text)
            raise ReplayError(
                f"the ingest API refused a batch of {submission.org} for {submission.day}: "
                f"{response.status_code} {detail}",
                hint="a second demo after a changed scenario conflicts with the first: "
                "start from an empty TRUCE_HOME",
            )
        body = response.json()
        self.totals.requests += 1
        self.totals.sheets += submission.org in self.spreadsheets
        self.totals.accepted += int(body["accepted"])
        self.totals.duplicates += int(body["duplicates"])


def replay(
    scenario: Scenario,
    ingest_url: str,
    keys: Mapping[str, str],
    on_sent: Callable[[int], None] = lambda n: None,
    submissions: Sequence[Submission] | None = None,
    openrosa: float = 0.0,
) -> ReplayTotals:
    """Send every submission (or those given) in order; ``on_sent`` gets the reports of
    each request; the share ``openrosa`` of first field reports goes by OpenRosa."""
    replayer = Replayer(
        ingest_url,
        keys,
        spreadsheets=scenario.timeline.organisations.spreadsheets,
        openrosa=openrosa,
    )
    try:
        for submission in scenario.submissions if submissions is None else submissions:
            replayer.send(submission)
            on_sent(len(submission.reports))
        return replayer.totals
    finally:
        replayer.close()
