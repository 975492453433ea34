"""Packing stage one's placements per area (streams.logic.packing)."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.logic.packing import pack, unpack


def placement(area: str, rid: str, padding: int = 0) -> bytes:
    return orjson.dumps({"area": area, "report_id": rid, "pad": "x" * padding})


def test_one_pack_per_area_in_order_of_first_appearance() -> None:
    records = [("a", placement("a", "1")), ("b", placement("b", "2")), ("a", placement("a", "3"))]
    packs = pack(records)
    assert [key for key, _ in packs] == ["a", "b"]
    assert [p["report_id"] for p in unpack(orjson.loads(packs[0][1]))] == ["1", "3"]
    assert [p["report_id"] for p in unpack(orjson.loads(packs[1][1]))] == ["2"]


def test_packs_stay_under_the_byte_limit_and_an_oversize_placement_goes_alone() -> None:
    records = [("a", placement("a", str(i), padding=100)) for i in range(20)]
    records.insert(5, ("a", placement("a", "big", padding=5000)))
    packs = pack(records, limit=1000)
    big = [value for _, value in packs if b"big" in value]
    assert len(big) == 1
    assert len(unpack(orjson.loads(big[0]))) == 1
    assert all(len(value) <= 1000 for _, value in packs if b"big" not in value)
    ids = [p["report_id"] for _, value in packs for p in unpack(orjson.loads(value))]
    assert ids == [orjson.loads(value)["report_id"] for _, value in records]


def test_an_unpacked_record_reads_as_one_placement() -> None:
    record = {"area": "a", "report_id": "1"}
    assert unpack(record) == [record]


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 300)), max_size=60),
    st.integers(60, 2000),
)
def test_every_placement_arrives_once_in_its_order_per_area(
    shape: list[tuple[str, int]], limit: int
) -> None:
    records = [(area, placement(area, str(i), pad)) for i, (area, pad) in enumerate(shape)]
    packs = pack(records, limit=limit)
    for area in "abc":
        sent = [p["report_id"] for key, v in packs if key == area for p in unpack(orjson.loads(v))]
        assert sent == [orjson.loads(v)["report_id"] for key, v in records if key == area]
    for _, value in packs:
        if len(unpack(orjson.loads(value))) > 1:
            assert len(value) <= limit
