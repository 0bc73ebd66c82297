"""Round lifecycle through the tick function: publish, open, invite, remind, close (SQLite + PostgreSQL)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import FakeClock
from storage import responses as response_store
from storage import rounds as store
from storage.db import Database
from storage.models import Answer, OutboxMessage, Resident, Response, Round
from storage.residents import create_resident
from storage.survey_versions import store_survey_version
from surveys.areas import default_areas
from surveys.loader import load_survey
from surveys.round_file import RoundError, RoundSpec, build_spec, parse_moment
from usecases.publish_round import publish_round
from usecases.round_tick import TickReport, reminder_due, run_round_tick

DATA = Path(__file__).parent / "data" / "surveys"
ALL_TYPES = DATA / "all_types.yaml"
TZ = ZoneInfo("Europe/Amsterdam")
UTRECHT = "utrecht-overvecht"
DELFT = "delft-west"
_chat_ids = itertools.count(5000)


def make_spec(
    clock: FakeClock,
    *,
    name: str = "Najaarspeiling",
    areas: tuple[str, ...] | list[str] | None = (UTRECHT,),
    opens_in: timedelta = timedelta(hours=1),
    lasts: timedelta = timedelta(days=14),
    **reminder: Any,
) -> RoundSpec:
    """A round of the test survey, opening `opens_in` from the clock's now."""
    opens_at = clock.now() + opens_in
    return RoundSpec(
        name=name,
        survey_path=ALL_TYPES,
        area_codes=list(areas) if areas is not None else None,
        opens_at=opens_at,
        closes_at=opens_at + lasts,
        **reminder,
    )


def publish(db: Database, clock: FakeClock, spec: RoundSpec | None = None, **kwargs: Any) -> int:
    """Publish a round and return its id."""
    spec = spec or make_spec(clock, **kwargs)
    survey = load_survey(spec.survey_path)
    source = spec.survey_path.read_text(encoding="utf-8")
    return publish_round(db, spec, survey, source, clock.now(), TZ).round_id


def resident(
    db: Database,
    clock: FakeClock,
    area: str | None = UTRECHT,
    lang: str = "nl",
    *,
    stopped: bool = False,
    unreachable: bool = False,
) -> int:
    """A consented resident in `area`; returns the resident id."""
    with db.session() as session:
        row = create_resident(
            session,
            pseudonym=f"p{next(_chat_ids)}",
            chat_id=next(_chat_ids),
            language=lang,
            language_source="chosen",
            now=clock.now(),
        )
        row.area_code = area
        if stopped:
            row.stopped_at = clock.now()
        if unreachable:
            row.unreachable_at = clock.now()
            row.unreachable_reason = "Forbidden: bot was blocked by the user"
        return row.id


def start(db: Database, clock: FakeClock, round_id: int, resident_id: int, **answers: Any) -> int:
    """A response in the round with some answers; returns the response id."""
    with db.session() as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        response = response_store.start_response(
            session,
            round_id=round_id,
            survey_version_id=round_.survey_version_id,
            resident_id=resident_id,
            response_key=f"k{round_id}-{resident_id}",
            area_code=UTRECHT,
            neighbourhood_code=None,
            language="nl",
            state={"answers": answers},
            now=clock.now(),
        )
        for question_id, value in answers.items():
            response_store.save_answer(
                session,
                response,
                question_id=question_id,
                item_code=None,
                value=value,
                text_language=None,
                now=clock.now(),
            )
        return response.id


def tick(db: Database, clock: FakeClock, **kwargs: Any) -> TickReport:
    """One round tick at the clock's now."""
    return run_round_tick(db, default_areas(), clock.now(), tz=TZ, **kwargs)


def outbox(db: Database, kind: str | None = None) -> list[OutboxMessage]:
    """Outbox rows (of one kind), oldest first."""
    with db.session() as session:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind is not None:
            stmt = stmt.where(OutboxMessage.kind == kind)
        return list(session.scalars(stmt))


def round_row(db: Database, round_id: int) -> Round:
    """The round as stored now."""
    with db.session() as session:
        found = session.get(Round, round_id)
        assert found is not None
        return found


