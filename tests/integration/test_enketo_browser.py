"""Enketo, the OpenRosa web client, against the real stack (CONTRACT 10): Debian's headless
Chromium (driven by Playwright, never a downloaded browser) downloads the generated XForm
from the ingest service, enketo-transformer turns it into Enketo's HTML form, enketo-core
runs it; the test fills it through the page as a monitor in the field would, and submits
it to ``/submission`` the way Enketo Express does (``HEAD``, then a multipart
``xml_submission_file``). Real Kafka, the real stream worker and the store: the report is
read back from the query service. An edit is revision 2; an offline queue replayed twice
gives duplicates.

The Enketo build comes from npm through deploy/enketo.sh (run by ./run-tests)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, sync_playwright

from core.keys import KeyStore, Role
from core.settings import Settings
from services.runtime.topics import ensure_all_topics
from tests.conftest import isolated_settings
from tests.support.services import running_module, service_env

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CLIENT_PAGE = "/enketo-test-client"
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<script src="/enketo-test-client.js"></script></head><body><div id="host"></div><script>
const auth = (user, key) => ({Authorization: 'Basic ' + btoa(user + ':' + key),
                              'X-OpenRosa-Version': '1.0'});
window.truceLoad = async ({formId, user, key, instanceStr, submitted}) => {
  const xform = await (await fetch('/forms/' + formId, {headers: auth(user, key)})).text();
  const t = await window.enketoTransform({xform});
  const host = document.getElementById('host');
  host.innerHTML = t.form;
  const data = {modelStr: t.model};
  if (instanceStr) { data.instanceStr = instanceStr; data.submitted = submitted; }
  window.truceForm = new window.EnketoForm(host.querySelector('form'), data, {language: 'en'});
  return window.truceForm.init();
};
window.truceValidate = () => window.truceForm.validate();
window.truceRecord = () => ({xml: window.truceForm.getDataStr(),
                            instanceID: window.truceForm.instanceID,
                            deprecatedID: window.truceForm.deprecatedID});
window.truceSend = async ({user, key, xml}) => {  // as Enketo Express's submission queue
  const head = await fetch('/submission', {method: 'HEAD', headers: auth(user, key)});
  const body = new FormData();
  body.append('xml_submission_file', new Blob([xml], {type: 'text/xml'}),
              'xml_submission_file.xml');
  const post = await fetch('/submission', {method: 'POST', headers: auth(user, key), body});
  return {head: head.status, accept: head.headers.get('X-OpenRosa-Accept-Content-Length'),
          status: post.status, text: await post.text()};
};
</script></body></html>"""


@dataclass
class Stack:
    settings: Settings
    partner: str
    monitor: str

    def report(self, report_id: str, revisions: int, timeout_s: float = 60) -> dict[str, Any]:
        """The query service's view once it holds ``revisions`` revisions."""
        deadline = time.monotonic() + timeout_s
        headers = {"Authorization": f"Bearer {self.monitor}"}
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = httpx.get(
                f"{self.settings.query_url}/v1/reports/{report_id}", headers=headers, timeout=30
            )
            if response.status_code == 200:
                body = response.json()
                if len(body["revisions"]) >= revisions and body["current"] is not None:
                    return body
            time.sleep(0.5)
        raise AssertionError(f"report {report_id} not in the store in time: {body}")


