"""The alerter end to end on the real broker: violation reports go through the ingest API
and the real stream worker; the alerter (a real process) notifies local receivers that
the test runs. Each test uses its own area and receivers, so the tests share one ingest
and one stream worker but never each other's alerts."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import orjson
import pytest
import xmlschema
import yaml
from aiosmtpd.controller import Controller

from core.kafka import consumer_lag
from core.settings import Settings
from schemas import Alert, AlertDelivery, areas, group_names, topic_names
from services.runtime.topics import ensure_all_topics
from tests.conftest import free_port, isolated_settings
from tests.support.ingest import make_keys, violation
from tests.support.receiver import Behaviour, http_receiver
from tests.support.services import read_topic, running_module, service_env

pytestmark = pytest.mark.integration

CAP_XSD = Path(__file__).resolve().parents[1] / "data" / "cap" / "CAP-v1.2.xsd"
CAP_NS = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM_NS = "{http://www.w3.org/2005/Atom}"
SECRET = "a-webhook-secret-of-32-characters"


@dataclass
class Stack:
    settings: Settings
    keys: dict[str, str]
    tmp: Path

    def post(self, reports: list[dict[str, Any]]) -> None:
        response = httpx.post(
            f"{self.settings.ingest_url}/v1/reports/batch",
            json={"reports": reports},
            headers={"Authorization": f"Bearer {self.keys['sarc']}"},
            timeout=30,
        )
        assert response.status_code == 202, response.text

    def alerts(self, area: str) -> list[Alert]:
        values = read_topic(self.settings.bootstrap_servers, topic_names(self.prefix).alerts)
        found = [Alert.model_validate(orjson.loads(v)) for v in values]
        return [a for a in found if a.area == area and a.rule == "violation_spike"]

    def deliveries(self, receiver: str) -> list[AlertDelivery]:
        values = read_topic(self.settings.bootstrap_servers, topic_names(self.prefix).deliveries)
        found = [AlertDelivery.model_validate_json(v) for v in values]
        return [d for d in found if d.receiver == receiver]

    @property
    def prefix(self) -> str:
        return self.settings.topic_prefix

    def alerter_settings(self, config: dict[str, Any], **overrides: Any) -> Settings:
        path = self.tmp / f"alerter-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(config))
        return self.settings.model_copy(
            update={"alerter_config": path, "alerter_port": free_port(), **overrides}
        )

    def alerter(self, settings: Settings) -> Any:
        return running_module(
            "services.alerter",
            service_env(settings),
            f"{settings.alerter_url}/readyz",
            self.tmp / "alerter.log",
        )

    def settled(self) -> bool:
        """The alerter group has committed every alerts record (all delivered or done)."""
        group = group_names(self.prefix).alerter
        lag = consumer_lag(
            self.settings.bootstrap_servers, group, [topic_names(self.prefix).alerts]
        )
        return not any(lag.values())


@pytest.fixture(scope="module")
def stack(broker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("alerter")
    settings = isolated_settings(
        tmp / "home",
        kafka_bootstrap=broker_settings.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        streams_port=free_port(),
    )
    ensure_all_topics(settings)
    keys = make_keys(settings)
    env = service_env(settings)
    with (
        running_module("services.ingest", env, f"{settings.ingest_url}/readyz", tmp / "i.log"),
        running_module("streams", env, f"{settings.streams_url}/readyz", tmp / "s.log"),
    ):
        yield Stack(settings, keys, tmp)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def burst(area: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    """A quiet February (one violation every five days), then ``count`` on 1 March."""
    quiet = [
        violation(f"{area}-q{d}", area=area, occurred_at=f"2016-02-{d:02d}T09:00:00Z")
        for d in range(1, 27, 5)
    ]
    spike = [
        violation(f"{area}-b{i}", area=area, occurred_at=f"2016-03-01T{6 + i:02d}:00:00Z")
        for i in range(start, start + count)
    ]
    return (quiet if start == 0 else []) + spike


def retracted(area: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` reports of the spike, withdrawn."""
    spike = [r for r in burst(area, count) if "-b" in r["report_id"]]
    return [{**r, "revision": 2, "retracted": True} for r in spike]


def webhook(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "webhook", "url": url, "secret": SECRET, **extra}


