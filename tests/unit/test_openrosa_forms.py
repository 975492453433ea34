"""The field forms are the contract's report models and reference data, never a copy
(CONTRACT 10): their questions, choice lists, bounds and required fields come from
``schemas/``, they convert cleanly with pyxform, and ODK Validate (JavaRosa, the engine of
ODK Collect) accepts them, offline on the machine's Java."""

from __future__ import annotations

from pathlib import Path
from typing import get_args
from xml.etree.ElementTree import Element, fromstring

import pytest
from pyxform.validators import odk_validate
from pyxform.validators.odk_validate import ODKValidateError
from pyxform.xls2xform import convert

from schemas import AccessRequest, Delivery, Violation, area_list, parse_report, party_list
from schemas.fields import MAX_BENEFICIARIES, MAX_COUNT
from schemas.reports import FIELD_KINDS
from services.demo.openrosa import FormTemplate
from services.ingest.forms import AR, EN, ROOT, Form, forms

XF = "{http://www.w3.org/2002/xforms}"
H = "{http://www.w3.org/1999/xhtml}"


def xform(form: Form) -> Element:
    return fromstring(form.xform)


def binds(form: Form) -> dict[str, dict[str, str]]:
    root = xform(form)
    return {
        b.get("nodeset", "").removeprefix(f"/{ROOT}/"): dict(b.attrib)
        for b in root.iter(f"{XF}bind")
    }


def choices(form: Form, list_name: str) -> list[tuple[str, str, str]]:
    """(code, English label, Arabic label) of a choice list, read from the XForm."""
    root = xform(form)
    texts: dict[str, dict[str, str]] = {}
    for translation in root.iter(f"{XF}translation"):
        lang = translation.get("lang", "")
        for text in translation.findall(f"{XF}text"):
            texts.setdefault(text.get("id", ""), {})[lang] = text.findtext(f"{XF}value") or ""
    instance = next(i for i in root.iter(f"{XF}instance") if i.get("id") == list_name)
    out = []
    for item in instance.iter(f"{XF}item"):
        label = texts[item.findtext(f"{XF}itextId") or ""]
        out.append((item.findtext(f"{XF}name") or "", label[EN], label[AR]))
    return out


def test_one_form_per_kind_a_partner_files() -> None:
    assert {f.kind for f in forms().values()} == FIELD_KINDS
    assert set(forms()) == {f"truce_{kind}" for kind in FIELD_KINDS}


@pytest.mark.parametrize(
    ("form_id", "model"),
    [("truce_violation", Violation), ("truce_delivery", Delivery),
     ("truce_access_request", AccessRequest)],
)  # fmt: skip
def test_questions_are_the_models_fields(form_id: str, model: type) -> None:
    form = forms()[form_id]
    asked = [name for name in binds(form) if not name.startswith("meta/")]
    expected = [
        "location" if name == "lat" else name
        for name in model.model_fields
        if name not in {"report_id", "revision", "kind", "retracted", "lon"}
    ]
    assert asked == expected
    for name, bind in binds(form).items():
        if name.startswith("meta/") or name == "location":
            continue
        field = model.model_fields[name]
        assert (bind.get("required") == "true()") == field.is_required(), name


def test_choice_lists_are_the_reference_data_in_both_languages() -> None:
    form = forms()["truce_violation"]
    assert choices(form, "areas") == [(a.code, a.name, a.name_ar) for a in area_list()]
    assert choices(form, "parties") == [(p.code, p.name, p.name_ar) for p in party_list()]
    targets = [code for code, _, _ in choices(form, "targets")]
    assert targets == ["civilians", "infrastructure", *(p.code for p in party_list())]
    literals = get_args(Violation.model_fields["category"].annotation)
    assert [code for code, _, _ in choices(form, "category")] == list(literals)
    assert ("siege", "Siege", "حصار") in choices(form, "category")
    statuses = get_args(AccessRequest.model_fields["status"].annotation)
    listed = choices(forms()["truce_access_request"], "status")
    assert [code for code, _, _ in listed] == list(statuses)
    assert all(en and ar and en != ar for _, en, ar in listed)


