"""The edition schedule's slots (services/store/schedule.py): the latest slot at or before
a moment, across week boundaries, in UTC whatever the moment's offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from core.settings import load_settings
from services.store.schedule import Slot

MONDAY_NOON = Slot.parse("MON 12:00")


@pytest.mark.parametrize(
    ("now", "latest"),
    [
        (datetime(2016, 3, 7, 12, 0, tzinfo=UTC), datetime(2016, 3, 7, 12, 0, tzinfo=UTC)),
        (datetime(2016, 3, 7, 11, 59, tzinfo=UTC), datetime(2016, 2, 29, 12, 0, tzinfo=UTC)),
        (datetime(2016, 3, 13, 23, 0, tzinfo=UTC), datetime(2016, 3, 7, 12, 0, tzinfo=UTC)),
        # 13:30 in UTC+2 is 11:30 UTC: before the slot
        (datetime(2016, 3, 7, 13, 30, tzinfo=timezone(timedelta(hours=2))),
         datetime(2016, 2, 29, 12, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_the_latest_slot(now: datetime, latest: datetime) -> None:
    assert MONDAY_NOON.latest(now) == latest


def test_other_days_and_times() -> None:
    slot = Slot.parse("sun 23:30")
    assert slot.latest(datetime(2016, 3, 7, tzinfo=UTC)) == datetime(2016, 3, 6, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["MON 12", "monday 12:00", "MON 24:00", "12:00 MON"])
def test_a_malformed_schedule_setting_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="edition_schedule"):
        load_settings(edition_schedule=text)
