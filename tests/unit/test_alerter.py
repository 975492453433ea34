"""The alerter's pure parts: routing configuration (validation, reload), route matching,
offset bookkeeping, silences, idempotency keys, signatures and CAP documents."""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import yaml

from core.errors import ConfigError
from schemas import Alert, Silence
from services.alerter.cap import atom_feed, cap_document
from services.alerter.channels import signature, slack_body
from services.alerter.config import ConfigSource, load_config, parse_duration
from services.alerter.dispatcher import targets
from services.alerter.history import AlertHistory
from services.alerter.labels import alert_labels
from services.alerter.notification import Item, Notification
from services.alerter.offsets import OffsetTracker, RecordRef
from services.alerter.silences import SilenceError, by_prefix, matching, new_silence
from services.alerter.wording import RULES, description

CAP_XSD = Path(__file__).resolve().parents[1] / "data" / "cap" / "CAP-v1.2.xsd"
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "alerter.yaml"
T0 = datetime(2016, 3, 1, 8, 0, tzinfo=UTC)
SENT = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)  # when Truce wrote the alert records


def alert(version: int, state: str = "firing", **fields: Any) -> Alert:
    values: dict[str, Any] = {
        "fingerprint": "0123456789abcdef", "rule": "violation_spike", "area": "daraya",
        "party": "", "window": "P1D", "state": state, "severity": "severe",
        "summary": "daraya: 9 violations on 2016-03-01", "value": 9.0, "threshold": 5.0,
        "starts_at": T0, "updated_at": T0 + timedelta(hours=version), "version": version,
        "report_ids": ["b1", "b2"],
    }  # fmt: skip
    values.update(fields)
    return Alert.model_validate(values)


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


ROUTING: dict[str, Any] = {
    "version": 1,
    "receivers": [
        {"name": "ops", "kind": "webhook", "url": "https://ops.example.org/h",
         "secret": "x" * 32},
        {"name": "tf", "kind": "slack", "url": "https://hooks.example.org/s"},
        {"name": "log", "kind": "log"},
    ],
    "routes": [
        {"match": {"governorate": "Rural Damascus", "severity": ["severe", "extreme"]},
         "receivers": ["ops"], "continue": True, "group_wait": "250ms"},
        {"match": {"rule": "violation_spike"}, "receivers": ["tf", "ops"]},
        {"receivers": ["log"]},
    ],
}  # fmt: skip


# -- configuration -------------------------------------------------------------------------
def test_the_shipped_default_config_is_valid() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert [r.kind for r in config.receivers] == ["log"]


def test_routes_match_labels_in_order_with_continue(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "a.yaml", ROUTING))
    severe = alert_labels(alert(1))
    assert severe["governorate"] == "Rural Damascus"
    assert [(i, r) for i, _route, r in targets(config, severe)] == [(0, "ops"), (1, "tf")]
    minor = alert_labels(alert(1, severity="minor"))
    assert [r for _i, _route, r in targets(config, minor)] == ["tf", "ops"]
    gap = alert_labels(alert(1, rule="delivery_gap", severity="minor"))
    assert [r for _i, _route, r in targets(config, gap)] == ["log"]
    timing = config.routes[0].timing(config.defaults)
    assert timing.group_wait == timedelta(milliseconds=250)
    assert timing.repeat_interval == config.defaults.repeat_interval


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"routes": [{"receivers": ["nobody"]}]}, "unknown receivers"),
        ({"defaults": {"group_wait": "soon"}}, "not a duration"),
        ({"routes": [{"match": {"colour": "red"}, "receivers": ["log"]}]}, "routes.0.match"),
        ({"receivers": [{"name": "w", "kind": "webhook", "url": "https://x.org",
                         "secret": "short"}]}, "secret"),
        ({"version": 2}, "version"),
    ],
)  # fmt: skip
def test_bad_config_is_refused_with_the_reason(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path / "bad.yaml", {**ROUTING, **change}))


def test_config_reloads_on_change_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", ROUTING)
    source = ConfigSource(path, check_every_s=0)
    assert len(source.current(1.0).routes) == 3
    write(path, {**ROUTING, "routes": [{"receivers": ["log"]}]})
    os.utime(path, (1, 1))
    assert len(source.current(2.0).routes) == 1
    path.write_text("routes: [oops")
    os.utime(path, (2, 2))
    assert len(source.current(3.0).routes) == 1  # the broken edit is refused
    assert source.error is not None
    assert source.reload_failures == 1
    with pytest.raises(ConfigError):
        source.reload()


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration("1d") == timedelta(days=1)
    with pytest.raises(ValueError, match="duration"):
        parse_duration("2 weeks")


