"""The field forms (CONTRACT 10), generated from the report models and the reference data.

One XLSForm per kind a partner submits, built at start-up from ``schemas/`` (fields, their
bounds, which are required, the codes of areas and parties and the literals of each choice),
then converted to an XForm by pyxform. Nothing is checked in, so a form cannot drift from
the validation: a new field, bound or area changes the form and its version. The labels
are the one thing written here, in English and Arabic; a field or choice without them
fails the generation (and its test)."""

from __future__ import annotations

import hashlib
import json
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Literal, Union, get_args, get_origin
from xml.etree.ElementTree import Element

import annotated_types
from pydantic.fields import FieldInfo
from pyxform.xls2xform import convert

from schemas import AccessRequest, Delivery, ReportBase, Violation, area_list, party_list
from schemas.fields import TARGET_LITERALS, known_area, known_party, known_target
from schemas.timestamps import EARLIEST, FUTURE_TOLERANCE

EN: Final = "English (en)"
AR: Final = "Arabic (ar)"
ROOT: Final = "data"
"""The instance's root element (pyxform's ``form_name``)."""

FORM_MODELS: Final[dict[str, type[ReportBase]]] = {
    "violation": Violation,
    "delivery": Delivery,
    "access_request": AccessRequest,
}
"""The kinds a field partner submits, each with its own form."""

SERVER_FIELDS: Final = frozenset({"report_id", "revision", "kind", "retracted"})
"""Set by the server from the submission (instance id, edits, form id), not asked."""

TITLES: Final[dict[str, tuple[str, str]]] = {
    "violation": (
        "Truce: violation of the cessation of hostilities",
        "هدنة: خرق لوقف الأعمال العدائية",
    ),
    "delivery": ("Truce: humanitarian delivery", "هدنة: إيصال مساعدات إنسانية"),
    "access_request": ("Truce: humanitarian access request", "هدنة: طلب وصول إنساني"),
}

LABELS: Final[dict[str, tuple[str, str]]] = {
    "occurred_at": ("When did it happen?", "متى وقع ذلك؟"),
    "area": ("Area", "المنطقة"),
    "perpetrator": ("Perpetrator", "الجهة المنفذة"),
    "target": ("Target", "المستهدف"),
    "category": ("Category", "نوع الخرق"),
    "killed": ("People killed", "عدد القتلى"),
    "injured": ("People injured", "عدد الجرحى"),
    "source": ("Source of the information", "مصدر المعلومات"),
    "confidence": ("Confidence", "درجة الثقة"),
    "location": ("Location (optional)", "الموقع (اختياري)"),
    "description": ("Description (optional)", "الوصف (اختياري)"),
    "agency": ("Agency", "الوكالة"),
    "modality": ("How was it delivered?", "طريقة الإيصال"),
    "status": ("Status", "الحالة"),
    "beneficiaries": ("People reached", "عدد المستفيدين"),
    "trucks": ("Trucks (optional)", "عدد الشاحنات (اختياري)"),
    "request_ref": ("Request number (optional)", "رقم الطلب (اختياري)"),
    "beneficiaries_planned": ("People planned (optional)", "عدد المستفيدين المخطط له (اختياري)"),
}
"""Question labels; the Arabic is the Truce team's translation."""

CHOICE_LABELS: Final[dict[str, tuple[str, str]]] = {
    "civilians": ("Civilians", "مدنيون"),
    "infrastructure": ("Infrastructure", "بنية تحتية"),
    "airstrike": ("Airstrike", "غارة جوية"),
    "shelling": ("Shelling", "قصف مدفعي"),
    "ground_attack": ("Ground attack", "هجوم بري"),
    "sniper": ("Sniper fire", "قنص"),
    "ied": ("Improvised explosive device", "عبوة ناسفة"),
    "siege": ("Siege", "حصار"),
    "aid_obstruction": ("Obstruction of aid", "عرقلة المساعدات"),
    "other": ("Other", "أخرى"),
    "witness": ("Witness", "شاهد عيان"),
    "staff": ("Our staff", "موظفو المنظمة"),
    "media": ("Media", "وسائل الإعلام"),
    "remote": ("Remote monitoring", "رصد عن بعد"),
    "low": ("Low", "منخفضة"),
    "medium": ("Medium", "متوسطة"),
    "high": ("High", "عالية"),
    "convoy": ("Convoy", "قافلة"),
    "airdrop": ("Airdrop", "إسقاط جوي"),
    "completed": ("Completed", "مكتملة"),
    "partial": ("Partial", "جزئية"),
    "blocked": ("Blocked", "ممنوعة"),
    "cancelled": ("Cancelled", "ملغاة"),
    "submitted": ("Submitted", "مقدَّم"),
    "approved": ("Approved", "موافق عليه"),
    "denied": ("Denied", "مرفوض"),
    "withdrawn": ("Withdrawn", "مسحوب"),
}
"""Labels of the contract's literal values; the Arabic is the Truce team's translation."""

