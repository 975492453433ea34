"""Part of the demo's field reports sent as a phone would, through OpenRosa (CONTRACT 10):
the client reads the form list and the XForms with the partner's key, fills each form's
instance from a report, and posts it to ``/submission``. The published figures must not
change with the route a report took, which the demo then checks.

Only first revisions of field kinds that are not retractions go this way (a phone files a
report; corrections and retractions stay on the JSON API), chosen by a hash of the report
id so that a second demo sends the same reports the same way (and gets duplicates). The
instance id is the report id itself, which the server keeps as the report id."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final
from xml.etree.ElementTree import Element, SubElement, tostring

import httpx
from defusedxml.ElementTree import fromstring

from schemas import FIELD_KINDS
from services.demo.scenario import Report

LIST: Final = "{http://openrosa.org/xforms/xformsList}"
XF: Final = "{http://www.w3.org/2002/xforms}"
RESPONSE: Final = "{http://openrosa.org/http/response}"
TRUCE: Final = "{https://truce.invalid/openrosa}"
HEADERS: Final = {"X-OpenRosa-Version": "1.0"}


class FormTemplate:
    """A downloaded XForm: its id, version, the instance's questions and which of them
    are geopoints (a report's lat and lon)."""

    def __init__(self, xform: bytes) -> None:
        root = fromstring(xform)
        instance = root.find(f".//{XF}instance/*")
        if instance is None:
            raise ValueError("the XForm has no primary instance")
        self.root_name = instance.tag.removeprefix(XF)
        self.form_id = instance.get("id", "")
        self.version = instance.get("version", "")
        self.questions = [c.tag.removeprefix(XF) for c in instance if c.tag != f"{XF}meta"]
        prefix = f"/{self.root_name}/"
        self.geopoints = {
            bind.get("nodeset", "").removeprefix(prefix)
            for bind in root.iter(f"{XF}bind")
            if bind.get("type") == "geopoint"
        }

    def instance(self, report: Mapping[str, Any]) -> bytes:
        """The filled instance, its instanceID the report id."""
        root = Element(self.root_name, {"id": self.form_id, "version": self.version})
        for name in self.questions:
            if name in self.geopoints:
                lat, lon = report.get("lat"), report.get("lon")
                value = None if lat is None or lon is None else f"{lat} {lon}"
            else:
                value = report.get(name)
            SubElement(root, name).text = None if value is None else str(value)
        meta = SubElement(root, "meta")
        SubElement(meta, "instanceID").text = str(report["report_id"])
        data: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
        return data


class OpenRosaClient:
    """One phone per organisation: Basic auth, the organisation's code as the user name."""

    def __init__(self, client: httpx.Client, share: float) -> None:
        self.client = client
        self.share = share
        self._forms: dict[str, FormTemplate] | None = None

    def takes(self, report: Report) -> bool:
        """Whether this report goes by OpenRosa (deterministic in the report id)."""
        if self.share <= 0 or report.get("revision", 1) != 1 or report.get("retracted"):
            return False
        if report.get("kind") not in FIELD_KINDS:  # one form per field kind: truce_<kind>
            return False
        digest = hashlib.sha256(str(report["report_id"]).encode()).digest()
        return int.from_bytes(digest[:4]) / 2**32 < self.share

    def _templates(self, org: str, key: str) -> dict[str, FormTemplate]:
        if self._forms is None:
            auth = httpx.BasicAuth(org, key)
            listing = self.client.get("/formList", auth=auth, headers=HEADERS)
            listing.raise_for_status()
            forms = {}
            for item in fromstring(listing.content).iter(f"{LIST}xform"):
                url = item.findtext(f"{LIST}downloadUrl") or ""
                xform = self.client.get(url, auth=auth, headers=HEADERS)
                xform.raise_for_status()
                template = FormTemplate(xform.content)
                forms[template.form_id] = template
            self._forms = forms
        return self._forms

    def submit(self, org: str, key: str, report: Report) -> httpx.Response:
        """HEAD (the size the server takes), then the multipart POST of the instance."""
        template = self._templates(org, key)[f"truce_{report['kind']}"]
        auth = httpx.BasicAuth(org, key)
        probe = self.client.head("/submission", auth=auth, headers=HEADERS)
        if probe.status_code != 204:
            return probe
        files = {"xml_submission_file": ("instance.xml", template.instance(report), "text/xml")}
        return self.client.post("/submission", auth=auth, headers=HEADERS, files=files)


def outcome(response: httpx.Response) -> tuple[str, str]:
    """(status, message) of a /submission answer: "accepted" or "duplicate" on 201."""
    try:
        root = fromstring(response.content)
    except Exception:  # not an OpenRosaResponse (a proxy's page): its text is the message
        return "", response.text[:300]
    text = root.findtext(f"{RESPONSE}message") or ""
    report = root.find(f"{TRUCE}report")
    status = report.get("status", "") if report is not None and response.status_code == 201 else ""
    return status, text
