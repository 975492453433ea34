"""OpenRosa 1.0 on the running ingest service with the real broker (CONTRACT 10): the
exchange ODK Collect makes, checked against the OpenRosa specification's examples
(docs.getodk.org/openrosa-form-list/, openrosa-form-submission/, openrosa-http/)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import fromstring

import httpx
import pytest

from services.ingest.forms import forms
from tests.conftest import isolated_settings
from tests.support.ingest import Ingest, make_keys, violation
from tests.support.openrosa import Collect, instance_xml, new_instance_id, request_headers
from tests.support.services import running_module, service_env

pytestmark = pytest.mark.integration

LIST_NS = "{http://openrosa.org/xforms/xformsList}"
RESPONSE_NS = "{http://openrosa.org/http/response}"
VIOLATION = forms()["truce_violation"]


def answers(**changes: Any) -> dict[str, Any]:
    """The JSON tests' violation as a phone answers it (Collect's time format, a geopoint
    with altitude and accuracy, an unanswered description)."""
    base = {k: v for k, v in violation().items() if k not in ("report_id", "kind")}
    base |= {
        "occurred_at": "2016-02-28T10:15:00.000+02:00",
        "location": "33.6903 36.0997 0 10",
        "description": None,
    }
    return {**base, **changes}


def violation_xml(instance: str, deprecated: str | None = None, **changes: Any) -> bytes:
    return instance_xml(
        VIOLATION.form_id, VIOLATION.version, answers(**changes), instance, deprecated
    )


@pytest.fixture
def phone(ingest: Ingest) -> Collect:
    return Collect(ingest.url, ingest.keys["sarc"])


def revisions_of(ingest: Ingest, report_id: str) -> list[tuple[int, str | None]]:
    return sorted(
        (e.report.revision, e.instance_id)
        for e in ingest.on_topic()
        if e.report.report_id == report_id
    )


def message(response: httpx.Response) -> str:
    """The OpenRosaResponse message (the spec's envelope), which the phone shows; every
    answer of /submission says how large a body it takes (openrosa-form-submission)."""
    assert response.headers["content-type"].startswith("text/xml")
    root = fromstring(response.content)
    assert root.tag == f"{RESPONSE_NS}OpenRosaResponse"
    (node,) = root.findall(f"{RESPONSE_NS}message")
    success = response.status_code == 201
    assert node.get("nature") == ("submit_success" if success else "error")
    if response.request.url.path == "/submission":
        assert int(response.headers["x-openrosa-accept-content-length"]) > 0
    return node.text or ""


def assert_openrosa(response: httpx.Response) -> None:
    """Headers every OpenRosa response carries (openrosa-http)."""
    assert response.headers["x-openrosa-version"] == "1.0"
    assert "date" in response.headers


# -- form list and download ---------------------------------------------------


def test_form_list_matches_the_spec(phone: Collect) -> None:
    response = phone.get("/formList")
    assert response.status_code == 200
    assert_openrosa(response)
    assert response.headers["content-type"].startswith("text/xml")
    root = fromstring(response.content)
    assert root.tag == f"{LIST_NS}xforms"
    listed = {}
    for item in root.findall(f"{LIST_NS}xform"):
        tags = [child.tag.removeprefix(LIST_NS) for child in item]
        assert tags == ["formID", "name", "version", "hash", "downloadUrl"]  # spec order
        listed[item.findtext(f"{LIST_NS}formID")] = {t: item.findtext(LIST_NS + t) for t in tags}
    assert set(listed) == {"truce_violation", "truce_delivery", "truce_access_request"}
    for form_id, entry in listed.items():
        assert entry["downloadUrl"] == f"{phone.url}/forms/{form_id}"
        download = httpx.get(entry["downloadUrl"], auth=phone.auth, headers=request_headers())
        assert download.status_code == 200
        assert_openrosa(download)
        assert entry["hash"] == "md5:" + hashlib.md5(download.content).hexdigest()
        instance = fromstring(download.content).find(".//{http://www.w3.org/2002/xforms}instance/*")
        assert instance is not None
        assert instance.get("id") == form_id
        assert instance.get("version") == entry["version"]
    only = fromstring(phone.get("/formList", formID="truce_delivery").content)
    assert [x.findtext(f"{LIST_NS}formID") for x in only] == ["truce_delivery"]


def test_form_list_and_download_need_a_partner_key(ingest: Ingest, phone: Collect) -> None:
    anonymous = httpx.get(phone.url + "/formList", headers=request_headers())
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].lower().startswith("basic")
    assert_openrosa(anonymous)
    wrong = Collect(phone.url, "truce_notakey0000000000000000000000").get("/formList")
    assert wrong.status_code == 401
    monitor = Collect(phone.url, ingest.keys["monitor"]).get("/forms/truce_violation")
    assert monitor.status_code == 403
    assert "role" in message(monitor)
    missing = phone.get("/forms/truce_nothing")
    assert missing.status_code == 404
    assert "truce_violation" in message(missing)


def test_the_xlsform_workbook_converts_to_the_served_xform(phone: Collect, tmp_path: Path) -> None:
    """The .xlsx a KoboToolbox or ODK Central user loads is the form Collect downloads:
    pyxform turns the workbook into the very XForm served at /forms/{id}."""
    from pyxform.xls2xform import convert

    for form_id in ("truce_violation", "truce_delivery", "truce_access_request"):
        workbook = phone.get(f"/forms/{form_id}/xlsform")
        assert workbook.status_code == 200
        assert_openrosa(workbook)
        assert workbook.headers["content-disposition"] == (
            f'attachment; filename="{form_id}.xlsx"'
        )
        path = tmp_path / f"{form_id}.xlsx"
        path.write_bytes(workbook.content)
        converted = convert(xlsform=str(path), form_name="data", pretty_print=True).xform
        assert converted.encode() == phone.get(f"/forms/{form_id}").content
    assert phone.get("/forms/truce_nothing/xlsform").status_code == 404


# -- submission ---------------------------------------------------------------


def test_submission_is_a_report_with_the_instance_id(ingest: Ingest, phone: Collect) -> None:
    instance = new_instance_id()
    response = phone.submit(violation_xml(instance))
    assert response.status_code == 201, response.text
    assert_openrosa(response)
    assert message(response) == f"Report {instance} revision 1 received."
    extension = fromstring(response.content).find("{https://truce.invalid/openrosa}report")
    assert extension is not None
    assert extension.attrib == {"report_id": instance, "revision": "1", "status": "accepted"}
    (stored,) = [e for e in ingest.on_topic() if e.report.report_id == instance]
    report = stored.report
    assert (report.kind, report.revision, report.area, report.killed) == (
        "violation",
        1,
        "madaya",
        2,
    )
    assert (report.lat, report.lon, report.description) == (33.6903, 36.0997, None)
    assert report.occurred_at.isoformat() == "2016-02-28T08:15:00+00:00"
    assert (stored.org, stored.key_name, stored.instance_id) == ("sarc", "sarc-1", instance)


def test_edits_are_revisions_and_a_replayed_queue_is_duplicates(
    ingest: Ingest, phone: Collect
) -> None:
    first, second, third = new_instance_id(), new_instance_id(), new_instance_id()
    queue = [
        violation_xml(first),
        violation_xml(second, deprecated=first, killed=3),
        violation_xml(third, deprecated=second, killed=4, description="corrected twice"),
    ]
    said = [message(phone.submit(xml)) for xml in queue]
    assert said == [f"Report {first} revision {n} received." for n in (1, 2, 3)]
    assert revisions_of(ingest, first) == [(1, first), (2, second), (3, third)]
    # the phone lost the answers and sends its whole queue again, twice
    for _ in range(2):
        again = [phone.submit(xml) for xml in queue]
        assert [r.status_code for r in again] == [201, 201, 201]
        assert [message(r) for r in again] == [
            f"Report {first} revision {n} already received." for n in (1, 2, 3)
        ]
    assert revisions_of(ingest, first) == [(1, first), (2, second), (3, third)]
    latest = max(
        (e for e in ingest.on_topic() if e.report.report_id == first),
        key=lambda e: e.report.revision,
    )
    assert (latest.report.killed, latest.report.description) == (4, "corrected twice")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"killed": -1}, "killed"),
        ({"killed": "two"}, "killed"),
        ({"area": "atlantis"}, "area"),
        ({"occurred_at": "2099-01-01T00:00:00.000+00:00"}, "occurred_at"),
        ({"occurred_at": "2016-02-28T10:15:00"}, "occurred_at"),
        ({"confidence": None}, "confidence"),
        ({"location": "33.69"}, "lat"),
    ],
)
def test_answers_are_validated_like_json_reports(
    ingest: Ingest, phone: Collect, changes: dict[str, Any], field: str
) -> None:
    instance = new_instance_id()
    response = phone.submit(violation_xml(instance, **changes))
    assert response.status_code == 422, response.text
    assert_openrosa(response)
    text = message(response)
    assert "1 of 1 report(s) are invalid" in text
    assert f"\n{field}: " in text
    assert revisions_of(ingest, instance) == []


def test_another_organisation_may_not_resubmit_or_edit(ingest: Ingest, phone: Collect) -> None:
    instance = new_instance_id()
    assert phone.submit(violation_xml(instance)).status_code == 201
    other = Collect(ingest.url, ingest.keys["wfp"], user="wfp")
    assert other.submit(violation_xml(instance)).status_code == 403
    edit = other.submit(violation_xml(new_instance_id(), deprecated=instance, killed=9))
    assert edit.status_code == 403
    assert "another organisation" in message(edit)
    assert revisions_of(ingest, instance) == [(1, instance)]


HOSTILE = {
    "billion laughs": b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<data id="truce_violation"><description>&lol3;</description></data>""",
    "external entity": b"""<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<data id="truce_violation"><description>&xxe;</description></data>""",
    "not xml": b"killed=2",
    "truncated": b"<data id='truce_violation'><killed>2</kil",
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_or_broken_xml_is_refused_and_changes_nothing(
    ingest: Ingest, phone: Collect, body: bytes
) -> None:
    before = len(ingest.on_topic())
    response = phone.submit(body)
    assert response.status_code == 400
    assert_openrosa(response)
    assert "not acceptable XML" in message(response)
    assert "root:" not in message(response)
    assert len(ingest.on_topic()) == before


def test_malformed_submissions_get_a_message(ingest: Ingest, phone: Collect) -> None:
    no_part = httpx.post(
        phone.url + "/submission",
        auth=phone.auth,
        files={"something_else": ("a.xml", b"<data/>", "text/xml")},
    )
    assert no_part.status_code == 400
    assert "xml_submission_file" in message(no_part)
    not_multipart = httpx.post(phone.url + "/submission", auth=phone.auth, content=b"<data/>")
    assert not_multipart.status_code == 415
    unknown = phone.submit(
        instance_xml("someone_elses_form", "1", {"killed": 1}, new_instance_id())
    )
    assert unknown.status_code == 422
    assert "/formList" in message(unknown)
    no_id = phone.submit(b'<data id="truce_violation"><killed>1</killed></data>')
    assert no_id.status_code == 422
    assert "instanceID" in message(no_id)
    too_big = httpx.post(
        phone.url + "/submission",
        auth=phone.auth,
        files={"xml_submission_file": ("a.xml", b" " * (ingest.settings.max_body_bytes + 1))},
    )
    assert too_big.status_code == 413
    assert_openrosa(too_big)


def test_a_fresh_process_knows_the_instances_from_the_log(
    ingest: Ingest, phone: Collect, tmp_path: Path
) -> None:
    """The instance ids travel in the log, so an ingest process that only read the log
    (restarted, or another replica) still judges a replayed edit a duplicate."""
    first, second = new_instance_id(), new_instance_id()
    queue = [violation_xml(first), violation_xml(second, deprecated=first, killed=7)]
    assert [phone.submit(xml).status_code for xml in queue] == [201, 201]
    settings = isolated_settings(
        tmp_path,
        kafka_bootstrap=ingest.settings.bootstrap_servers,
        topic_prefix=ingest.settings.topic_prefix,
    )
    keys = make_keys(settings)
    with running_module(
        "services.ingest", service_env(settings), f"{settings.ingest_url}/readyz", tmp_path / "log"
    ):
        replica = Collect(settings.ingest_url, keys["sarc"])
        again = [message(replica.submit(xml)) for xml in reversed(queue)]
        edit = replica.submit(violation_xml(new_instance_id(), deprecated=second, killed=8))
        assert message(edit) == f"Report {first} revision 3 received."
    assert again == [f"Report {first} revision {n} already received." for n in (2, 1)]
    assert [r for r, _ in revisions_of(ingest, first)] == [1, 2, 3]


def test_a_chunked_submission_is_taken(ingest: Ingest, phone: Collect) -> None:
    """The spec: the server MUST support HTTP 1.1 chunked transfer encoding."""
    instance = new_instance_id()
    boundary = "truce-chunked"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
        f'filename="i.xml"\r\nContent-Type: text/xml\r\n\r\n'.encode()
        + violation_xml(instance)
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    response = httpx.post(
        phone.url + "/submission",
        auth=phone.auth,
        headers={**request_headers(), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=chunks(),
    )
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 201, response.text
    assert revisions_of(ingest, instance) == [(1, instance)]


def test_an_edit_whose_original_never_came_is_its_next_revision(
    ingest: Ingest, phone: Collect
) -> None:
    """The phone edited a form before sending it: the edit names the unsent instance, whose
    id is the report id; the original, if it comes later, is the older revision."""
    original, edit = new_instance_id(), new_instance_id()
    first = phone.submit(violation_xml(edit, deprecated=original, killed=6))
    assert message(first) == f"Report {original} revision 2 received."
    late = phone.submit(violation_xml(original))
    assert message(late) == f"Report {original} revision 1 received."
    assert revisions_of(ingest, original) == [(1, original), (2, edit)]