Xls = Literal["integer", "decimal", "text", "dateTime", "geopoint", "select_one"]
Answers = dict[str, Any]


@dataclass(frozen=True)
class Question:
    """One question and how its answer (the element's text) becomes report fields."""

    name: str
    xls_type: str
    required: bool
    read: Callable[[str], Answers]
    constraint: str = ""
    message: tuple[str, str] = ("", "")
    default: str = ""


@dataclass(frozen=True)
class Form:
    """A generated form: its XLSForm (as pyxform's workbook dict) and its XForm."""

    kind: str
    form_id: str
    version: str
    xlsform: Mapping[str, list[dict[str, str]]]
    xform: bytes
    questions: tuple[Question, ...]

    @property
    def md5(self) -> str:
        """The ``hash`` of the form list (OpenRosa: ``md5:`` and the hex digest)."""
        return "md5:" + hashlib.md5(self.xform, usedforsecurity=False).hexdigest()

    @property
    def title(self) -> str:
        return TITLES[self.kind][0]

    def answers(self, root: Element) -> Answers:
        """The report fields a submitted instance answers (empty answers are absent)."""
        out: Answers = {}
        for question in self.questions:
            node = root.find(question.name)
            text = (node.text or "").strip() if node is not None else ""
            if text:
                out.update(question.read(text))
        return out


def _inner(info: FieldInfo) -> FieldInfo:
    """The field's own constraints, also when it is optional (``X | None``)."""
    origin = get_origin(info.annotation)
    if origin in (Union, types.UnionType):
        (arg,) = [a for a in get_args(info.annotation) if a is not type(None)]
        return FieldInfo.from_annotation(arg)
    return info


def _validators(info: FieldInfo) -> set[Any]:
    return {getattr(m, "func", None) for m in info.metadata}


def _bounds(info: FieldInfo) -> tuple[Any, Any]:
    low = next((m.ge for m in info.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in info.metadata if isinstance(m, annotated_types.Le)), None)
    return low, high


def _max_length(info: FieldInfo) -> int | None:
    lengths = [m.max_length for m in info.metadata if isinstance(m, annotated_types.MaxLen)]
    return lengths[0] if lengths else None


def _integer(name: str) -> Callable[[str], Answers]:
    def read(text: str) -> Answers:
        try:
            return {name: int(text)}
        except ValueError:
            return {name: text}  # refused by the model, with its own message

    return read


def _as_is(name: str) -> Callable[[str], Answers]:
    return lambda text: {name: text}


def _position(text: str) -> Answers:
    """An ODK geopoint, ``lat lon [altitude accuracy]``, as the report's lat and lon."""
    parts = text.split()
    try:
        return {"lat": float(parts[0]), "lon": float(parts[1])}
    except (IndexError, ValueError):
        return {"lat": text}  # refused by the model


_WHEN_CONSTRAINT = (
    f"decimal-date-time(.) >= decimal-date-time('{EARLIEST.strftime('%Y-%m-%dT%H:%M:%SZ')}') and "
    f"decimal-date-time(.) <= decimal-date-time(now()) + "
    f"{FUTURE_TOLERANCE.total_seconds() / 86400!r}"
)
_WHEN_MESSAGE = (
    f"not in the future (at most {FUTURE_TOLERANCE} ahead) nor before {EARLIEST.year}",
    f"لا يمكن أن يكون في المستقبل ولا قبل عام {EARLIEST.year}",
)


