"""Schedule rules: runs in Europe/Amsterdam across daylight saving time, and refused hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from digests.schedule import Schedule, ScheduleError

TZ = "Europe/Amsterdam"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_default_is_monday_nine_local_in_winter_and_summer() -> None:
    rule = Schedule()
    # Winter (CET, UTC+1): Monday 9 November 2026 09:00 local is 08:00 UTC.
    assert rule.next_run(utc(2026, 11, 4, 12), TZ) == utc(2026, 11, 9, 8)
    # Summer (CEST, UTC+2): Monday 6 July 2026 09:00 local is 07:00 UTC.
    assert rule.next_run(utc(2026, 7, 1), TZ) == utc(2026, 7, 6, 7)
    assert rule.previous_run(utc(2026, 11, 9, 8), TZ) == utc(2026, 11, 9, 8)
    assert rule.previous_run(utc(2026, 11, 9, 7, 59), TZ) == utc(2026, 11, 2, 8)


def test_runs_keep_local_time_over_the_dst_switch() -> None:
    rule = Schedule("weekly", 6, time(3, 0))  # Sundays 03:00, right after the switch hour
    # 29 March 2026: clocks go from 02:00 to 03:00; 25 October 2026: from 03:00 back to 02:00.
    assert rule.next_run(utc(2026, 3, 28), TZ) == utc(2026, 3, 29, 1)
    assert rule.next_run(utc(2026, 10, 24), TZ) == utc(2026, 10, 25, 2)


@pytest.mark.parametrize("at", ["02:00", "02:30", "02:59"])
def test_the_dst_hour_is_refused(at: str) -> None:
    with pytest.raises(ScheduleError, match="daylight saving"):
        Schedule.parse("weekly", "sun", at)


def test_bad_rules_are_refused() -> None:
    for args in (
        ("daily", "mon", "09:00"),
        ("weekly", "mondag", "09:00"),
        ("weekly", "m", "09:00"),
        ("weekly", "mon", "9u"),
    ):
        with pytest.raises(ScheduleError):
            Schedule.parse(*args)


@pytest.mark.parametrize(
    ("day", "weekday"),
    [
        ("maandag", 0),
        ("Ma", 0),
        ("monday", 0),
        ("MON", 0),
        ("di.", 1),
        ("woensdag", 2),
        ("do", 3),
        ("thursday", 3),
        ("vrijdag", 4),
        ("za", 5),
        ("zondag", 6),
        ("sun", 6),
    ],
)
def test_days_in_dutch_and_english(day: str, weekday: int) -> None:
    assert Schedule.parse("weekly", day, "09:00").weekday == weekday


def test_every_in_dutch_and_a_dutch_time() -> None:
    rule = Schedule.parse("tweewekelijks", "vrijdag", "16.30")
    assert rule.to_json() == {"every": "biweekly", "day": "fri", "time": "16:30"}
    assert Schedule.parse("maandelijks", "ma", "9:00").every == "monthly"


def test_biweekly_runs_every_other_week() -> None:
    rule = Schedule.parse("biweekly", "mon", "09:00")
    first = rule.next_run(utc(2026, 11, 1), TZ)
    second = rule.next_run(first, TZ)
    assert second - first == timedelta(days=14)
    assert rule.previous_run(second - timedelta(minutes=1), TZ) == first


def test_monthly_is_the_first_weekday_of_the_month() -> None:
    rule = Schedule.parse("monthly", "tue", "10:30")
    runs = [rule.next_run(utc(2026, 1, 1), TZ)]
    for _ in range(3):
        runs.append(rule.next_run(runs[-1], TZ))
    assert [r.date().isoformat() for r in runs] == [
        "2026-01-06",
        "2026-02-03",
        "2026-03-03",
        "2026-04-07",
    ]


def test_json_round_trip_and_defaults() -> None:
    rule = Schedule.parse("monthly", "FRI", "17:45")
    assert Schedule.from_json(rule.to_json()) == rule
    assert Schedule.from_json({}) == Schedule()
