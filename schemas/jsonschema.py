"""JSON Schemas for partners, generated from the models and committed under schemas/json/.

``python -m schemas.jsonschema`` regenerates the files; a unit test fails when they drift
from the models, so the published schema and the validator cannot disagree."""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final

from pydantic import TypeAdapter

from schemas.reports import Report
from schemas.requests import BatchRequest
from schemas.weekly_report import WeeklyReport

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIR: Final = Path(__file__).resolve().parent / "json"


@cache
def _report() -> dict[str, Any]:
    schema = TypeAdapter(Report).json_schema(mode="validation")
    return {
        "$schema": DIALECT,
        "title": "Report",
        "description": "One report as POSTed to /v1/reports (Truce contract v1, section 2).",
        **schema,
    }


@cache
def _batch() -> dict[str, Any]:
    schema = BatchRequest.model_json_schema(mode="validation")
    return {
        "$schema": DIALECT,
        "description": "The body of POST /v1/reports/batch: 1 to 1,000 reports, all or none.",
        **schema,
    }


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every ``#/$defs/...`` reference replaced by its definition.

    For embedding in an OpenAPI document, where ``#/...`` would resolve against the whole
    document. Our models are not recursive, so this terminates."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            out = {k: walk(v) for k, v in node.items() if k not in ("$defs", "$schema")}
            if isinstance(out.get("discriminator"), dict):
                out["discriminator"] = {"propertyName": out["discriminator"]["propertyName"]}
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


@cache
def _weekly_report() -> dict[str, Any]:
    schema = WeeklyReport.model_json_schema(mode="serialization")
    return {
        "$schema": DIALECT,
        "description": "GET /v1/weekly-report/{week} as JSON (Truce contract v1, section 4).",
        **schema,
    }


def weekly_report_schema() -> dict[str, Any]:
    """The schema of the weekly report's JSON format (a fresh copy)."""
    return copy.deepcopy(_weekly_report())


def report_schema(*, inline: bool = False) -> dict[str, Any]:
    """The schema of one report (a fresh copy; ``inline`` for OpenAPI embedding)."""
    return inline_refs(_report()) if inline else copy.deepcopy(_report())


def batch_schema(*, inline: bool = False) -> dict[str, Any]:
    """The schema of a batch request body (a fresh copy; ``inline`` for OpenAPI)."""
    return inline_refs(_batch()) if inline else copy.deepcopy(_batch())


def render(schema: dict[str, Any]) -> str:
    """The committed text form: sorted keys, two-space indent, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated() -> dict[str, str]:
    """File name -> text of every generated schema file."""
    return {
        "report.schema.json": render(report_schema()),
        "batch.schema.json": render(batch_schema()),
        "weekly-report.schema.json": render(weekly_report_schema()),
    }


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file into ``directory``; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generated().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate schemas/json/ from the models, or with ``--check`` report drift (exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m schemas.jsonschema", description=__doc__)
    parser.add_argument("--out", type=Path, default=SCHEMA_DIR, help="target directory")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    if args.check:
        stale = [
            name
            for name, text in generated().items()
            if not (args.out / name).is_file()
            or (args.out / name).read_text(encoding="utf-8") != text
        ]
        for name in stale:
            print(f"stale: {args.out / name}")
        return 1 if stale else 0
    for path in write_all(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