def config(area: str, receivers: list[dict[str, Any]], **retry: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "defaults": {"group_wait": "2s", "group_interval": "1s", "repeat_interval": "4h"},
        "retry": {"max_attempts": 3, "initial_backoff": "100ms", "max_backoff": "1s", **retry},
        "receivers": receivers,
        "routes": [
            {
                "match": {"area": area, "rule": "violation_spike"},
                "receivers": [r["name"] for r in receivers],
            }
        ],
    }


def metric(settings: Settings, name: str, receiver: str) -> float:
    text = httpx.get(f"{settings.alerter_url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f'{name}{{receiver="{receiver}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def signed(call: Any) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), call.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(call.headers["x-truce-signature"], expected)


# -- the whole life of an alert ------------------------------------------------------------
def test_burst_notifies_once_then_updates_then_cancels(stack: Stack) -> None:
    area = "zabadani"
    with http_receiver() as hook:
        settings = stack.alerter_settings(config(area, [webhook("hook-life", hook.url("/h"))]))
        with stack.alerter(settings):
            stack.post(burst(area, 6))
            first = wait_for("the first webhook call", lambda: hook.on("/h"))[0]
            wait_for("the alerter to commit everything", stack.settled)
            firing = [a for a in stack.alerts(area) if a.state == "firing"]
            assert len(hook.on("/h")) == 1  # one call however many versions the burst made
            body = first.json()
            assert signed(first)
            assert first.headers["idempotency-key"] == body["idempotency_key"]
            assert body["status"] == "firing"
            [sent] = body["alerts"]
            assert sent["msg_type"] == "Alert"
            assert sent["area"] == area
            assert sent["labels"]["governorate"] == "Rural Damascus"
            assert sent["version"] == max(a.version for a in firing)

            stack.post(burst(area, 4, start=6))  # the same day gets worse: an Update
            wait_for("an update", lambda: len(hook.on("/h")) >= 2)
            update = hook.on("/h")[1].json()
            assert signed(hook.on("/h")[1])
            assert [a["msg_type"] for a in update["alerts"]] == ["Update"]
            assert update["alerts"][0]["fingerprint"] == sent["fingerprint"]
            assert update["alerts"][0]["value"] > sent["value"]
            assert update["idempotency_key"] != body["idempotency_key"]

            stack.post(retracted(area, 10))  # the reports behind it are withdrawn: a Cancel
            cancel = wait_for(
                "the cancel",
                lambda: [c for c in hook.on("/h") if c.json()["status"] == "resolved"],
            )[0].json()
            assert [a["msg_type"] for a in cancel["alerts"]] == ["Cancel"]
            assert cancel["alerts"][0]["fingerprint"] == sent["fingerprint"]
            wait_for("the alerter to commit everything", stack.settled)
            assert metric(settings, "truce_alerter_notifications_sent_total", "hook-life") == len(
                hook.on("/h")
            )
    outcomes = {(d.msg_type, d.outcome) for d in stack.deliveries("hook-life")}
    assert outcomes == {("Alert", "delivered"), ("Update", "delivered"), ("Cancel", "delivered")}


# -- silences ------------------------------------------------------------------------------
def test_a_silence_suppresses_the_notification(stack: Stack) -> None:
    area = "jobar"
    with http_receiver() as hook:
        settings = stack.alerter_settings(config(area, [webhook("hook-muted", hook.url("/m"))]))
        taskforce = {"Authorization": f"Bearer {stack.keys['taskforce']}"}
        monitor = {"Authorization": f"Bearer {stack.keys['monitor']}"}
        url = f"{settings.alerter_url}/v1/silences"
        with stack.alerter(settings):
            refused = httpx.post(url, json={"matchers": {"area": area}, "duration": "1h"},
                                 headers=monitor)  # fmt: skip
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"
            created = httpx.post(
                url,
                json={"matchers": {"area": area}, "duration": "1h", "comment": "known shelling"},
                headers=taskforce,
            )
            assert created.status_code == 201, created.text
            silence = created.json()
            assert silence["status"] == "active"
            listed = httpx.get(url, headers=monitor).json()
            assert silence["silence_id"] in [s["silence_id"] for s in listed]

            stack.post(burst(area, 6))
            muted = wait_for(
                "the silenced delivery record",
                lambda: [d for d in stack.deliveries("hook-muted") if d.outcome == "silenced"],
            )
            wait_for("the alerter to commit everything", stack.settled)
            assert hook.on("/m") == []
            assert muted[0].error == f"silence {silence['silence_id']}"
            assert metric(settings, "truce_alerter_alerts_silenced_total", "hook-muted") >= 1

            expired = httpx.delete(f"{url}/{silence['silence_id']}", headers=taskforce)
            assert expired.status_code == 200
            assert expired.json()["status"] == "expired"
            assert httpx.delete(f"{url}/nope", headers=taskforce).status_code == 404


