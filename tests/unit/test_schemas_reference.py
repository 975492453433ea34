"""Reference data: the shipped files load, cite their sources and keep codes unambiguous."""

from __future__ import annotations

import json
import re
from importlib.resources import files

import pytest

from schemas import Area, Party, area_list, areas, parties, party_list
from schemas.reference import RESERVED_CODES, reference_source

AREA_KEYS = {
    "code",
    "name",
    "name_ar",
    "governorate",
    "besieged",
    "hard_to_reach",
    "people_in_need",
    "lat",
    "lon",
}
PARTY_KEYS = {"code", "name", "name_ar", "side", "designated"}


def raw(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(files("schemas").joinpath("data", name).read_text())
    return loaded


def test_areas_load_in_file_order_with_contract_fields() -> None:
    listed = area_list()
    assert 25 <= len(listed) <= 40
    assert [a.code for a in listed] == [a["code"] for a in raw("areas.json")["areas"]]  # type: ignore[attr-defined]
    assert all(isinstance(a, Area) for a in listed)
    assert set(listed[0].model_dump()) == AREA_KEYS
    assert dict(areas()) == {a.code: a for a in listed}


def test_parties_load_in_file_order_with_contract_fields() -> None:
    listed = party_list()
    assert 12 <= len(listed) <= 20
    assert all(isinstance(p, Party) for p in listed)
    assert set(listed[0].model_dump()) == PARTY_KEYS
    assert dict(parties()) == {p.code: p for p in listed}


def test_loaders_are_cached_and_read_only() -> None:
    assert areas() is areas()
    assert party_list() is party_list()
    with pytest.raises(TypeError):
        areas()["atlantis"] = area_list()[0]  # type: ignore[index]


def test_key_places_of_the_2016_lists() -> None:
    by_code = areas()
    for code in ("madaya", "zabadani", "fouah", "kafrayah", "deir_ez_zor", "mouadhimiyeh",
                 "daraya", "douma", "kafr_batna", "yarmouk"):  # fmt: skip
        assert by_code[code].besieged, code
    assert by_code["madaya"].governorate == "Rural Damascus"
    assert by_code["madaya"].people_in_need == 40_000
    assert by_code["deir_ez_zor"].people_in_need == 200_000
    for code in ("raqqa", "aleppo_east", "idleb", "al_waer", "manbij", "azaz", "bludan"):
        assert not by_code[code].besieged, code


def test_area_coordinates_lie_in_syria() -> None:
    for area in area_list():
        assert 32.3 <= area.lat <= 37.4, area.code
        assert 35.6 <= area.lon <= 42.4, area.code
        assert area.people_in_need >= 0


def test_madaya_coordinates() -> None:
    madaya = areas()["madaya"]
    assert madaya.lat == pytest.approx(33.69, abs=0.02)
    assert madaya.lon == pytest.approx(36.10, abs=0.02)


def test_designated_parties_are_exactly_the_un_listed_groups() -> None:
    designated = {p.code for p in party_list() if p.designated}
    assert designated == {"isil", "nusra"}
    assert all(parties()[c].side == "designated" for c in designated)
    assert parties()["gos"].side == "government"
    assert parties()["unknown"].side == "unknown"
    expected = {"gos", "ru", "hzb", "ndf", "ir", "fsa", "ahrar", "jai", "faylaq", "sdf",
                "coalition", "tr", "isil", "nusra", "unknown"}  # fmt: skip
    assert expected <= set(parties())


def test_codes_are_lowercase_snake_and_never_a_literal_target() -> None:
    for code in [*areas(), *parties()]:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code), code
        assert code not in RESERVED_CODES
    assert len(set(areas())) == len(area_list())
    assert len(set(parties())) == len(party_list())


@pytest.mark.parametrize("name", ["areas.json", "parties.json"])
def test_files_cite_public_sources(name: str) -> None:
    data = raw(name)
    source, note = str(data["source"]), str(data["note"])
    assert "Munich" in source or "2268" in source
    assert "approximate" in note.lower()


def test_sources_are_readable_from_code() -> None:
    assert "OCHA" in reference_source("areas")
    assert "2254" in reference_source("parties")
    assert "2268" in reference_source("parties")


ARABIC = re.compile(r"^[\u0600-\u06FF ()/،,.]+$")


@pytest.mark.parametrize("name", ["areas.json", "parties.json"])
def test_every_code_has_an_arabic_name_with_its_source(name: str) -> None:
    data = raw(name)
    listed = data["areas" if name == "areas.json" else "parties"]
    assert all(ARABIC.match(item["name_ar"]) for item in listed)  # type: ignore[attr-defined]
    assert "Arabic Wikipedia" in str(data["name_ar_source"])


def test_arabic_names_of_known_places() -> None:
    assert areas()["madaya"].name_ar == "مضايا"
    assert areas()["daraya"].name_ar == "داريا"
    assert parties()["isil"].name_ar == "تنظيم الدولة الإسلامية (داعش)"
