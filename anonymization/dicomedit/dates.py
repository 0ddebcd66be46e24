"""Date and date-time shifting with DicomEdit's precision rules (input precision and fraction kept)."""
from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

from .errors import ScriptRuntimeFault

_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?\Z")
_TM = re.compile(r"(\d{2})(\d{2})?(\d{2})?(\.\d{1,6})?\Z")
_SECONDS = {"seconds": 1, "second": 1, "minutes": 60, "minute": 60, "hours": 3600, "hour": 3600,
            "days": 86400, "day": 86400, "weeks": 604800, "week": 604800}


def _int(text: str | None, what: str) -> int:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        raise ScriptRuntimeFault(f"{what} is not an integer") from None


def _add(dt: datetime, n: int, units: str) -> datetime:
    u = units.strip().lower()
    if u in _SECONDS:
        return dt + timedelta(seconds=n * _SECONDS[u])
    if u in ("months", "month", "years", "year"):
        months = n * (12 if u.startswith("year") else 1)
        total = dt.year * 12 + dt.month - 1 + months
        year, month = divmod(total, 12)
        day = min(dt.day, calendar.monthrange(year, month + 1)[1])
        return dt.replace(year=year, month=month + 1, day=day)
    raise ScriptRuntimeFault(f"unknown time unit '{units}'")


def shift_date(value: str | None, n: str | None, units: str = "days") -> str | None:
    """``shiftDateByIncrement``: a DA ``yyyyMMdd`` moved by n units (default days)."""
    if value is None:
        return None
    try:
        dt = datetime.strptime(value.strip(), "%Y%m%d")
    except ValueError:
        raise ScriptRuntimeFault("value is not a date (yyyyMMdd)") from None
    return _add(dt, _int(n, "increment"), units).strftime("%Y%m%d")


def shift_datetime(value: str | None, n: str | None, units: str = "seconds") -> str | None:
    """``shiftDateTimeByIncrement``: a DT/DA shifted; output keeps the input's precision, its fraction
    text and its timezone suffix."""
    if value is None:
        return None
    m = _DT.match(value.strip())
    if not m:
        raise ScriptRuntimeFault("value is not a DICOM date-time")
    year, month, day, hour, minute, second, frac, tz = m.groups()
    present = sum(1 for g in (year, month, day, hour, minute, second) if g is not None)
    dt = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                  int(second or 0))
    dt = _add(dt, _int(n, "increment"), units)
    full = dt.strftime("%Y%m%d%H%M%S")
    out = full[: (4, 6, 8, 10, 12, 14)[present - 1]]
    return out + (frac or "") + (tz or "")


def shift_time(value: str, n: int) -> str:
    """A TM shifted by n seconds, wrapping at midnight, precision and fraction kept."""
    m = _TM.match(value.strip())
    if not m:
        raise ScriptRuntimeFault("value is not a DICOM time")
    hour, minute, second, frac = m.groups()
    present = sum(1 for g in (hour, minute, second) if g is not None)
    total = (int(hour) * 3600 + int(minute or 0) * 60 + int(second or 0) + n) % 86400
    full = f"{total // 3600:02d}{total // 60 % 60:02d}{total % 60:02d}"
    return full[: present * 2] + (frac or "")


def shift_by_vr(value: str, vr: str, seconds: int) -> str:
    """Shift one DA, DT or TM value by a number of seconds."""
    if vr == "DA":
        result = shift_datetime(value, str(seconds), "seconds")
        return result[:8] if result else value
    if vr == "DT":
        return shift_datetime(value, str(seconds), "seconds") or value
    if vr == "TM":
        return shift_time(value, seconds)
    raise ScriptRuntimeFault(f"element has VR {vr}, not DA, DT or TM")


def midpoint_seconds(value: str | None) -> int | None:
    """A DA/DT value as seconds since 0001-01-01 UTC at the middle of the period it names, the way
    DicomEdit's MidPointDateTimeFactory reads it (None if empty or not a date):

    a year alone is 1 July 00:00; a month alone is its middle day (days // 2 + 1) at 00:00, or 12:00
    when the month has an odd number of days; a day alone is 12:00; an hour alone is hh:30:00; a
    minute alone is hh:mm:30. The fraction is ignored; an offset counts by its digits only (its sign
    is dropped, as DicomEdit does).
    """
    if not value:
        return None
    m = _DT.match(value.strip())
    if not m:
        return None
    year_s, month_s, day_s, hour_s, minute_s, second_s, _frac, tz = m.groups()
    year = int(year_s)
    month = int(month_s) if month_s else 7
    if not 1 <= month <= 12 or year < 1:
        return None
    month_days = calendar.monthrange(year, month)[1]
    if day_s:
        day = int(day_s)
    else:
        day = month_days // 2 + 1 if month_s else 1
    if hour_s:
        hour = int(hour_s)
    elif day_s:
        hour = 12
    elif month_s:
        hour = 0 if month_days % 2 == 0 else 12
    else:
        hour = 0
    minute = int(minute_s) if minute_s else (30 if hour_s else 0)
    second = int(second_s) if second_s else (30 if minute_s else 0)
    try:
        dt = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    offset = int(tz[1:3]) * 3600 + int(tz[3:5]) * 60 if tz else 0
    return (dt - datetime(1, 1, 1)) // timedelta(seconds=1) - offset
