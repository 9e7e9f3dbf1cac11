"""Europe/Amsterdam calendar periods from the EU summer-time rule, in integers."""
from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import given, settings, strategies as st

from chaincode.periods import (civil_from_days, days_from_civil, local_date,
                               local_month_start_ms, periods, summer_time_bounds_ms,
                               utc_offset_ms)

HOUR = 3_600_000


def ms(y, mo, d, h=0, mi=0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=dt.timezone.utc).timestamp()) * 1000


def test_summer_time_runs_from_last_sunday_of_march_to_last_sunday_of_october_0100_utc():
    assert summer_time_bounds_ms(2025) == (ms(2025, 3, 30, 1), ms(2025, 10, 26, 1))
    assert summer_time_bounds_ms(2026) == (ms(2026, 3, 29, 1), ms(2026, 10, 25, 1))
    assert utc_offset_ms(ms(2025, 3, 30, 1) - 1) == HOUR
    assert utc_offset_ms(ms(2025, 3, 30, 1)) == 2 * HOUR
    assert utc_offset_ms(ms(2025, 10, 26, 1) - 1) == 2 * HOUR
    assert utc_offset_ms(ms(2025, 10, 26, 1)) == HOUR


def test_month_and_year_change_at_amsterdam_midnight():
    assert periods(ms(2025, 1, 31, 22, 59)) == (2025, "2025-01", "2025")
    assert periods(ms(2025, 1, 31, 23, 0)) == (2025, "2025-02", "2025")      # winter: +1
    assert periods(ms(2025, 6, 30, 21, 59)) == (2025, "2025-06", "2025")
    assert periods(ms(2025, 6, 30, 22, 0)) == (2025, "2025-07", "2025")      # summer: +2
    assert periods(ms(2025, 12, 31, 23, 0)) == (2026, "2026-01", "2026")


def test_local_month_start_is_local_midnight():
    assert local_month_start_ms(2025, 7) == ms(2025, 6, 30, 22)
    assert local_month_start_ms(2025, 11) == ms(2025, 10, 31, 23)
    assert local_month_start_ms(2026, 1) == ms(2025, 12, 31, 23)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-10**6, max_value=10**7))
def test_day_numbers_round_trip(days):
    assert days_from_civil(*civil_from_days(days)) == days


AMSTERDAM = zoneinfo.ZoneInfo("Europe/Amsterdam")


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=ms(1996, 1, 1), max_value=ms(2199, 12, 31)))
def test_local_date_agrees_with_tzdata_since_the_eu_rule(time_ms):
    # tzdata is the oracle here only: the chaincode never reads it.
    local = dt.datetime.fromtimestamp(time_ms // 1000, AMSTERDAM)
    assert local_date(time_ms) == (local.year, local.month, local.day)
    assert utc_offset_ms(time_ms) == int(local.utcoffset().total_seconds()) * 1000


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1996, max_value=2199), st.sampled_from([3, 10]))
def test_the_hours_around_each_switch_agree_with_tzdata(year, month):
    start, end = summer_time_bounds_ms(year)
    switch = start if month == 3 else end
    for delta in (-HOUR, -1000, 0, 1000, HOUR):
        t = switch + delta
        local = dt.datetime.fromtimestamp(t // 1000, AMSTERDAM)
        assert utc_offset_ms(t) == int(local.utcoffset().total_seconds()) * 1000


def test_month_ends_on_a_switch_day_use_the_new_offset():
    # 31 March 2024 was the day summer time began: April starts at 22:00 UTC.
    assert periods(ms(2024, 3, 31, 21, 59))[1] == "2024-03"
    assert periods(ms(2024, 3, 31, 22, 0))[1] == "2024-04"
    # 31 October 2021 was the day it ended: November starts at 23:00 UTC.
    assert periods(ms(2021, 10, 31, 22, 59))[1] == "2021-10"
    assert periods(ms(2021, 10, 31, 23, 0))[1] == "2021-11"