# ---- opening and invitations ---------------------------------------------------------------


def test_round_opens_on_time_and_invites_reachable_residents_of_its_areas(
    db: Database, clock: FakeClock
) -> None:
    anna = resident(db, clock, UTRECHT, "nl")
    ben = resident(db, clock, UTRECHT, "en")
    resident(db, clock, DELFT)  # another area
    resident(db, clock, UTRECHT, stopped=True)  # used /stop
    resident(db, clock, UTRECHT, unreachable=True)  # blocked the bot
    resident(db, clock, None)  # never said where they live
    round_id = publish(db, clock)

    assert not tick(db, clock).changed
    assert round_row(db, round_id).status == "scheduled"
    assert outbox(db) == []

    clock.advance(timedelta(hours=1))
    report = tick(db, clock)
    assert report.opened == [round_id] and report.invitations == 2
    assert round_row(db, round_id).status == "open"
    invitations = outbox(db, "invitation")
    assert sorted(m.resident_id for m in invitations if m.resident_id) == sorted([anna, ben])
    by_resident = {m.resident_id: m for m in invitations}
    assert {m.dedupe_key for m in invitations} == {
        f"invite:{round_id}:{anna}",
        f"invite:{round_id}:{ben}",
    }
    dutch, english = by_resident[anna].payload, by_resident[ben].payload
    assert dutch["parse_mode"] == "HTML" and english["parse_mode"] == "HTML"
    assert "Testpeiling" in dutch["text"] and "Overvecht" in dutch["text"]
    assert "Test survey" in english["text"] and "take part" in english["text"].lower()
    assert dutch["reply_markup"] == {
        "inline_keyboard": [[{"text": "Doe mee", "callback_data": f"v1|s|{round_id}"}]]
    }
    assert by_resident[ben].method == "sendMessage"

    # The same moment again (a second tick, a new leader): nothing twice.
    again = tick(db, clock)
    assert not again.changed and len(outbox(db)) == 2


def test_round_for_all_areas_invites_everyone_who_named_an_area(
    db: Database, clock: FakeClock
) -> None:
    for area in (UTRECHT, DELFT, "leeuwarden-oost"):
        resident(db, clock, area)
    resident(db, clock, None)
    publish(db, clock, areas=None, opens_in=timedelta(0))
    assert tick(db, clock).invitations == 3


def test_bot_that_was_down_catches_up_at_start(db: Database, clock: FakeClock) -> None:
    resident(db, clock)
    passed = publish(
        db, clock, name="Voorbij", opens_in=timedelta(hours=1), lasts=timedelta(days=2)
    )
    due = publish(db, clock, name="Nu", opens_in=timedelta(days=3), lasts=timedelta(days=2))
    # Down for four days: the first round's whole period passed, the second should be open.
    clock.advance(timedelta(days=4))
    report = tick(db, clock)
    assert report.opened == [due] and report.missed == [passed]
    assert round_row(db, due).status == "open"
    assert round_row(db, passed).status == "closed" and round_row(db, passed).opened_at is None
    # Nobody is invited to a round that can no longer be answered.
    assert [m.dedupe_key.split(":")[1] for m in outbox(db, "invitation")] == [str(due)]


def test_catch_up_closes_what_passed_and_opens_what_is_due(db: Database, clock: FakeClock) -> None:
    anna = resident(db, clock)
    early = publish(db, clock, name="Vroeg", opens_in=timedelta(0), lasts=timedelta(days=2))
    assert tick(db, clock).opened == [early]
    start(db, clock, early, anna, grade=7)
    late = publish(db, clock, name="Laat", opens_in=timedelta(days=3), lasts=timedelta(days=5))
    clock.advance(timedelta(days=4))
    report = tick(db, clock)
    assert report.closed == [early] and report.opened == [late]
    assert report.closed_responses == 1
    # Closed before opened: Anna is invited to the new round and told the old one closed.
    kinds = [m.kind for m in outbox(db) if m.resident_id == anna]
    assert kinds == ["invitation", "round_closed", "invitation"]