def _questions(model: type[ReportBase]) -> tuple[tuple[Question, ...], dict[str, list[str]]]:
    """The questions of a kind, in the model's field order, and the codes of each list."""
    questions: list[Question] = []
    lists: dict[str, list[str]] = {}
    fields = model.model_fields
    for name, outer in fields.items():
        if name in SERVER_FIELDS or name == "lon":
            continue
        info = _inner(outer)
        required = outer.is_required()
        checks = _validators(info)
        default = "" if outer.default in (None, ...) else str(outer.default)
        if name == "lat" and "lon" in fields:
            questions.append(Question("location", "geopoint", required, _position))
        elif known_area in checks:
            lists["areas"] = [a.code for a in area_list()]
            questions.append(Question(name, "select_one areas", required, _as_is(name)))
        elif known_party in checks:
            lists["parties"] = [p.code for p in party_list()]
            questions.append(Question(name, "select_one parties", required, _as_is(name)))
        elif known_target in checks:
            lists["targets"] = [*TARGET_LITERALS, *(p.code for p in party_list())]
            questions.append(Question(name, "select_one targets", required, _as_is(name)))
        elif get_origin(info.annotation) is Literal:
            lists[name] = [str(v) for v in get_args(info.annotation)]
            questions.append(Question(name, f"select_one {name}", required, _as_is(name)))
        elif info.annotation is int:
            low, high = _bounds(info)
            questions.append(
                Question(
                    name,
                    "integer",
                    required,
                    _integer(name),
                    f". >= {low} and . <= {high}",
                    (f"between {low} and {high}", f"بين {low} و{high}"),
                    default,
                )
            )
        elif name == "occurred_at":
            questions.append(
                Question(name, "dateTime", required, _as_is(name), _WHEN_CONSTRAINT, _WHEN_MESSAGE)
            )
        elif info.annotation is str:
            most = _max_length(info)
            constraint = f"string-length(.) <= {most}" if most else ""
            message = (
                (f"at most {most} characters", f"{most} حرفاً على الأكثر") if most else ("", "")
            )
            questions.append(Question(name, "text", required, _as_is(name), constraint, message))
        else:
            raise TypeError(f"no form question for {model.__name__}.{name} ({info.annotation})")
    return tuple(questions), lists


def _choice_label(list_name: str, code: str) -> tuple[str, str]:
    """A code's English and Arabic label: reference data names, or :data:`CHOICE_LABELS`."""
    named = {p.code: (p.name, p.name_ar) for p in party_list()}
    if list_name == "areas":
        named = {a.code: (a.name, a.name_ar) for a in area_list()}
    return named.get(code) or CHOICE_LABELS[code]


def _xlsform(
    kind: str, questions: tuple[Question, ...], lists: dict[str, list[str]]
) -> dict[str, list[dict[str, str]]]:
    survey = []
    for q in questions:
        en, ar = LABELS[q.name]
        row = {
            "type": q.xls_type,
            "name": q.name,
            f"label::{EN}": en,
            f"label::{AR}": ar,
            "required": "yes" if q.required else "",
            "constraint": q.constraint,
            f"constraint_message::{EN}": q.message[0],
            f"constraint_message::{AR}": q.message[1],
            "default": q.default,
        }
        survey.append({k: v for k, v in row.items() if v})
    choices = []
    for list_name, codes in lists.items():
        for code in codes:
            en, ar = _choice_label(list_name, code)
            choices.append(
                {"list_name": list_name, "name": code, f"label::{EN}": en, f"label::{AR}": ar}
            )
    title_en, _ = TITLES[kind]
    body = json.dumps([survey, choices], sort_keys=True, ensure_ascii=False).encode()
    version = hashlib.sha256(body).hexdigest()[:12]
    settings = {
        "form_id": f"truce_{kind}",
        "form_title": title_en,
        "version": version,
        "default_language": EN,
    }
    return {"survey": survey, "choices": choices, "settings": [settings]}


def _build(kind: str) -> Form:
    questions, lists = _questions(FORM_MODELS[kind])
    xlsform = _xlsform(kind, questions, lists)
    result = convert(xlsform=dict(xlsform), form_name=ROOT, pretty_print=True)
    settings = xlsform["settings"][0]
    return Form(
        kind=kind,
        form_id=settings["form_id"],
        version=settings["version"],
        xlsform=xlsform,
        xform=result.xform.encode(),
        questions=questions,
    )


def xlsform_workbook(form: Form) -> bytes:
    """The form's XLSForm as an ``.xlsx`` workbook (sheets ``survey``, ``choices``,
    ``settings``), for servers that take XLSForms (KoboToolbox, ODK Central): the very rows
    the XForm was converted from."""
    import io

    import openpyxl

    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    book.remove(first)
    for sheet_name, rows in form.xlsform.items():
        sheet = book.create_sheet(sheet_name)
        columns = list(dict.fromkeys(key for row in rows for key in row))
        sheet.append(columns)
        for row in rows:
            sheet.append([row.get(column, "") for column in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@cache
def forms() -> Mapping[str, Form]:
    """Every form by form id, built once per process (pyxform takes a fraction of a second)."""
    built = (_build(kind) for kind in FORM_MODELS)
    return types.MappingProxyType({form.form_id: form for form in built})
