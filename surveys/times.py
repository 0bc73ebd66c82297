"""Moments as people read them: local times for staff and residents (pure, no time zone default).

The time zone always comes from the settings (`Settings.tz`); stored moments are aware UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def local(moment: datetime, tz: ZoneInfo) -> str:
    """A moment as local time for staff: 2026-11-09 09:00."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def local_end(moment: datetime, tz: ZoneInfo) -> str:
    """A closing moment for staff: local midnight is the end of the day before (24:00).

    `closes: 2026-12-09` closes at the start of 10 December; "2026-12-09 24:00" says the
    date the team wrote instead of one nobody wrote.
    """
    at = moment.astimezone(tz)
    if at.hour == 0 and at.minute == 0 and at.second == 0:
        return f"{(at - timedelta(days=1)):%Y-%m-%d} 24:00"
    return local(moment, tz)


def resident_time(moment: datetime, tz: ZoneInfo) -> str:
    """A moment as local time for residents: 9-11-2026 09:00."""
    at = moment.astimezone(tz)
    return f"{at.day}-{at.month}-{at.year} {at:%H:%M}"
