"""OASIS Common Alerting Protocol 1.2 documents and the Atom feed that carries them.

Built with the standard library's ElementTree (we only write XML, never parse untrusted
input here); the tests validate every document against the official CAP 1.2 XSD."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from schemas import Alert, areas
from services.alerter.history import CapMessage

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
CIRCLE_RADIUS_KM = 5.0
"""Radius of the CAP circle around an area's reference point: areas are towns and
neighbourhoods, and the reports place events in the area, not at a point."""

_EVENTS = {
    "violation_spike": ("Security", "Ceasefire violation spike"),
    "delivery_gap": ("Other", "Besieged area without humanitarian delivery"),
    "stale_access_request": ("Other", "Humanitarian access request unanswered"),
    "reporting_gap": ("Security", "No reports from an area's usual reporters"),
}
_SEVERITY = {"minor": "Minor", "moderate": "Moderate", "severe": "Severe", "extreme": "Extreme"}

ET.register_namespace("cap", CAP_NS)
ET.register_namespace("atom", ATOM_NS)


def cap_time(moment: datetime) -> str:
    """CAP 1.2 date-time: seconds precision, numeric offset, UTC written ``-00:00``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def _sub(parent: ET.Element, tag: str, text: str) -> ET.Element:
    child = ET.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    child.text = text
    return child


def cap_alert(message: CapMessage, sender: str) -> ET.Element:
    """The ``<alert>`` element of one alert version."""
    alert = message.alert
    root = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(root, "identifier", message.identifier)
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(alert.updated_at))
    _sub(root, "status", "Actual")
    _sub(root, "msgType", message.msg_type)
    _sub(root, "scope", "Restricted")
    _sub(root, "restriction", "Ceasefire task force monitors")
    if message.references:
        refs = " ".join(f"{sender},{ident},{cap_time(sent)}" for ident, sent in message.references)
        _sub(root, "references", refs)
    _sub(root, "incidents", alert.fingerprint)
    _info(root, message)
    return root


def _info(root: ET.Element, message: CapMessage) -> None:
    alert = message.alert
    cancel = message.msg_type == "Cancel"
    category, event = _EVENTS.get(alert.rule, ("Other", alert.rule.replace("_", " ")))
    info = ET.SubElement(root, f"{{{CAP_NS}}}info")
    _sub(info, "language", "en-US")
    _sub(info, "category", category)
    _sub(info, "event", event)
    _sub(info, "responseType", "AllClear" if cancel else "Monitor")
    _sub(info, "urgency", "Past" if cancel else "Immediate")
    _sub(info, "severity", _SEVERITY[alert.severity])
    _sub(info, "certainty", "Observed" if cancel else "Likely")
    _sub(info, "effective", cap_time(alert.starts_at))
    _sub(info, "senderName", "Truce ceasefire and humanitarian access monitoring")
    _sub(info, "headline", alert.summary[:160])
    _sub(info, "description", description(alert))
    for name, value in (
        ("fingerprint", alert.fingerprint),
        ("rule", alert.rule),
        ("value", f"{alert.value:g}"),
        ("threshold", f"{alert.threshold:g}"),
        ("window", alert.window),
        ("version", str(alert.version)),
    ):
        parameter = ET.SubElement(info, f"{{{CAP_NS}}}parameter")
        _sub(parameter, "valueName", f"truce:{name}")
        _sub(parameter, "value", value)
    _area(info, alert)


def description(alert: Alert) -> str:
    """Plain text every channel shares: what fired, how much, since when, on what reports."""
    lines = [
        alert.summary,
        f"Value {alert.value:g} (alert from {alert.threshold:g}) over {alert.window}; "
        f"state {alert.state}, severity {alert.severity}, since {cap_time(alert.starts_at)}.",
    ]
    if alert.party:
        lines.append(f"Party: {alert.party}.")
    if alert.report_ids:
        lines.append("Reports: " + ", ".join(alert.report_ids))
    return "\n".join(lines)


def _area(info: ET.Element, alert: Alert) -> None:
    area = areas().get(alert.area)
    element = ET.SubElement(info, f"{{{CAP_NS}}}area")
    if area is None:
        _sub(element, "areaDesc", alert.area or "Syria")
        return
    _sub(element, "areaDesc", f"{area.name}, {area.governorate}")
    _sub(element, "circle", f"{area.lat:.4f},{area.lon:.4f} {CIRCLE_RADIUS_KM:g}")
    geocode = ET.SubElement(element, f"{{{CAP_NS}}}geocode")
    _sub(geocode, "valueName", "truce:area")
    _sub(geocode, "value", area.code)


def cap_document(message: CapMessage, sender: str) -> bytes:
    document: bytes = ET.tostring(
        cap_alert(message, sender),
        encoding="utf-8",
        xml_declaration=True,
        default_namespace=CAP_NS,
    )
    return document


def atom_feed(messages: Iterable[CapMessage], sender: str, base_url: str) -> bytes:
    """An Atom feed whose entries each carry one CAP document as their content and link
    to it at ``/v1/alerts/cap/{identifier}``."""
    items = list(messages)
    feed = ET.Element(f"{{{ATOM_NS}}}feed")

    def atom(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        child = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            child.text = text
        return child

    newest = items[0].alert.updated_at if items else datetime(2016, 2, 12, tzinfo=UTC)
    atom(feed, "id", f"{base_url}/v1/alerts/cap")
    atom(feed, "title", "Truce alerts (CAP 1.2)")
    atom(feed, "updated", newest.astimezone(UTC).isoformat())
    atom(feed, "link", rel="self", href=f"{base_url}/v1/alerts/cap", type=ATOM_MEDIA_TYPE)
    author = atom(feed, "author")
    atom(author, "name", sender)
    for message in items:
        url = f"{base_url}/v1/alerts/cap/{message.identifier}"
        entry = atom(feed, "entry")
        atom(entry, "id", url)
        atom(entry, "title", f"{message.msg_type}: {message.alert.summary[:200]}")
        atom(entry, "updated", message.alert.updated_at.astimezone(UTC).isoformat())
        atom(entry, "link", rel="alternate", href=url, type=CAP_MEDIA_TYPE)
        content = atom(entry, "content", type=CAP_MEDIA_TYPE)
        content.append(cap_alert(message, sender))
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