# ---- reminders --------------------------------------------------------------------------------


def test_reminders_after_n_days_to_started_and_not_started_at_most_max(
    db: Database, clock: FakeClock
) -> None:
    started = resident(db, clock, lang="en")
    done = resident(db, clock)
    idle = resident(db, clock)
    round_id = publish(
        db,
        clock,
        opens_in=timedelta(0),
        lasts=timedelta(days=14),
        reminder_after_days=2,
        max_reminders=2,
    )
    tick(db, clock)
    start(db, clock, round_id, started, grade=6)
    response_id = start(db, clock, round_id, done, grade=8)
    with db.session() as session:
        finished = session.get(Response, response_id)
        assert finished is not None
        response_store.complete(finished, clock.now())

    clock.advance(timedelta(days=2) - timedelta(minutes=1))
    assert tick(db, clock).reminders == 0
    clock.advance(timedelta(minutes=1))
    assert tick(db, clock).reminders == 2
    reminders = {m.resident_id: m for m in outbox(db, "reminder")}
    assert set(reminders) == {started, idle}
    assert reminders[started].dedupe_key == f"remind:{round_id}:{started}:1"
    assert "not finished" in reminders[started].payload["text"]
    assert reminders[started].payload["reply_markup"]["inline_keyboard"][0][0] == {
        "text": "Continue",
        "callback_data": f"v1|s|{round_id}",
    }
    assert "Doet u ook mee" in reminders[idle].payload["text"]

    clock.advance(timedelta(days=1))
    assert tick(db, clock).reminders == 0
    clock.advance(timedelta(days=1))
    assert tick(db, clock).reminders == 2
    clock.advance(timedelta(days=6))
    assert tick(db, clock).reminders == 0  # at most two
    keys = sorted(m.dedupe_key for m in outbox(db, "reminder"))
    assert keys == sorted(f"remind:{round_id}:{who}:{n}" for who in (started, idle) for n in (1, 2))
    with db.session() as session:
        counted = session.scalars(
            select(Response.reminders_sent).where(Response.resident_id == started)
        ).one()
    assert counted == 2
    assert round_row(db, round_id).reminders_done == 2


def test_default_is_one_reminder_and_whom_can_be_limited(db: Database, clock: FakeClock) -> None:
    started = resident(db, clock)
    resident(db, clock)  # not started: not reminded in this round
    round_id = publish(
        db, clock, opens_in=timedelta(0), reminder_after_days=1, remind_not_started=False
    )
    tick(db, clock)
    start(db, clock, round_id, started, grade=5)
    for _ in range(4):
        clock.advance(timedelta(days=1))
        tick(db, clock)
    assert [m.resident_id for m in outbox(db, "reminder")] == [started]


def test_long_downtime_sends_one_reminder_not_a_burst(db: Database, clock: FakeClock) -> None:
    resident(db, clock)
    round_id = publish(db, clock, opens_in=timedelta(0), reminder_after_days=1, max_reminders=3)
    tick(db, clock)
    clock.advance(timedelta(days=5))
    assert tick(db, clock).reminders == 1
    assert [m.dedupe_key.rsplit(":", 1)[1] for m in outbox(db, "reminder")] == ["3"]
    assert round_row(db, round_id).reminders_done == 3


def test_blocked_resident_is_not_reminded(db: Database, clock: FakeClock) -> None:
    anna = resident(db, clock)
    publish(db, clock, opens_in=timedelta(0), reminder_after_days=1)
    assert tick(db, clock).invitations == 1
    # The outbox sender got a 403 for the invitation and marked Anna unreachable.
    with db.session() as session:
        row = session.get(Resident, anna)
        assert row is not None
        row.unreachable_at = clock.now()
    clock.advance(timedelta(days=1))
    assert tick(db, clock).reminders == 0


