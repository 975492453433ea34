"""An OpenRosa client as ODK Collect behaves (docs.getodk.org/openrosa-form-submission):
``HEAD /submission`` first (401, then again with the credentials), then the instance as a
multipart ``xml_submission_file``; instances are written the way Collect writes them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

import httpx

COLLECT_NAMESPACES = {
    "xmlns:jr": "http://openrosa.org/javarosa",
    "xmlns:orx": "http://openrosa.org/xforms",
    "xmlns:odk": "http://www.opendatakit.org/xforms",
}


def request_headers() -> dict[str, str]:
    """What every OpenRosa request carries (docs.getodk.org/openrosa-http)."""
    return {"X-OpenRosa-Version": "1.0", "Date": formatdate(usegmt=True)}


def instance_xml(
    form_id: str,
    version: str,
    answers: dict[str, Any],
    instance_id: str,
    deprecated_id: str | None = None,
) -> bytes:
    """A filled instance: one element per answer (empty ones as empty elements, as Collect
    sends unanswered questions), then ``meta``."""
    root = Element("data", {"id": form_id, "version": version, **COLLECT_NAMESPACES})
    for name, value in answers.items():
        SubElement(root, name).text = None if value is None else str(value)
    meta = SubElement(root, "meta")
    SubElement(meta, "instanceID").text = instance_id
    if deprecated_id is not None:
        SubElement(meta, "deprecatedID").text = deprecated_id
    return tostring(root, encoding="utf-8", xml_declaration=True)


def new_instance_id() -> str:
    return f"uuid:{uuid.uuid4()}"


@dataclass
class Collect:
    """One phone: a server URL and the partner key typed in as the password."""

    url: str
    key: str
    user: str = "sarc"
    sent: list[httpx.Response] = field(default_factory=list)

    @property
    def auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.user, self.key)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(
            self.url + path, params=params, auth=self.auth, headers=request_headers(), timeout=30
        )

    def submit(self, xml: bytes, filename: str = "instance.xml") -> httpx.Response:
        """The exchange: the unauthenticated probe is refused with a Basic challenge, the
        authenticated one says how much may be sent, then the POST."""
        probe = httpx.head(self.url + "/submission", headers=request_headers(), timeout=30)
        assert probe.status_code == 401, probe.text
        assert probe.headers["www-authenticate"].lower().startswith("basic")
        probe = httpx.head(
            self.url + "/submission", auth=self.auth, headers=request_headers(), timeout=30
        )
        assert probe.status_code == 204, probe.text
        assert int(probe.headers["x-openrosa-accept-content-length"]) >= len(xml)
        response = httpx.post(
            self.url + "/submission",
            auth=self.auth,
            headers=request_headers(),
            files={"xml_submission_file": (filename, xml, "text/xml")},
            timeout=30,
        )
        self.sent.append(response)
        return response
