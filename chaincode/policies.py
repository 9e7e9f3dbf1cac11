"""The Dutch volunteer-allowance limits 2021-2026, in cents: the demo network's defaults.

2026 as announced in the State Secretary's letter; check it against the tax authority's
page before a city relies on it."""
from __future__ import annotations

from .periods import periods

WARN_FROM_MONTH = 11    # from 1 November (Amsterdam) the coming year's policy is due

DEFAULT_POLICIES: list[dict] = [
    {"year": year, "hourly_cap_21plus": h21, "hourly_cap_under21": hu21,
     "monthly_cap": month, "yearly_cap": year_cap}
    for year, h21, hu21, month, year_cap in (
        (2021, 500, 275, 18_000, 180_000),
        (2022, 500, 275, 18_000, 180_000),
        (2023, 500, 275, 19_000, 190_000),
        (2024, 550, 325, 21_000, 210_000),
        (2025, 560, 330, 21_000, 210_000),
        (2026, 575, 340, 22_000, 220_000),
    )
]


def coming_year_unset(years: list[int], time_ms: int) -> int | None:
    """The coming year, from 1 November of a year (Amsterdam), when `years` (those with a
    cap policy of their own) lack it: the current policy would carry over into it, which
    the partners should decide rather than let happen. Else None."""
    year, month, _ = periods(time_ms)
    if int(month[5:7]) >= WARN_FROM_MONTH and year + 1 not in years:
        return year + 1
    return None
