"""Reports as spreadsheet columns (CONTRACT 10): a column per report field, named as the
field, with its HXL hashtag, its cell type and whether it is required, all read off the
report models so that a spreadsheet template or import cannot drift from them.

The hashtags are those the weekly report's HXL export uses for the same things
(``#loc+code`` for an area, ``#meta+id`` for a report id, ...): it takes them from here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal, cast, get_args

from schemas.reports import KINDS, MODELS, ReportBase

HXL_TAGS: Final[dict[str, str]] = {
    "report_id": "#meta+id",
    "revision": "#meta+revision+num",
    "kind": "#meta+kind",
    "occurred_at": "#date+occurred",
    "area": "#loc+code",
    "perpetrator": "#group+code",  # armed parties are groups, as in ACLED's HXL; #org: agencies
    "target": "#meta+target",
    "category": "#event+type",
    "killed": "#affected+killed+num",
    "injured": "#affected+injured+num",
    "source": "#meta+source",
    "confidence": "#meta+confidence",
    "lat": "#geo+lat",
    "lon": "#geo+lon",
    "description": "#description",
    "agency": "#org+impl+name",
    "modality": "#activity+modality",
    "status": "#status",
    "beneficiaries": "#reached+num",
    "trucks": "#indicator+trucks+num",
    "request_ref": "#access+request+id",
    "beneficiaries_planned": "#targeted+num",
    "subject": "#meta+subject+id",
    "party": "#group+designated+code",
    "effective_to": "#date+end",
    "retracted": "#meta+retracted",
    "members": "#meta+members+id",
}
"""The HXL hashtag of every report field (one tag per field name, whichever kind)."""

_HXL = re.compile(r"^#[a-z][a-z0-9_]*(\+[a-z][a-z0-9_]*)*$")

CellType = Literal["string", "integer", "number", "boolean", "list"]
"""``list``: several values in one cell, separated by spaces, commas or semicolons (an
incident's member report ids)."""


@dataclass(frozen=True)
class Column:
    """One report field as a spreadsheet column."""

    name: str
    hxl: str
    type: CellType
    required: bool
    choices: tuple[str, ...] = ()
    description: str = ""


def normalise_tag(text: str) -> str:
    """An HXL hashtag as it compares: lower case, no spaces, attributes in any order
    (``#affected +num +killed`` is ``#affected+killed+num``); ``""`` if ``text`` is none."""
    compact = re.sub(r"\s+", "", text).lower()
    if not _HXL.match(compact):
        return ""
    tag, *attributes = compact.split("+")
    return "+".join([tag, *sorted(set(attributes))])


def _cell_type(schema: dict[str, Any]) -> CellType:
    types = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", [])]
    found = next((t for t in types if t not in (None, "null")), "string")
    if found == "array":
        return "list"
    return cast(CellType, found) if found in get_args(CellType) else "string"


def _choices(schema: dict[str, Any]) -> tuple[str, ...]:
    if "const" in schema:
        return (schema["const"],)
    return tuple(schema.get("enum", ()))


def _columns(model: type[ReportBase]) -> tuple[Column, ...]:
    properties = model.model_json_schema()["properties"]
    required = set(model.model_json_schema().get("required", []))
    middle = [n for n in model.model_fields if n not in ("kind", "retracted")]
    names = ["kind", *middle, "retracted"]
    return tuple(
        Column(
            name=name,
            hxl=HXL_TAGS[name],
            type=_cell_type(properties[name]),
            required=name in required,
            choices=_choices(properties[name]),
            description=properties[name].get("description", ""),
        )
        for name in names
    )


COLUMNS: Final[dict[str, tuple[Column, ...]]] = {
    get_args(model.model_fields["kind"].annotation)[0]: _columns(model) for model in MODELS
}
"""Every kind's columns, in the order a template shows them (``kind`` first, ``retracted``
last)."""

BY_NAME: Final[dict[str, Column]] = {c.name: c for cs in COLUMNS.values() for c in cs}
BY_TAG: Final[dict[str, str]] = {normalise_tag(tag): name for name, tag in HXL_TAGS.items()}
"""Field name by normalised hashtag."""

assert set(COLUMNS) == set(KINDS)
assert all(normalise_tag(tag) for tag in HXL_TAGS.values()), "a tag is not HXL"
assert len(BY_TAG) == len(HXL_TAGS), "two fields share a hashtag"
