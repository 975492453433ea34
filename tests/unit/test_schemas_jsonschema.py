"""The committed JSON Schemas match the models (regenerate with python -m schemas.jsonschema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas import BatchRequest, parse_report
from schemas.jsonschema import (
    SCHEMA_DIR,
    batch_schema,
    generated,
    main,
    report_schema,
    write_all,
)

FIX = "python -m schemas.jsonschema"


@pytest.mark.parametrize(
    "name", ["report.schema.json", "batch.schema.json", "weekly-report.schema.json"]
)
def test_committed_schema_has_not_drifted(name: str) -> None:
    committed = (SCHEMA_DIR / name).read_bytes()
    fresh = generated()[name].encode("utf-8")
    assert committed == fresh, f"schemas/json/{name} is stale; run `{FIX}` and commit it"


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    first = {p.name: p.read_bytes() for p in write_all(tmp_path)}
    second = {p.name: p.read_bytes() for p in write_all(tmp_path)}
    assert first == second
    assert all(text.endswith(b"}\n") for text in first.values())
    assert set(first) == {p.name for p in SCHEMA_DIR.glob("*.schema.json")}


def test_main_writes_the_committed_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--out", str(tmp_path), "--check"]) == 1
    assert main(["--out", str(tmp_path)]) == 0
    assert "report.schema.json" in capsys.readouterr().out
    for path in tmp_path.iterdir():
        assert path.read_bytes() == (SCHEMA_DIR / path.name).read_bytes()
    assert main(["--out", str(tmp_path), "--check"]) == 0
    assert main(["--check"]) == 0


def test_report_schema_describes_the_discriminated_union() -> None:
    schema = report_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["discriminator"]["propertyName"] == "kind"
    kinds = {d["properties"]["kind"]["const"] for d in schema["$defs"].values()}
    assert kinds == {
        "violation",
        "delivery",
        "access_request",
        "verification",
        "designation",
        "incident",
    }
    violation = schema["$defs"]["Violation"]
    assert violation["additionalProperties"] is False
    assert set(violation["required"]) == {
        "report_id", "kind", "occurred_at", "area", "perpetrator", "target", "category",
        "source", "confidence",
    }  # fmt: skip
    assert "area" not in schema["$defs"]["Verification"]["properties"]


def test_batch_schema_bounds() -> None:
    reports = batch_schema()["properties"]["reports"]
    assert (reports["minItems"], reports["maxItems"]) == (1, 1000)


def test_schemas_are_fresh_copies() -> None:
    report_schema()["title"] = "changed"
    assert report_schema()["title"] == "Report"


def no_refs(node: Any) -> bool:
    if isinstance(node, dict):
        return "$ref" not in node and "$defs" not in node and all(map(no_refs, node.values()))
    if isinstance(node, list):
        return all(map(no_refs, node))
    return True


def test_inline_schemas_have_no_references_for_openapi() -> None:
    for schema in (report_schema(inline=True), batch_schema(inline=True)):
        assert no_refs(schema)
        json.dumps(schema)
    one_of = report_schema(inline=True)["oneOf"]
    assert {item["properties"]["kind"]["const"] for item in one_of} == {
        "violation", "delivery", "access_request", "verification", "designation", "incident",
    }  # fmt: skip


def test_batch_model_validates_like_single_reports() -> None:
    body = {
        "report_id": "d-1",
        "kind": "delivery",
        "occurred_at": "2016-02-17T08:00:00Z",
        "area": "madaya",
        "agency": "WFP",
        "modality": "convoy",
        "status": "completed",
        "beneficiaries": 10,
    }
    batch = BatchRequest.model_validate({"reports": [body]})
    assert batch.reports == [parse_report(body)]
    with pytest.raises(ValueError):  # noqa: PT011
        BatchRequest.model_validate({"reports": []})