# -- offsets -------------------------------------------------------------------------------
def test_the_committable_offset_is_the_lowest_unfinished_record() -> None:
    tracker = OffsetTracker()
    a, b, c = (RecordRef("alerts", 0, offset) for offset in (10, 11, 12))
    tracker.add(a, 2)  # two receivers
    tracker.add(b, 0)  # routed nowhere
    tracker.add(c, 1)
    assert tracker.committable() == {("alerts", 0): 10}
    tracker.committed({("alerts", 0): 10})
    tracker.done([c])
    assert tracker.committable() == {}  # 10 still waits for its second receiver
    tracker.done([a])
    assert tracker.committable() == {}
    assert tracker.pending(a)
    tracker.done([a])
    assert tracker.committable() == {("alerts", 0): 13}
    assert tracker.in_flight == 0
    assert not tracker.pending(a)
    tracker.forget([("alerts", 0)])  # lost to a rebalance: the new owner resumes there
    assert tracker.committable() == {}


# -- silences ------------------------------------------------------------------------------
def test_a_silence_matches_every_matcher_while_active() -> None:
    silence = Silence(
        silence_id="s1", matchers={"area": "daraya", "rule": "violation_spike"},
        starts_at=T0, ends_at=T0 + timedelta(hours=2), created_by="cli:me", created_at=T0,
    )  # fmt: skip
    labels = alert_labels(alert(1))
    assert silence.matches(labels)
    assert not silence.matches({**labels, "area": "madaya"})
    assert silence.active(T0 + timedelta(hours=1))
    assert not silence.active(T0 + timedelta(hours=2))


def test_a_silence_on_a_value_no_alert_carries_is_refused_with_a_suggestion() -> None:
    ends = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(SilenceError, match="no alert has area='dariya'") as refused:
        new_silence({"area": "dariya"}, ends, "cli:test")
    assert refused.value.hint == "did you mean area=daraya or area=madaya?"
    with pytest.raises(SilenceError, match="no alert has severity='high'") as refused:
        new_silence({"severity": "high"}, ends, "cli:test")
    assert refused.value.hint == "severity is one of extreme, minor, moderate, severe"
    with pytest.raises(SilenceError, match="no alert has rule='violation_spikes'"):
        new_silence({"rule": "violation_spikes"}, ends, "cli:test")
    made = new_silence({"governorate": "Rural Damascus", "party": "gos"}, ends, "cli:test")
    assert made.matchers == {"governorate": "Rural Damascus", "party": "gos"}


def test_silences_are_found_by_a_unique_prefix_and_preview_what_they_mute() -> None:
    ends = datetime.now(UTC) + timedelta(hours=1)
    one = new_silence({"area": "daraya"}, ends, "cli:a").model_copy(update={"silence_id": "ab12"})
    two = new_silence({"area": "madaya"}, ends, "cli:b").model_copy(update={"silence_id": "ab34"})
    assert by_prefix([one, two], "ab1") == one
    assert by_prefix([one, two], "ab34") == two
    with pytest.raises(SilenceError, match="2 silences start with 'ab'"):
        by_prefix([one, two], "ab")
    with pytest.raises(SilenceError, match="no silence 'cd'"):
        by_prefix([one, two], "cd")
    firing, elsewhere, over = alert(3), alert(4, area="madaya"), alert(5, "resolved")
    assert matching(one, [firing, elsewhere, over]) == [firing]


# -- notifications -------------------------------------------------------------------------
def test_idempotency_keys_depend_on_what_is_said_not_when() -> None:
    first = Notification("ops", {"area": "daraya"}, [Item(alert(3), "Alert")])
    again = Notification("ops", {"area": "daraya"}, [Item(alert(3), "Alert")])
    later = Notification("ops", {"area": "daraya"}, [Item(alert(4), "Update")])
    other = Notification("tf", {"area": "daraya"}, [Item(alert(3), "Alert")])
    assert first.key == again.key
    assert len({first.key, later.key, other.key}) == 3


def test_signature_is_hmac_sha256_of_the_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"k" * 32, body, hashlib.sha256).hexdigest()
    assert signature("k" * 32, body) == f"sha256={expected}"


def test_slack_message_has_text_and_blocks() -> None:
    body = slack_body(Notification("tf", {}, [Item(alert(3), "Alert")]), "http://q")
    assert body["text"] == (
        "[Truce FIRING] Ceasefire violation spike in Daraya (Darayya) (Rural Damascus)"
    )
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    assert "http://q/dashboard#week=2016-W09&area=daraya" in body["blocks"][1]["text"]["text"]