def test_reminder_due_counts_whole_periods_from_the_opening() -> None:
    opened = datetime(2026, 11, 2, 9, tzinfo=UTC)
    round_ = Round(reminder_after_days=3, max_reminders=2, opened_at=opened)
    assert reminder_due(round_, opened + timedelta(days=2, hours=23)) == 0
    assert reminder_due(round_, opened + timedelta(days=3)) == 1
    assert reminder_due(round_, opened + timedelta(days=30)) == 2
    assert reminder_due(Round(reminder_after_days=None, opened_at=opened), opened) == 0


# ---- closing -------------------------------------------------------------------------------------


def test_closing_keeps_answers_marks_unfinished_closed_and_tells_them(
    db: Database, clock: FakeClock
) -> None:
    midway = resident(db, clock)
    finished = resident(db, clock)
    stopped = resident(db, clock)
    round_id = publish(db, clock, opens_in=timedelta(0), lasts=timedelta(days=1))
    tick(db, clock)
    unfinished = start(db, clock, round_id, midway, grade=4, ever="nee")
    complete_id = start(db, clock, round_id, finished, grade=9)
    start(db, clock, round_id, stopped, grade=2)
    with db.session() as session:
        done = session.get(Response, complete_id)
        assert done is not None
        response_store.complete(done, clock.now())
        quiet = session.get(Resident, stopped)
        assert quiet is not None
        quiet.stopped_at = clock.now()

    clock.advance(timedelta(days=1))
    report = tick(db, clock)
    assert report.closed == [round_id]
    assert report.closed_responses == 2 and report.closed_notices == 1
    assert round_row(db, round_id).status == "closed"
    with db.session() as session:
        statuses = dict(session.execute(select(Response.resident_id, Response.status)).all())
        kept = session.scalars(
            select(Answer.value).where(Answer.response_id == unfinished).order_by(Answer.id)
        ).all()
    assert statuses == {midway: "closed", finished: "completed", stopped: "closed"}
    assert kept == [4, "nee"]
    notices = outbox(db, "round_closed")
    assert [m.resident_id for m in notices] == [midway]
    assert "gesloten" in notices[0].payload["text"] and "bewaard" in notices[0].payload["text"]
    assert "reply_markup" not in notices[0].payload
    assert not tick(db, clock).changed


def test_standing_round_stays_the_fallback(db: Database, clock: FakeClock) -> None:
    survey = load_survey(DATA / "all_types.yaml")
    with db.session() as session:
        version = store_survey_version(
            session,
            survey_id=survey.id,
            version=survey.version,
            title="Testpeiling",
            definition=survey.to_json(),
            content_hash=survey.content_hash,
            source="",
            now=clock.now(),
        )
        standing = store.ensure_standing_round(session, version.id, clock.now()).id
    round_id = publish(db, clock, opens_in=timedelta(0), lasts=timedelta(days=1))
    in_utrecht = start(db, clock, standing, resident(db, clock, UTRECHT), grade=3)
    in_delft = start(db, clock, standing, resident(db, clock, DELFT), grade=4)

    def current(area: str) -> int | None:
        with db.session() as session:
            found = store.round_for_area(session, area, clock.now())
            return found.id if found else None

    assert current(UTRECHT) == standing  # scheduled, not opened yet by the tick
    assert tick(db, clock).superseded == 1
    assert current(UTRECHT) == round_id and current(DELFT) == standing
    # Utrecht's unfinished standing survey ends (answers kept); Delft's goes on.
    with db.session() as session:
        status = dict(session.execute(select(Response.id, Response.status)).all())
        assert session.scalars(select(Answer.value).order_by(Answer.id)).all() == [3, 4]
    assert status == {in_utrecht: "closed", in_delft: "started"}
    clock.advance(timedelta(days=1))
    assert current(UTRECHT) == standing  # past closes_at, even before the tick ran
    tick(db, clock)
    assert round_row(db, standing).status == "open"


# ---- publishing --------------------------------------------------------------------------------


