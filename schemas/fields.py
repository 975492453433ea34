"""Constrained field types shared by the report models.

Codes are checked against the reference data at validation time, with messages that tell
a partner where the valid codes are listed."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from schemas.reference import areas, parties

REPORT_ID_PATTERN = r"^[A-Za-z0-9._:-]+$"
MAX_COUNT = 100_000
"""Sanity bound for casualties and trucks: larger numbers are typing errors."""
MAX_BENEFICIARIES = 10_000_000
MAX_REVISION = 1_000_000

TARGET_LITERALS = ("civilians", "infrastructure")


def known_area(code: str) -> str:
    """An area code that exists in the reference data."""
    if code not in areas():
        raise PydanticCustomError(
            "unknown_area",
            "unknown area code '{code}'; see GET /v1/reference/areas",
            {"code": code},
        )
    return code


def known_party(code: str) -> str:
    """A party code that exists in the reference data."""
    if code not in parties():
        raise PydanticCustomError(
            "unknown_party",
            "unknown party code '{code}'; see GET /v1/reference/parties",
            {"code": code},
        )
    return code


def known_target(code: str) -> str:
    """'civilians', 'infrastructure' or a party code."""
    if code in TARGET_LITERALS or code in parties():
        return code
    raise PydanticCustomError(
        "unknown_target",
        "unknown target '{code}'; use 'civilians', 'infrastructure' or a party code "
        "from GET /v1/reference/parties",
        {"code": code},
    )


def designated_party(code: str) -> str:
    """A party the UN Security Council designated (the only ones a designation may name)."""
    known_party(code)
    if not parties()[code].designated:
        raise PydanticCustomError(
            "not_designated",
            "party '{code}' is not designated; a designation must name a party with "
            "designated: true in GET /v1/reference/parties",
            {"code": code},
        )
    return code


ReportId = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=REPORT_ID_PATTERN),
]
Revision = Annotated[int, Field(strict=True, ge=1, le=MAX_REVISION)]
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_COUNT)]
People = Annotated[int, Field(strict=True, ge=0, le=MAX_BENEFICIARIES)]
AreaCode = Annotated[
    str,
    Field(min_length=1, max_length=64, description="an area code from GET /v1/reference/areas"),
    AfterValidator(known_area),
]
PartyCode = Annotated[
    str,
    Field(min_length=1, max_length=64, description="a party code from GET /v1/reference/parties"),
    AfterValidator(known_party),
]
TargetCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="'civilians', 'infrastructure' or a party code from GET /v1/reference/parties",
    ),
    AfterValidator(known_target),
]
DesignatedPartyCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="a party code with designated: true in GET /v1/reference/parties",
    ),
    AfterValidator(designated_party),
]
Description = Annotated[str, Field(max_length=4000)]
"""Free text; pydantic itself refuses lone surrogates, which UTF-8 cannot carry."""
AgencyName = Annotated[str, Field(min_length=1, max_length=200)]
RequestRef = Annotated[str, Field(min_length=1, max_length=100)]
Latitude = Annotated[float, Field(strict=True, ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(strict=True, ge=-180, le=180, allow_inf_nan=False)]

Kind = Literal["violation", "delivery", "access_request", "verification", "designation", "incident"]