# -- CAP -----------------------------------------------------------------------------------
def test_cap_messages_follow_the_episodes_and_validate() -> None:
    schema = xmlschema.XMLSchema(CAP_XSD)
    history = AlertHistory()
    for version, state in [(3, "firing"), (5, "firing"), (9, "resolved"), (12, "firing")]:
        history.add(alert(version, state, value=float(version)), SENT + timedelta(minutes=version))
    history.add(alert(3), SENT + timedelta(days=1))  # a redelivered record changes nothing
    messages = sorted(history.messages(), key=lambda m: m.alert.version)
    assert [m.msg_type for m in messages] == ["Alert", "Update", "Cancel", "Alert"]
    assert [len(m.references) for m in messages] == [0, 1, 2, 0]
    for message in messages:
        schema.validate(cap_document(message, "alerts@truce.invalid", "http://q"))
    unknown_area = AlertHistory()
    unknown_area.add(alert(1, area="nowhere"), SENT)
    schema.validate(cap_document(unknown_area.messages()[0], "alerts@truce.invalid", "http://q"))
    assert history.message("truce-0123456789abcdef-9") == messages[2]
    feed = atom_feed(history.messages(), "alerts@truce.invalid", "http://alerter", "http://q")
    assert feed.count(b"<cap:alert>") == 4


def test_cap_sent_and_atom_updated_are_send_times_not_event_times() -> None:
    """The alerts are about 2016 (event time); CAP ``sent`` and Atom ``updated`` say when
    Truce issued each message, and references carry those times too."""
    history = AlertHistory()
    history.add(alert(3), SENT)
    history.add(alert(5), SENT + timedelta(minutes=2))
    update = history.message("truce-0123456789abcdef-5")
    assert update is not None
    document = cap_document(update, "alerts@truce.invalid", "http://q").decode()
    assert "<sent>2026-12-04T01:02:00-00:00</sent>" in document
    assert "truce-0123456789abcdef-3,2026-12-04T01:00:00-00:00</references>" in document
    assert "2016-03-01T13:00" not in document.split("<info>")[0]
    assert "<instruction>Open the area's reports" in document
    assert "<web>http://q/dashboard#week=2016-W09&amp;area=daraya</web>" in document
    feed = atom_feed(history.messages(), "alerts@truce.invalid", "http://alerter", "http://q")
    assert b"<atom:updated>2026-12-04T01:02:00+00:00</atom:updated>" in feed


# -- what people read -------------------------------------------------------------------------
def test_description_names_places_links_the_dashboard_and_says_what_to_do() -> None:
    text = description(alert(3, party="gos", report_ids=["b1"]), "http://q/")
    assert text.splitlines()[0] == (
        "Ceasefire violation spike in Daraya (Darayya) (Rural Damascus), "
        "Government of Syria (Syrian Arab Armed Forces)."
    )
    assert "Value 9, threshold 5, over P1D" in text
    assert "alert from" not in text
    assert "What to do: Open the area's reports" in text
    assert "Dashboard: http://q/dashboard#week=2016-W09&area=daraya&party=gos" in text
    assert "Behind it, 1 report:\n  http://q/v1/reports/b1" in text


def test_alertmanager_payload_is_what_alertmanager_receivers_take() -> None:
    items = [Item(alert(3), "Alert"), Item(alert(4, fingerprint="f" * 16, area="madaya"), "Alert")]
    body = Notification("ops", {"rule": "violation_spike"}, items).alertmanager_payload("http://q")
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["groupKey"] == '{}:{rule="violation_spike"}'
    assert body["commonLabels"] == {
        "alertname": "violation_spike", "rule": "violation_spike",
        "governorate": "Rural Damascus", "severity": "severe",
    }  # fmt: skip
    first = body["alerts"][0]
    assert first["labels"]["area"] == "daraya"
    assert first["endsAt"] == "0001-01-01T00:00:00Z"
    assert first["startsAt"] == "2016-03-01T08:00:00Z"
    assert first["generatorURL"] == "http://q/dashboard#week=2016-W09&area=daraya"
    assert set(first["annotations"]) == {"summary", "description", "runbook", "dashboard"}
    resolved = Notification("ops", {}, [Item(alert(9, "resolved"), "Cancel")])
    assert resolved.alertmanager_payload("http://q")["alerts"][0]["endsAt"].startswith("2016-03-01T17")


def test_every_rule_of_the_stream_has_words_for_people() -> None:
    from streams.logic.rules import RuleConfig

    rules = {name for name in RuleConfig.model_fields if name != "version"}
    assert set(RULES) == rules


def test_truce_up_supervises_the_alerter_after_the_store(tmp_path: Path) -> None:
    from core.settings import load_settings
    from services.runtime.processes import process_specs

    settings = load_settings(home=tmp_path, alerter_port=18630)
    specs = {spec.name: spec for spec in process_specs(settings)}
    assert list(specs)[-2:] == ["store", "alerter"]
    assert specs["alerter"].endpoint == "http://127.0.0.1:18630"
    assert specs["alerter"].prepare()[-2:] == ["-m", "services.alerter"]
