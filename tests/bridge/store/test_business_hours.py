"""Business hours: open or closed at a moment, when a closed team opens, and the open time
between two moments (what SLA clocks count)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bridge.store.business_hours import HoursError, business_hours

MOSCOW = ZoneInfo("Europe/Moscow")
WEEKDAYS_9_TO_18 = {str(day): [["09:00", "18:00"]] for day in range(5)}


def moscow(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """December 2026 in Moscow: the 7th is a Monday."""
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=MOSCOW)


def office(holidays: list[str] | None = None):
    hours = business_hours("Europe/Moscow", WEEKDAYS_9_TO_18, holidays)
    assert hours is not None
    return hours


def test_no_time_zone_means_always_open():
    assert business_hours(None, WEEKDAYS_9_TO_18, None) is None


def test_open_within_the_hours_of_the_teams_zone():
    hours = office()
    assert hours.is_open(moscow(7, 9))
    assert not hours.is_open(moscow(7, 18))
    assert not hours.is_open(moscow(12, 12))  # Saturday
    # 07:00 UTC is 10:00 in Moscow
    assert hours.is_open(dt.datetime(2026, 12, 7, 7, tzinfo=dt.UTC))


def test_a_holiday_is_closed_all_day():
    hours = office(["2026-12-08"])
    assert not hours.is_open(moscow(8, 12))
    assert hours.next_opening(moscow(7, 19)) == moscow(9, 9)


def test_a_team_closed_for_the_weekend_opens_on_monday():
    assert office().next_opening(moscow(11, 18, 30)) == moscow(14, 9)


def test_an_open_team_opens_now():
    assert office().next_opening(moscow(7, 10)) == moscow(7, 10)


def test_a_team_with_no_hours_never_opens():
    hours = business_hours("Europe/Moscow", {}, None)
    assert hours is not None and hours.next_opening(moscow(7, 10)) is None


def test_working_time_skips_nights_and_weekends():
    hours = office()
    assert hours.working_seconds(moscow(7, 17), moscow(8, 10)) == 2 * 3600
    assert hours.working_seconds(moscow(11, 17), moscow(14, 9, 30)) == 1.5 * 3600
    assert hours.working_seconds(moscow(12, 10), moscow(13, 10)) == 0


def test_open_until_midnight_is_written_24_00():
    hours = business_hours("Europe/Moscow", {"0": [["20:00", "24:00"]]}, None)
    assert hours is not None
    assert hours.is_open(moscow(7, 23, 59))
    assert hours.working_seconds(moscow(7, 19), moscow(8, 1)) == 4 * 3600


@pytest.mark.parametrize(
    ("zone", "week", "holidays"),
    [
        ("Mars/Olympus", {}, None),
        ("Europe/Moscow", {"7": [["09:00", "18:00"]]}, None),
        ("Europe/Moscow", {"0": [["9:00", "18:00"]]}, None),
        ("Europe/Moscow", {"0": [["18:00", "09:00"]]}, None),
        ("Europe/Moscow", {"0": [["09:00", "13:00"], ["12:00", "18:00"]]}, None),
        ("Europe/Moscow", {}, ["08.12.2026"]),
    ],
)
def test_hours_that_make_no_sense_are_refused_with_the_reason(zone, week, holidays):
    with pytest.raises(HoursError):
        business_hours(zone, week, holidays)