def test_publish_refuses_a_changed_survey_under_a_used_version(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    anna = resident(db, clock)
    round_id = publish(db, clock, opens_in=timedelta(0))
    tick(db, clock)
    start(db, clock, round_id, anna, grade=7)
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        ALL_TYPES.read_text(encoding="utf-8").replace("Welk cijfer?", "Welk rapportcijfer?"),
        encoding="utf-8",
    )
    spec = make_spec(clock, name="Anders", areas=[DELFT])
    spec = RoundSpec(**{**spec.__dict__, "survey_path": changed})
    with pytest.raises(RoundError, match=r"already has answers.*new version"):
        publish(db, clock, spec)
    with db.session() as session:
        assert len(store.list_rounds(session)) == 1


def test_publish_is_idempotent_updates_a_scheduled_round_and_refuses_overlap(
    db: Database, clock: FakeClock
) -> None:
    first = publish(db, clock)
    assert publish(db, clock) == first
    spec = make_spec(clock, opens_in=timedelta(hours=2))
    survey = load_survey(ALL_TYPES)
    result = publish_round(db, spec, survey, "", clock.now(), TZ)
    assert (result.round_id, result.outcome) == (first, "updated")
    assert round_row(db, first).opens_at == spec.opens_at
    with pytest.raises(RoundError, match=rf"overlaps round {first}.*{UTRECHT}"):
        publish(db, clock, name="Ander", areas=[UTRECHT, DELFT])
    assert publish(db, clock, name="Delft", areas=[DELFT]) != first
    clock.advance(timedelta(hours=2))
    tick(db, clock)
    with pytest.raises(RoundError, match="can no longer change"):
        publish(db, clock, opens_in=timedelta(hours=5))


def test_publish_refuses_a_round_that_already_ended(db: Database, clock: FakeClock) -> None:
    with pytest.raises(RoundError, match="in the past"):
        publish(db, clock, opens_in=-timedelta(days=3), lasts=timedelta(days=1))


# ---- settings parsing (no database) ------------------------------------------------------------


def test_local_times_are_europe_amsterdam_and_stored_utc() -> None:
    winter = parse_moment("2026-11-09 09:00", TZ, what="opens")
    summer = parse_moment("2026-07-01 09:00", TZ, what="opens")
    assert winter == datetime(2026, 11, 9, 8, tzinfo=UTC)
    assert summer == datetime(2026, 7, 1, 7, tzinfo=UTC)
    # A bare closing date means the end of that day (through the DST change at the end of March).
    assert parse_moment("2027-03-28", TZ, what="closes", end_of_day=True) == datetime(
        2027, 3, 28, 22, tzinfo=UTC
    )
    assert parse_moment(datetime(2026, 11, 9, 9, 0), TZ, what="opens") == winter
    with pytest.raises(RoundError, match="not a date"):
        parse_moment("next monday", TZ, what="opens")


def test_build_spec_checks_areas_dates_and_reminder(tmp_path: Path) -> None:
    areas = default_areas()
    base = {
        "survey": str(ALL_TYPES),
        "name": "Peiling",
        "areas": [UTRECHT],
        "opens": "2026-11-09 09:00",
        "closes": "2026-11-30",
        "reminder": {"after_days": 3, "whom": "started"},
    }
    spec = build_spec(base, tmp_path, TZ, areas)
    assert spec.area_codes == [UTRECHT] and spec.reminder_after_days == 3
    assert spec.max_reminders == 1 and spec.remind_started and not spec.remind_not_started
    assert build_spec({**base, "areas": "all"}, tmp_path, TZ, areas).area_codes is None
    bad = [
        ({"areas": ["utrecht-overvect"]}, "did you mean 'utrecht-overvecht'"),
        ({"areas": []}, "areas"),
        ({"closes": "2026-11-01"}, "must be after opens"),
        ({"opens": "9 november"}, "not a date"),
        ({"survey": "missing.yaml"}, "survey file not found"),
        ({"reminder": {"after_days": 0}}, "1 or more"),
        ({"reminder": {"after": 3}}, "unknown setting 'after'"),
        ({"colour": "red"}, "unknown round setting 'colour'"),
        ({"name": ""}, "name"),
    ]
    for change, message in bad:
        with pytest.raises(RoundError, match=message):
            build_spec({**base, **change}, tmp_path, TZ, areas)
