"""OpenRosa 1.0 on the ingest service (CONTRACT 10): what ODK Collect, KoboCollect and
Enketo speak. Form list and form download, then ``HEAD``/``POST /submission``; every
submission goes through the same intake as a JSON report (validation, ownership,
idempotency, 202-after-acks), only its answer is an OpenRosaResponse the phone shows.

Identity: the instance's ``meta/instanceID`` (``uuid:...``) is the report id, revision 1.
An edit (``meta/deprecatedID``) is the next revision of the report its deprecated instance
became; every revision keeps its instance id in the log, so a resent instance is judged as
the same revision again (a duplicate), however often an offline queue is replayed.

Auth: HTTP Basic, the password is the partner key and the user name is not checked (use
the organisation's code)."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

import orjson
import structlog
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from core.body import read_body
from core.errors import TruceError
from core.http import BASIC_CHALLENGE, Problem, as_problem, basic_password, require_roles
from core.keys import ApiKey, Role
from schemas import content_hash, parse_report
from schemas.fields import REPORT_ID_PATTERN
from services.ingest.forms import Form, forms, xlsform_workbook
from services.ingest.ledger import Ledger, Verdict
from services.ingest.routes import _accept
from services.ingest.state import IngestState, ingest_state

OPENROSA: Final = {"X-OpenRosa-Version": "1.0"}
XML: Final = "text/xml; charset=utf-8"
FORMS_NS: Final = "http://openrosa.org/xforms/xformsList"
RESPONSE_NS: Final = "http://openrosa.org/http/response"
TRUCE_NS: Final = "https://truce.invalid/openrosa"
"""Our extension of the OpenRosaResponse (the spec allows them): the report a submission
became, for clients that are programs rather than phones."""
SUBMISSION_FILE: Final = "xml_submission_file"
MAX_PARTS: Final = 20
"""An instance and its attachments; the forms have no media questions."""
ERRORS_SHOWN: Final = 10

log = structlog.get_logger("ingest.openrosa")
router = APIRouter(include_in_schema=False)  # XML, documented in the README (OpenRosa 1.0)
_REPORT_ID = re.compile(REPORT_ID_PATTERN)


def _xml(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body, status_code=status, media_type=XML, headers={**OPENROSA, **(headers or {})}
    )


def _message(
    text: str,
    status: int,
    nature: str,
    headers: dict[str, str] | None = None,
    result: dict[str, Any] | None = None,
) -> Response:
    """An OpenRosaResponse: the ``message`` is what Collect and Enketo show the user."""
    root = Element("OpenRosaResponse", xmlns=RESPONSE_NS)
    SubElement(root, "message", nature=nature).text = text
    if result is not None:
        SubElement(root, "report", {"xmlns": TRUCE_NS, **{k: str(v) for k, v in result.items()}})
    return _xml(tostring(root, encoding="utf-8", xml_declaration=True), status, headers)


def _accepts(st: IngestState) -> dict[str, str]:
    """The largest body /submission takes: on every answer of it, as the spec asks of
    successes and recommends for errors."""
    return {"X-OpenRosa-Accept-Content-Length": str(st.settings.max_body_bytes)}


def _refusal(exc: TruceError, headers: dict[str, str] | None = None) -> Response:
    """A refusal as the phone shows it: the problem's detail, then each error by field."""
    problem = as_problem(exc)
    lines = [problem.detail]
    for error in (problem.extra.get("errors") or [])[:ERRORS_SHOWN]:
        loc = ".".join(str(part) for part in error.get("loc") or ())
        lines.append(f"{loc}: {error.get('msg')}" if loc else str(error.get("msg")))
    headers = {**(headers or {}), **problem.headers}
    if problem.status == 401:
        headers["WWW-Authenticate"] = BASIC_CHALLENGE
    return _message("\n".join(lines), problem.status, "error", headers)


def _partner(st: IngestState, request: Request) -> ApiKey:
    """The partner (or admin) key given as the Basic password; spends a rate-limit token."""
    auth = require_roles(
        lambda: st.keys,
        Role.PARTNER,
        limiter=st.limiter,
        token=basic_password,
        challenge=BASIC_CHALLENGE,
    )
    return auth(request)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/formList")
async def form_list(request: Request, formID: str | None = None) -> Response:
    """The OpenRosa xformsList: each form's id, name, version, md5 hash and download URL."""
    try:
        _partner(ingest_state(request), request)
    except TruceError as exc:
        return _refusal(exc)
    root = Element("xforms", xmlns=FORMS_NS)
    for form in forms().values():
        if formID is not None and form.form_id != formID:
            continue
        item = SubElement(root, "xform")
        SubElement(item, "formID").text = form.form_id
        SubElement(item, "name").text = form.title
        SubElement(item, "version").text = form.version
        SubElement(item, "hash").text = form.md5
        SubElement(item, "downloadUrl").text = f"{_base(request)}/forms/{form.form_id}"
    return _xml(tostring(root, encoding="utf-8", xml_declaration=True))


@router.get("/forms/{form_id}")
async def form_download(request: Request, form_id: str) -> Response:
    """The XForm itself (its md5 is the form list's ``hash``)."""
    try:
        form = _known_form(request, form_id)
    except TruceError as exc:
        return _refusal(exc)
    return _xml(form.xform)


def _known_form(request: Request, form_id: str) -> Form:
    """The form a partner asks for (401/403 for other callers, 404 for no such form)."""
    _partner(ingest_state(request), request)
    form = forms().get(form_id)
    if form is None:
        known = ", ".join(forms())
        raise Problem(404, f"no form {form_id!r}; the forms are {known} (see /formList)")
    return form


XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/forms/{form_id}/xlsform")
async def form_workbook(request: Request, form_id: str) -> Response:
    """The XLSForm the XForm was made from, as ``.xlsx`` (to load into KoboToolbox or ODK
    Central, or to read the questions and choice lists in a spreadsheet)."""
    try:
        form = _known_form(request, form_id)
    except TruceError as exc:
        return _refusal(exc)
    disposition = f'attachment; filename="{form.form_id}.xlsx"'
    return Response(
        xlsform_workbook(form),
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": disposition, **OPENROSA},
    )


@router.head("/submission")
async def submission_probe(request: Request) -> Response:
    """Collect's pre-flight: authenticated, it learns the largest submission it may send."""
    st = ingest_state(request)
    try:
        _partner(st, request)
    except TruceError as exc:
        return _refusal(exc, _accepts(st))
    return Response(status_code=204, headers={**OPENROSA, **_accepts(st)})


@router.post("/submission")
async def submission(request: Request) -> Response:
    """One filled form: 201 once Kafka acknowledged it (or it is a resend), otherwise the
    refusal with the status a JSON report would get (413, 422, 403, 409, 503...)."""
    st = ingest_state(request)
    try:
        key = _partner(st, request)
        form, root = await _instance(request, st.settings.max_body_bytes)
        report, instance = _report(form, root, st.ledger, key)
    except TruceError as exc:
        problem = as_problem(exc)
        log.info("openrosa submission refused", status=problem.status, detail=problem.detail[:300])
        return _refusal(exc, _accepts(st))
    try:
        response = await _accept(st, key, [report], [instance])
    except TruceError as exc:
        return _refusal(exc, _accepts(st))  # logged by the intake, with the report id
    result = orjson.loads(bytes(response.body))["results"][0]
    said = "already received" if result["status"] == Verdict.DUPLICATE else "received"
    text = f"Report {result['report_id']} revision {result['revision']} {said}."
    fields = {k: result[k] for k in ("report_id", "revision", "status")}
    return _message(text, 201, "submit_success", _accepts(st), fields)


async def _instance(request: Request, limit: int) -> tuple[Form, Element]:
    """The form and the instance's root element from the multipart body (size-limited,
    parsed with DTDs and entities refused: a hostile document changes nothing)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Problem(415, f"send the instance as multipart/form-data ({SUBMISSION_FILE})")
    body = await read_body(request, limit, "send fewer or smaller attachments")

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        request.headers, stream(), max_files=MAX_PARTS, max_fields=MAX_PARTS, max_part_size=limit
    )
    try:
        parts = await parser.parse()
    except MultiPartException as exc:
        raise Problem(400, f"malformed multipart body: {exc.message}") from None
    upload = parts.get(SUBMISSION_FILE)
    data = await upload.read() if isinstance(upload, UploadFile) else None
    if data is None:
        raise Problem(400, f"no {SUBMISSION_FILE} part in the submission")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise Problem(
            400, f"the instance is not acceptable XML: {type(exc).__name__}: {exc}"
        ) from None
    for element in root.iter():
        element.tag = str(element.tag).rpartition("}")[2]  # Collect and Enketo differ here
    form = forms().get(root.get("id", ""))
    if form is None:
        raise Problem(422, f"unknown form id {root.get('id')!r}; download the forms from /formList")
    return form, root


def _meta(root: Element, name: str) -> str | None:
    text = root.findtext(f"meta/{name}")
    return text.strip() if text and text.strip() else None


def _own_id(instance: str) -> str:
    """The report id an instance id makes: itself (``uuid:...`` is a valid report id)."""
    if len(instance) > 64 or not _REPORT_ID.match(instance):
        raise Problem(422, f"meta/instanceID {instance[:80]!r} cannot be a report id "
                           "(1-64 characters of A-Z a-z 0-9 . _ : -)")  # fmt: skip
    return instance


def _report(form: Form, root: Element, ledger: Ledger, key: ApiKey) -> tuple[dict[str, Any], str]:
    """The JSON report an instance says, with the report id and revision its identity
    makes (module docstring), and its instance id."""
    instance = _meta(root, "instanceID")
    if instance is None:
        raise Problem(422, "the instance has no meta/instanceID")
    answers = {"kind": form.kind, **form.answers(root)}
    known = ledger.instance(instance)
    deprecated = _meta(root, "deprecatedID")
    if known is not None:
        report_id, revision = known
    elif deprecated is None:
        report_id, revision = _own_id(instance), 1
    else:
        edited = ledger.instance(deprecated)
        report_id = edited[0] if edited else _own_id(deprecated)
        latest = ledger.latest(report_id)
        revision = max(latest, edited[1] if edited else 1) + 1
        if latest and _repeats(ledger, key, {**answers, "report_id": report_id}, latest):
            revision = latest  # accepted by another process whose entry had no instance yet
    return {**answers, "report_id": report_id, "revision": revision}, instance


def _repeats(ledger: Ledger, key: ApiKey, report: dict[str, Any], revision: int) -> bool:
    """Whether the edit says what the report's latest revision already says."""
    try:
        parsed = parse_report({**report, "revision": revision})
    except ValidationError:
        return False  # judged (and refused) as the new revision
    same = ledger.judge(parsed.report_id, revision, content_hash(parsed), key.org)
    return same is Verdict.DUPLICATE
