"""Calendar periods in Europe/Amsterdam local time, computed from the EU summer-time rule.

The host's time-zone files are never read: every validator and every auditor must agree
on which month a block falls in, whatever their tzdata. The Netherlands keeps Central
European Time (UTC+1) and, since 1996 under the EU rule, summer time (UTC+2) from the
last Sunday of March 01:00 UTC to the last Sunday of October 01:00 UTC. The rule is
applied to every year; the ledger's block times are all far later than 1996.

All arithmetic is on integers (days since 1970-01-01, the proleptic Gregorian calendar).
"""
from __future__ import annotations

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a Gregorian date (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def last_sunday(year: int, month: int) -> int:
    """Day number of the last Sunday of a month of 31 days (March and October)."""
    last = days_from_civil(year, month, 31)
    weekday = (last + 3) % 7          # 1970-01-01 was a Thursday; Monday is 0
    return last - (weekday - 6) % 7


def summer_time_bounds_ms(year: int) -> tuple[int, int]:
    """[start, end) of summer time in a UTC year, in ms since the epoch."""
    start = last_sunday(year, 3) * MS_PER_DAY + MS_PER_HOUR
    end = last_sunday(year, 10) * MS_PER_DAY + MS_PER_HOUR
    return start, end


def utc_offset_ms(time_ms: int) -> int:
    year = civil_from_days(time_ms // MS_PER_DAY)[0]
    start, end = summer_time_bounds_ms(year)
    return 2 * MS_PER_HOUR if start <= time_ms < end else MS_PER_HOUR


def local_date(time_ms: int) -> tuple[int, int, int]:
    """(year, month, day) in Amsterdam of an instant."""
    return civil_from_days((time_ms + utc_offset_ms(time_ms)) // MS_PER_DAY)


def periods(time_ms: int) -> tuple[int, str, str]:
    """(local year, month period "YYYY-MM", year period "YYYY") of an instant."""
    year, month, _ = local_date(time_ms)
    return year, f"{year:04d}-{month:02d}", f"{year:04d}"


def local_month_start_ms(year: int, month: int) -> int:
    """The instant at which a local calendar month begins in Amsterdam.

    Month starts are at local midnight, never inside a summer-time switch (01:00 UTC on
    a Sunday), so the offset just before the UTC candidate decides it.
    """
    midnight_utc = days_from_civil(year, month, 1) * MS_PER_DAY
    # Local midnight is one or two hours before UTC midnight of the same date.
    for offset in (2 * MS_PER_HOUR, MS_PER_HOUR):
        candidate = midnight_utc - offset
        if utc_offset_ms(candidate) == offset:
            return candidate
    raise AssertionError("no local midnight found")  # pragma: no cover
