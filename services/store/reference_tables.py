"""The reference data (schemas/reference.py: areas, parties) as ClickHouse tables, so BI users
of the SQL endpoint can join names to the codes of the views.

The tables are derived from the reference models on every start (:meth:`Database.migrate`):
their columns are the models' fields, their rows the shipped files, so the files stay the
one source and a field added to a model appears here without a migration."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

from clickhouse_connect.driver.client import Client
from pydantic import BaseModel

from schemas.reference import Area, Party, area_list, party_list

_TYPES: dict[Any, str] = {str: "String", bool: "Bool", int: "Int64", float: "Float64"}


def _column_type(annotation: Any) -> str:
    """The ClickHouse type of one reference field (``X | None`` becomes Nullable)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return "LowCardinality(String)"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return f"Nullable({_column_type(inner)})"
    return _TYPES[annotation]


def columns(model: type[BaseModel]) -> dict[str, str]:
    return {name: _column_type(f.annotation) for name, f in model.model_fields.items()}


TABLES: dict[str, tuple[type[BaseModel], Any]] = {
    "areas": (Area, area_list),
    "parties": (Party, party_list),
}
"""Table name: (model, the function listing its rows in file order)."""


ROWS = "AS SELECT * FROM format(JSONEachRow, %(structure)s, %(data)s)"


def load(client: Client) -> None:
    """Replace each reference table with the shipped rows in one statement (a few dozen
    rows): two store replicas starting together on one server never see a table half
    filled or filled twice."""
    for table, (model, rows) in TABLES.items():
        spec = columns(model)
        ddl = ", ".join(f"`{name}` {kind}" for name, kind in spec.items())
        data = "\n".join(row.model_dump_json(include=set(spec)) for row in rows())
        # table and column names are ours (the models); the rows are bound parameters
        create = f"CREATE OR REPLACE TABLE {table} ({ddl}) ENGINE = MergeTree ORDER BY code {ROWS}"
        client.command(create, parameters={"structure": ddl, "data": data})