def test_constraints_mirror_the_validation() -> None:
    violation = binds(forms()["truce_violation"])
    assert violation["killed"]["type"] == "int"
    assert violation["killed"]["constraint"] == f". >= 0 and . <= {MAX_COUNT}"
    assert violation["description"]["constraint"] == "string-length(.) <= 4000"
    when = violation["occurred_at"]
    assert when["type"] == "dateTime"
    assert when["required"] == "true()"
    assert "decimal-date-time(now()) + 0.0416" in when["constraint"]
    assert "decimal-date-time('1990-01-01T00:00:00Z')" in when["constraint"]
    assert violation["location"]["type"] == "geopoint"
    delivery = binds(forms()["truce_delivery"])
    assert delivery["beneficiaries"]["constraint"] == f". >= 0 and . <= {MAX_BENEFICIARIES}"
    assert delivery["beneficiaries"]["required"] == "true()"
    assert "required" not in delivery["trucks"]
    instance = xform(forms()["truce_violation"]).find(f".//{XF}instance/{XF}{ROOT}")
    assert instance is not None
    assert instance.findtext(f"{XF}killed") == "0"  # the model's default


def test_pyxform_converts_without_warnings() -> None:
    for form in forms().values():
        warnings: list[str] = []
        result = convert(
            xlsform=dict(form.xlsform), form_name=ROOT, warnings=warnings, pretty_print=True
        )
        assert warnings == []
        assert result.xform.encode() == form.xform  # generation is deterministic
        title = xform(form).findtext(f"{H}head/{H}title")
        assert title == form.title


def test_versions_and_hashes_follow_the_content() -> None:
    versions = {f.version for f in forms().values()}
    assert len(versions) == 3
    for form in forms().values():
        assert form.md5.startswith("md5:")
        assert len(form.md5) == 4 + 32
        instance = xform(form).find(f".//{XF}instance/{XF}{ROOT}")
        assert instance is not None
        assert (instance.get("id"), instance.get("version")) == (form.form_id, form.version)


def test_odk_validate_accepts_every_form(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    violation = forms()["truce_violation"].xform
    broken.write_bytes(violation.replace(b"string-length(.) &lt;= 4000", b"string-length(("))
    with pytest.raises(ODKValidateError):
        odk_validate.check_xform(str(broken))  # the validator really runs
    for form in forms().values():
        path = tmp_path / f"{form.form_id}.xml"
        path.write_bytes(form.xform)
        assert odk_validate.check_xform(str(path)) == []


@pytest.mark.parametrize(
    "report",
    [
        {"report_id": "v-1", "kind": "violation", "occurred_at": "2016-02-28T10:15:00+02:00",
         "area": "madaya", "perpetrator": "gos", "target": "civilians", "category": "siege",
         "killed": 0, "injured": 3, "source": "staff", "confidence": "low",
         "lat": 33.6903, "lon": 36.0997, "description": "وصف بالعربية"},
        {"report_id": "d-1", "kind": "delivery", "occurred_at": "2016-03-01T00:00:00Z",
         "area": "douma", "agency": "SARC", "modality": "convoy", "status": "partial",
         "beneficiaries": 12000},
        {"report_id": "a-1", "kind": "access_request", "occurred_at": "2016-03-01T00:00:00Z",
         "area": "daraya", "status": "denied", "request_ref": "UN-2016-17"},
    ],
)  # fmt: skip
def test_a_report_survives_the_trip_through_a_form(report: dict[str, object]) -> None:
    """The demo's phone fills a form from a report, the server reads the answers back:
    the same report (absent optional fields stay absent, the model's defaults apply)."""
    form = forms()[f"truce_{report['kind']}"]
    filled = FormTemplate(form.xform).instance(report)
    root = fromstring(filled)
    assert root.findtext("meta/instanceID") == report["report_id"]
    answered = {"report_id": report["report_id"], "kind": form.kind, **form.answers(root)}
    assert parse_report(answered) == parse_report(report)
