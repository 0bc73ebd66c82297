"""Digest schedule rules (weekly, biweekly, monthly at a weekday and local time) and their runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

EVERY = ("weekly", "biweekly", "monthly")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Day names staff may type, Dutch and English, whole or short: maandag, ma, monday, mon, ...
_DAYS = (
    ("maandag", "ma", "monday", "mon"),
    ("dinsdag", "di", "tuesday", "tue", "tues"),
    ("woensdag", "wo", "wednesday", "wed"),
    ("donderdag", "do", "thursday", "thu", "thur", "thurs"),
    ("vrijdag", "vr", "friday", "fri"),
    ("zaterdag", "za", "saturday", "sat"),
    ("zondag", "zo", "sunday", "sun"),
)
DAY_NAMES = {name: number for number, names in enumerate(_DAYS) for name in names}
EVERY_NAMES = {
    "weekly": "weekly",
    "wekelijks": "weekly",
    "biweekly": "biweekly",
    "fortnightly": "biweekly",
    "tweewekelijks": "biweekly",
    "monthly": "monthly",
    "maandelijks": "monthly",
}
# Biweekly runs fall in the even weeks counted from this Monday, whatever the link date.
BIWEEKLY_EPOCH = date(2024, 1, 1)
# Daylight saving time starts and ends between 02:00 and 03:00 in Europe/Amsterdam: a run in
# that hour would be skipped once a year and doubled once a year.
DST_HOUR = 2


class ScheduleError(ValueError):
    """A schedule rule that cannot be used."""


@dataclass(frozen=True)
class Schedule:
    """When an alliance gets its digest: every week, two weeks or month, on a weekday, at a time."""

    every: str = "weekly"
    weekday: int = 0  # Monday
    at: time = time(9, 0)

    def __post_init__(self) -> None:
        if self.every not in EVERY:
            raise ScheduleError(f"'every' must be one of {', '.join(EVERY)}, not {self.every!r}")
        if not 0 <= self.weekday <= 6:
            raise ScheduleError("weekday must be 0 (Monday) to 6 (Sunday)")
        if self.at.hour == DST_HOUR:
            raise ScheduleError(
                "times from 02:00 to 02:59 are refused: daylight saving time skips or repeats "
                "that hour; choose 03:00 or later, or 01:59 or earlier"
            )

    @classmethod
    def parse(cls, every: str, day: str, at: str) -> Schedule:
        """From CLI words, Dutch or English: `weekly`/`wekelijks`, `mon`/`maandag`, `09:00`."""
        weekday = DAY_NAMES.get(day.strip().lower().rstrip("."))
        if weekday is None:
            raise ScheduleError(
                "day must be a day of the week in Dutch or English (maandag or ma, monday or "
                f"mon, ... zondag, sunday), not {day!r}"
            )
        rule = EVERY_NAMES.get(every.strip().lower())
        if rule is None:
            raise ScheduleError(
                f"'every' must be weekly, biweekly or monthly (wekelijks, tweewekelijks, "
                f"maandelijks), not {every!r}"
            )
        try:
            hours, minutes = at.strip().replace(".", ":").split(":")
            moment = time(int(hours), int(minutes))
        except ValueError as exc:
            raise ScheduleError(f"time must look like 09:00, not {at!r}") from exc
        return cls(rule, weekday, moment)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Schedule:
        """From an Alliance.schedule row; missing keys take the defaults (Mondays 09:00)."""
        data = data or {}
        return cls.parse(
            str(data.get("every", "weekly")),
            str(data.get("day", "mon")),
            str(data.get("time", "09:00")),
        )

    def to_json(self) -> dict[str, Any]:
        """For Alliance.schedule."""
        return {
            "every": self.every,
            "day": WEEKDAYS[self.weekday],
            "time": self.at.strftime("%H:%M"),
        }

    def describe(self) -> str:
        """Short, language-neutral form for lists: `weekly mon 09:00`."""
        return f"{self.every} {WEEKDAYS[self.weekday]} {self.at.strftime('%H:%M')}"

    def runs_on(self, day: date) -> bool:
        """Whether a run falls on this local date."""
        if day.weekday() != self.weekday:
            return False
        if self.every == "biweekly":
            return ((day - BIWEEKLY_EPOCH).days // 7) % 2 == 0
        if self.every == "monthly":
            return day.day <= 7  # the first such weekday of the month
        return True

    def run_at(self, day: date, tz: ZoneInfo) -> datetime:
        """The run on a local date, in UTC; a local time that does not exist moves an hour on."""
        local = datetime.combine(day, self.at, tzinfo=tz)
        as_utc = local.astimezone(UTC)
        if as_utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
            # Only reachable in zones with other transition hours; Amsterdam's hour is refused.
            as_utc = (local + timedelta(hours=1)).astimezone(UTC)
        return as_utc

    def previous_run(self, now: datetime, tz: ZoneInfo | str) -> datetime:
        """The latest run at or before `now` (UTC)."""
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        day = now.astimezone(zone).date()
        for _ in range(62):  # a monthly rule runs at least every 5 weeks
            if self.runs_on(day):
                moment = self.run_at(day, zone)
                if moment <= now:
                    return moment
            day -= timedelta(days=1)
        raise AssertionError("no run in 62 days")  # pragma: no cover - every rule runs monthly

    def next_run(self, after: datetime, tz: ZoneInfo | str) -> datetime:
        """The first run strictly after `after` (UTC)."""
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        day = after.astimezone(zone).date()
        for _ in range(62):
            if self.runs_on(day):
                moment = self.run_at(day, zone)
                if moment > after:
                    return moment
            day += timedelta(days=1)
        raise AssertionError("no run in 62 days")  # pragma: no cover


DEFAULT_SCHEDULE = Schedule()
