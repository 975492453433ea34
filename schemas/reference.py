"""Reference data (areas and parties) shipped as package data, loaded once and cached.

The files are the single source of the codes partners may use; the report models
validate against them, and the reference endpoints serve them in file order."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CODE_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
RESERVED_CODES = frozenset({"civilians", "infrastructure"})
"""Literal violation targets; no party or area may use them as its code."""

Side = Literal["government", "opposition", "other", "international", "designated", "unknown"]


class Area(BaseModel):
    """A place reports are filed about (GET /v1/reference/areas)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1)
    name_ar: str = Field(min_length=1, description="the name in Arabic (see the file's sources)")
    governorate: str = Field(min_length=1)
    besieged: bool
    hard_to_reach: bool
    people_in_need: int = Field(ge=0)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Party(BaseModel):
    """A party to the conflict (GET /v1/reference/parties); designated ones are exempt."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1)
    name_ar: str = Field(min_length=1, description="the name in Arabic (see the file's sources)")
    side: Side
    designated: bool


class _AreasFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1)
    name_ar_source: str = Field(min_length=1)
    note: str = Field(min_length=1)
    adm1_pcode_source: str = Field(min_length=1)
    adm1_pcodes: dict[str, str] = Field(min_length=1)
    areas: tuple[Area, ...] = Field(min_length=1)


class _PartiesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1)
    name_ar_source: str = Field(min_length=1)
    note: str = Field(min_length=1)
    parties: tuple[Party, ...] = Field(min_length=1)


def _read(name: str) -> bytes:
    return files("schemas").joinpath("data", name).read_bytes()


def _check_codes(kind: str, codes: list[str]) -> None:
    """Fail loudly at load time on data errors the models cannot see."""
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise ValueError(f"duplicate {kind} codes in reference data: {duplicates}")
    reserved = sorted(RESERVED_CODES.intersection(codes))
    if reserved:
        raise ValueError(f"{kind} codes {reserved} collide with literal violation targets")


@cache
def area_list() -> tuple[Area, ...]:
    """Every area, in file order."""
    loaded = _AreasFile.model_validate_json(_read("areas.json")).areas
    _check_codes("area", [a.code for a in loaded])
    return loaded


@cache
def adm1_pcodes() -> Mapping[str, str]:
    """OCHA's P-code of every governorate the areas name (``Rural Damascus`` -> ``SY03``),
    so exports join OCHA's common operational datasets; a governorate without one is a
    data error at load time."""
    loaded = _AreasFile.model_validate_json(_read("areas.json"))
    missing = sorted({a.governorate for a in loaded.areas} - set(loaded.adm1_pcodes))
    if missing:
        raise ValueError(f"governorates without an adm1 P-code in areas.json: {missing}")
    return MappingProxyType(dict(loaded.adm1_pcodes))


@cache
def party_list() -> tuple[Party, ...]:
    """Every party, in file order."""
    loaded = _PartiesFile.model_validate_json(_read("parties.json")).parties
    _check_codes("party", [p.code for p in loaded])
    return loaded


@cache
def areas() -> Mapping[str, Area]:
    """Areas by code (read-only)."""
    return MappingProxyType({a.code: a for a in area_list()})


@cache
def parties() -> Mapping[str, Party]:
    """Parties by code (read-only)."""
    return MappingProxyType({p.code: p for p in party_list()})


def reference_source(kind: Literal["areas", "parties"]) -> str:
    """The public sources a data file cites, for reports and the dashboard footer."""
    if kind == "areas":
        return _AreasFile.model_validate_json(_read("areas.json")).source
    return _PartiesFile.model_validate_json(_read("parties.json")).source