def test_silences_from_the_cli_reach_the_running_alerter(stack: Stack) -> None:
    settings = stack.alerter_settings(config("bludan", []) | {"routes": []})
    env = {**os.environ, **service_env(settings)}

    def truce(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", "alerts", "silence", *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    monitor = {"Authorization": f"Bearer {stack.keys['monitor']}"}
    url = f"{settings.alerter_url}/v1/silences"
    with stack.alerter(settings):
        made = truce("create", "--match", "area=bludan", "--match", "rule=violation_spike",
                     "--for", "2h", "--comment", "convoy negotiations")  # fmt: skip
        assert made.returncode == 0, made.stderr
        silence_id = made.stdout.strip().splitlines()[-1]

        def seen(status: str) -> bool:
            found = {s["silence_id"]: s for s in httpx.get(url, headers=monitor).json()}
            return silence_id in found and found[silence_id]["status"] == status

        wait_for("the alerter to see the CLI's silence", lambda: seen("active"))
        listed = truce("list", "--json")
        assert silence_id in listed.stdout
        assert truce("expire", silence_id).returncode == 0
        wait_for("the alerter to see it expire", lambda: seen("expired"))
        bad = truce("create", "--match", "colour=red", "--for", "1h")
        assert bad.returncode == 1
        assert "error:" in bad.stderr
        assert "hint:" in bad.stderr
        assert "Traceback" not in bad.stderr
        misspelled = truce("create", "--match", "area=bludann", "--for", "1h")
        assert misspelled.returncode == 1
        assert "no alert has area='bludann'" in misspelled.stderr
        assert "did you mean area=bludan" in misspelled.stderr
        again = truce("create", "--match", "area=bludan", "--for", "2h")
        second_id = again.stdout.strip().splitlines()[-1]
        listed_table = subprocess.run(
            [sys.executable, "-m", "services.cli", "alerts", "silence", "list"],
            env={**env, "COLUMNS": "60"}, capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
        assert second_id in listed_table  # whole, even on a narrow terminal
        by_prefix = truce("expire", second_id[:6])
        assert by_prefix.returncode == 0, by_prefix.stderr
        assert f"Silence {second_id} expired." in by_prefix.stdout


def test_an_alertmanager_receiver_gets_alertmanager_s_body_and_a_preview_shows_the_mute(
    stack: Stack,
) -> None:
    area = "talbiseh"  # an area no other test of this module's stack bursts
    with http_receiver() as hook:
        receiver = webhook("am", hook.url("/am"), format="alertmanager")
        settings = stack.alerter_settings(config(area, [receiver]))
        taskforce = {"Authorization": f"Bearer {stack.keys['taskforce']}"}
        url = f"{settings.alerter_url}/v1/silences"
        with stack.alerter(settings):
            stack.post(burst(area, 6))
            body = wait_for("the Alertmanager body", lambda: hook.on("/am"))[0].json()
            refused = httpx.post(url, json={"matchers": {"area": "tallbiseh"}, "duration": "1h"},
                                 headers=taskforce)  # fmt: skip
            assert refused.status_code == 422
            assert refused.json()["hint"] == "did you mean area=talbiseh?"
            spike_here = {"area": area, "rule": "violation_spike"}
            preview = httpx.post(f"{url}?dry_run=true", headers=taskforce,
                                 json={"matchers": spike_here, "duration": "1h"})  # fmt: skip
            assert preview.status_code == 201, preview.text
            assert [m["fingerprint"] for m in preview.json()["mutes"]] == [
                body["alerts"][0]["fingerprint"]
            ]
            stored = {x["silence_id"] for x in httpx.get(url, headers=taskforce).json()}
            assert preview.json()["silence_id"] not in stored  # a preview stores nothing
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "am"
    [alert] = body["alerts"]
    assert alert["labels"]["alertname"] == "violation_spike"
    assert alert["labels"]["area"] == area
    assert alert["annotations"]["summary"].startswith("Ceasefire violation spike in Talbiseh")
    assert f"/dashboard#week=2016-W09&area={area}" in alert["generatorURL"]
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"


# -- failures, dead letters, slow receivers --------------------------------------------------
def test_a_failing_receiver_is_retried_then_dead_lettered_and_blocks_no_one(
    stack: Stack,
) -> None:
    area = "azaz"
    release = threading.Event()
    with http_receiver() as hook:
        hook.behaviours["/bad"] = Behaviour(status=500)
        hook.behaviours["/slow"] = Behaviour(hold=release)
        receivers = [
            webhook("hook-bad", hook.url("/bad")),
            webhook("hook-slow", hook.url("/slow"), timeout="60s"),
            webhook("hook-good", hook.url("/good")),
        ]
        settings = stack.alerter_settings(config(area, receivers))
        with stack.alerter(settings):
            stack.post(burst(area, 6))
            wait_for("the slow receiver to be called", lambda: hook.on("/slow"))
            wait_for("the good receiver's message", lambda: hook.on("/good"))
            wait_for(
                "the dead letter",
                lambda: [d for d in stack.deliveries("hook-bad") if d.outcome == "dead_lettered"],
            )
            assert hook.on("/slow")[0].answered is None  # still held: it blocked no one
            assert not stack.settled()  # and its record is not committed while it is held
            release.set()
            wait_for("the alerter to commit everything", stack.settled)
            bad = [d.outcome for d in stack.deliveries("hook-bad")]
            assert bad == ["failed", "failed", "failed", "dead_lettered"]
            assert len(hook.on("/bad")) == 3
            assert len({c.headers["idempotency-key"] for c in hook.on("/bad")}) == 1
            assert [c.headers["x-truce-delivery-attempt"] for c in hook.on("/bad")] == [
                "1", "2", "3"
            ]  # fmt: skip
            assert [d.outcome for d in stack.deliveries("hook-good")] == ["delivered"]
            assert [d.outcome for d in stack.deliveries("hook-slow")] == ["delivered"]
            assert metric(settings, "truce_alerter_delivery_failures_total", "hook-bad") == 3
            assert metric(settings, "truce_alerter_delivery_retries_total", "hook-bad") == 2
            assert metric(settings, "truce_alerter_notifications_dead_lettered_total",
                          "hook-bad") == 1  # fmt: skip
            assert metric(settings, "truce_alerter_notifications_sent_total", "hook-good") == 1


# -- restarts ------------------------------------------------------------------------------
def test_sigkill_before_delivery_then_restart_delivers_exactly_once(stack: Stack) -> None:
    area = "nubl"
    held = threading.Event()
    with http_receiver() as hook:
        hook.behaviours["/k"] = Behaviour(hold=held, hold_first_only=True)
        settings = stack.alerter_settings(config(area, [webhook("hook-kill", hook.url("/k"))]))
        with stack.alerter(settings) as alerter:
            stack.post(burst(area, 6))
            wait_for("the alert to reach the receiver", lambda: hook.on("/k"))
            alerter.kill()  # SIGKILL while the delivery is in flight
            alerter.wait(30)
        held.set()
        assert stack.deliveries("hook-kill") == []
        with stack.alerter(settings):
            wait_for("the redelivery", lambda: len(hook.on("/k")) >= 2)
            wait_for("the alerter to commit everything", stack.settled)
        with stack.alerter(settings):  # a second restart sends nothing again
            wait_for("the alerter to settle again", stack.settled)
            time.sleep(1)
        calls = hook.on("/k")
        assert len(calls) == 2
        assert calls[0].json() == calls[1].json()  # the same notification, same key
        delivered = [d for d in stack.deliveries("hook-kill") if d.outcome == "delivered"]
        assert len(delivered) == 1
        assert delivered[0].delivery_id == calls[1].headers["idempotency-key"]


# -- CAP -----------------------------------------------------------------------------------
def test_cap_feed_validates_against_the_cap_1_2_schema(stack: Stack) -> None:
    area = "manbij"
    stack.post(burst(area, 6))
    fired = wait_for("the spike", lambda: stack.alerts(area))
    stack.post(burst(area, 3, start=6))
    wait_for("an update", lambda: len(stack.alerts(area)) > len(fired))
    stack.post(retracted(area, 9))
    wait_for("the resolution", lambda: [a for a in stack.alerts(area) if a.state == "resolved"])
    schema = xmlschema.XMLSchema(CAP_XSD)
    settings = stack.alerter_settings(config(area, []) | {"routes": []})
    with stack.alerter(settings):  # history rebuilt from the topic at start
        url = f"{settings.alerter_url}/v1/alerts/cap"
        assert httpx.get(url).status_code == 401
        partner = {"Authorization": f"Bearer {stack.keys['sarc']}"}
        assert httpx.get(url, headers=partner).status_code == 403
        monitor = {"Authorization": f"Bearer {stack.keys['monitor']}"}
        feed = httpx.get(url, headers=monitor)
        assert feed.status_code == 200
        assert feed.headers["content-type"].startswith("application/atom+xml")
        root = ET.fromstring(feed.content)
        documents = []
        for entry in root.iter(f"{ATOM_NS}entry"):
            link = entry.find(f"{ATOM_NS}link").get("href")
            one = httpx.get(link, headers=monitor)
            assert one.headers["content-type"].startswith("application/cap+xml")
            schema.validate(one.content)  # raises on any violation of the official XSD
            [embedded] = list(entry.find(f"{ATOM_NS}content"))
            schema.validate(ET.tostring(embedded))
            documents.append(ET.fromstring(one.content))
    spikes = [a for a in stack.alerts(area)]
    ours = [d for d in documents if d.findtext(f"{CAP_NS}incidents") == spikes[0].fingerprint]
    ours.sort(key=lambda d: int(d.findtext(f"{CAP_NS}identifier").rsplit("-", 1)[1]))
    types = [d.findtext(f"{CAP_NS}msgType") for d in ours]
    assert types[0] == "Alert"
    assert types[-1] == "Cancel"
    assert set(types[1:-1]) == {"Update"}
    assert len(ours) == len(spikes)
    first_id = ours[0].findtext(f"{CAP_NS}identifier")
    assert first_id in ours[-1].findtext(f"{CAP_NS}references")
    place = areas()[area]
    info = ours[0].find(f"{CAP_NS}info")
    assert info.findtext(f"{CAP_NS}area/{CAP_NS}areaDesc") == f"{place.name}, {place.governorate}"
    lat_lon = info.findtext(f"{CAP_NS}area/{CAP_NS}circle").split(" ")[0]
    assert lat_lon == f"{place.lat:.4f},{place.lon:.4f}"


# -- Slack and email -----------------------------------------------------------------------
class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def test_slack_and_email_receivers(stack: Stack) -> None:
    area = "al_bab"
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        with http_receiver() as hook:
            receivers = [
                {"name": "slack-tf", "kind": "slack", "url": hook.url("/slack")},
                {"name": "mail-oncall", "kind": "email", "to": ["oncall@example.org"]},
            ]
            settings = stack.alerter_settings(
                config(area, receivers), smtp_host="127.0.0.1", smtp_port=smtp.port
            )
            with stack.alerter(settings):
                stack.post(burst(area, 6))
                slack = wait_for("the Slack message", lambda: hook.on("/slack"))[0].json()
                wait_for("the email", lambda: mailbox.messages)
                wait_for("the alerter to commit everything", stack.settled)
    finally:
        smtp.stop()
    assert "FIRING" in slack["text"]
    assert areas()[area].name in slack["text"]  # the name people know, not the code
    assert slack["blocks"][0]["type"] == "header"
    assert any(area in b.get("text", {}).get("text", "") for b in slack["blocks"][1:])
    [mail] = mailbox.messages
    assert mail.rcpt_tos == ["oncall@example.org"]
    text = mail.content.decode()
    [delivery] = stack.deliveries("mail-oncall")
    assert delivery.outcome == "delivered"
    assert f"Message-ID: <{delivery.delivery_id}@truce.alerts>" in text
    assert "Subject: [Truce FIRING] Ceasefire violation spike in Al-Bab (Aleppo)" in text
    said = email.message_from_bytes(mail.content, policy=email.policy.default).get_content()
    assert "What to do: " in said
    assert "/dashboard#week=2016-W09&area=al_bab" in said  # the week of 1 March 2016