def enketo_bundle() -> Path:
    """The Enketo build (deploy/enketo.sh is idempotent: a cache hit is instant)."""
    out = subprocess.run(
        [str(REPO / "deploy" / "enketo.sh")], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"deploy/enketo.sh failed: {out.stderr}"
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def stack(broker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("enketo-home")
    settings = isolated_settings(
        home,
        kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
    )
    ensure_all_topics(settings)
    keys = KeyStore(settings)
    stack = Stack(
        settings,
        keys.create("sarc-1", Role.PARTNER, "sarc"),
        keys.create("monitor-1", Role.MONITOR),
    )
    env = service_env(settings)
    logs = home / "logs"
    with (
        running_module("services.ingest", env, f"{settings.ingest_url}/readyz", logs / "i.log"),
        running_module("services.store", env, f"{settings.query_url}/readyz", logs / "s.log"),
        running_module("streams", env, f"{settings.streams_url}/readyz", logs / "w.log"),
    ):
        yield stack


@pytest.fixture(scope="module")
def page(stack: Stack) -> Iterator[Page]:
    assert CHROMIUM.exists(), "run deploy/browser.sh (./run-tests does) to install chromium"
    bundle = enketo_bundle().read_bytes()
    origin = stack.settings.ingest_url

    def route(route: Route) -> None:
        url = route.request.url
        if url == origin + CLIENT_PAGE:
            route.fulfill(body=PAGE, content_type="text/html; charset=utf-8")
        elif url == origin + "/enketo-test-client.js":
            route.fulfill(body=bundle, content_type="text/javascript")
        elif url.startswith(origin + "/"):
            route.continue_()  # the form download and the submissions reach the real service
        else:
            route.abort()  # map tiles and the like: the test calls nothing outside

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(timezone_id="Asia/Damascus", locale="en-GB")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.route("**/*", route)
        page.goto(origin + CLIENT_PAGE)
        yield page
        browser.close()
    assert errors == []


def load(page: Page, stack: Stack, instance: str | None = None) -> None:
    args = {"formId": "truce_violation", "user": "sarc", "key": stack.partner,
            "instanceStr": instance, "submitted": instance is not None}  # fmt: skip
    assert page.evaluate("args => window.truceLoad(args)", args) == []


def fill(page: Page, name: str, value: str) -> None:
    field = page.locator(f'input[name="/data/{name}"]')
    field.fill(value)
    field.press("Tab")  # Enketo updates its model on change


def choose(page: Page, name: str, value: str) -> None:
    page.locator(f'input[name="/data/{name}"][value="{value}"]').check()


def send(page: Page, stack: Stack, xml: str) -> dict[str, Any]:
    args = {"user": "sarc", "key": stack.partner, "xml": xml}
    result: dict[str, Any] = page.evaluate("args => window.truceSend(args)", args)
    assert result["head"] == 204
    assert int(result["accept"]) > len(xml)
    return result


def test_a_form_filled_in_enketo_is_a_report_and_its_edit_revision_two(
    page: Page, stack: Stack
) -> None:
    load(page, stack)
    assert page.locator("text=People killed").count() == 1  # the generated labels
    fill(page, "occurred_at", "2016-02-28T10:15")
    choose(page, "area", "daraya")
    choose(page, "perpetrator", "gos")
    choose(page, "target", "civilians")
    choose(page, "category", "shelling")
    fill(page, "killed", "-1")
    choose(page, "source", "staff")
    choose(page, "confidence", "high")
    fill(page, "description", "filled in Enketo")
    assert page.evaluate("() => window.truceValidate()") is False  # the form's constraint
    fill(page, "killed", "3")
    fill(page, "injured", "4")
    assert page.evaluate("() => window.truceValidate()") is True
    first = page.evaluate("() => window.truceRecord()")
    assert first["instanceID"].startswith("uuid:")

    sent = send(page, stack, first["xml"])
    assert sent["status"] == 201, sent["text"]
    report_id = first["instanceID"]
    assert f"Report {report_id} revision 1 received." in sent["text"]
    stored = stack.report(report_id, 1)
    assert stored["owner"] == "sarc"
    current = stored["current"]
    assert (current["kind"], current["area"], current["killed"], current["injured"]) == (
        "violation", "daraya", 3, 4,
    )  # fmt: skip
    assert current["occurred_at"] == "2016-02-28T08:15:00Z"  # entered in Damascus time
    assert current["description"] == "filled in Enketo"

    # the monitor reopens the sent record and corrects it: Enketo marks it an edit
    load(page, stack, instance=first["xml"])
    fill(page, "killed", "5")
    assert page.evaluate("() => window.truceValidate()") is True
    edit = page.evaluate("() => window.truceRecord()")
    assert edit["deprecatedID"] == report_id
    assert edit["instanceID"] != report_id
    sent = send(page, stack, edit["xml"])
    assert sent["status"] == 201, sent["text"]
    assert f"Report {report_id} revision 2 received." in sent["text"]
    stored = stack.report(report_id, 2)
    assert [r["revision"] for r in stored["revisions"]] == [1, 2]
    assert (stored["current"]["revision"], stored["current"]["killed"]) == (2, 5)

    # the offline queue (both records) replayed twice: duplicates, nothing doubles
    for _ in range(2):
        for record, revision in ((first, 1), (edit, 2)):
            sent = send(page, stack, record["xml"])
            assert sent["status"] == 201
            assert f"revision {revision} already received" in sent["text"]
    stored = stack.report(report_id, 2)
    assert [r["revision"] for r in stored["revisions"]] == [1, 2]
