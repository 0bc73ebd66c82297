"""Callback data nobody should send: random, truncated, oversized, replayed, from another user's
message, of another round, with huge numbers, in a group or from an inline message.

A real PTB Application of buurtstem, driven through the emulated Bot API (tests/adversarial/
fuzzing.py). After every example: no crash, no ERROR line, no reply or toast showing internals,
nothing stored without consent, no stored answer changed and no answer stored but by a button
of the question shown, and the resident still finishes the survey.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FakeClock
from journey import actions, wire
from sandbox.harness import UserHandle
from storage.models import Resident
from surveys.loader import load_survey
from surveys.round_file import RoundSpec
from tests.adversarial.fuzzing import (
    EXAMPLES,
    STAGES,
    Session,
    answer_current,
    bring_to,
    datas,
    finish,
    onboard,
    question_buttons,
    session,
)
from usecases.publish_round import publish_round

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALL_TYPES = Path(__file__).parent.parent / "data" / "surveys" / "all_types.yaml"
HUGE = str(10**40)
KINDS = ["c", "cn", "l", "lc", "ls", "lx", "m", "a", "ab", "n", "n0", "q", "s", "f", "ak", "rh"]
KINDS += ["rs", "rx", "ra", "rj", "zz", ""]


def other_round(services: Any, clock: FakeClock) -> int:
    """An open round of another area (Leeuwarden Oost), with its own survey; its id."""
    spec = RoundSpec(
        name="Peiling Leeuwarden",
        survey_path=ALL_TYPES,
        area_codes=["leeuwarden-oost"],
        opens_at=clock.now(),
        closes_at=clock.now() + timedelta(days=7),
        reminder_after_days=2,
    )
    survey = load_survey(ALL_TYPES)
    source = ALL_TYPES.read_text(encoding="utf-8")
    tz = ZoneInfo("Europe/Amsterdam")
    return publish_round(services.db, spec, survey, source, clock.now(), tz).round_id


def fields(data: str) -> list[str]:
    return data.split("|")


@st.composite
def forged(draw: st.DrawFn, real: list[str], round_id: int, other: int) -> str:
    """Callback data: random, near a real button's, truncated, oversized or with huge ids."""
    base = draw(st.sampled_from(real)) if real else "v1|lc"
    choice = draw(st.integers(0, 7))
    if choice == 0:  # anything at all, even bytes that are no text
        return draw(
            st.one_of(
                st.text(max_size=100),
                st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
            )
        )
    if choice == 1:  # a real button cut short
        return base[: draw(st.integers(0, max(0, len(base) - 1)))]
    if choice == 2:  # a real button made longer than Telegram allows
        return base + "|" + draw(st.sampled_from(["x" * 64, "9" * 70, "é" * 40, "|" * 65]))
    if choice == 3:  # our format, any kind, odd arguments
        kind = draw(st.sampled_from(KINDS))
        args = draw(
            st.lists(
                st.one_of(
                    st.sampled_from(
                        [HUGE, "-1", "0", "٣", "²", "1e9", str(2**31), str(2**31 - 1), "", "~b"]
                    ),
                    st.sampled_from(["~s", "~d", "~p9", "nl", "xx", "utrecht-overvecht"]),
                    st.text(st.characters(codec="ascii"), max_size=12),
                ),
                max_size=5,
            )
        )
        return "|".join(["v1", kind, *args])
    if choice == 4:  # a real question button of another round, or of a round that isn't
        if fields(base)[:2] == ["v1", "q"] and len(fields(base)) == 5:
            rid = draw(st.sampled_from([other, round_id + 1000, 0, 2**31 - 1]))
            return "|".join(["v1", "q", str(rid), *fields(base)[3:]])
        return f"v1|s|{other}"
    if choice == 5:  # huge numbers where ids go
        return draw(
            st.sampled_from(
                [
                    f"v1|q|{HUGE}|grade_liveability|7",
                    f"v1|s|{HUGE}",
                    f"v1|rh|{HUGE}|y",
                    f"v1|ra|{HUGE}",
                    f"v1|rj|{HUGE}",
                    f"v1|q|{round_id}|grade_liveability|{HUGE}",
                    f"v1|q|-{HUGE}|grade_liveability|7",
                ]
            )
        )
    if choice == 6:  # another version of the format
        return draw(st.sampled_from(["v0", "v2", "V1", " v1", "v1 "])) + base[2:]
    return base  # a real button again (a replay, or the first tap)


def current(user: UserHandle) -> tuple[int, str] | None:
    """The round and question shown in the user's newest bot message, if any."""
    messages = user.messages()
    buttons = question_buttons(messages[-1]) if messages else []
    if not buttons:
        return None
    _, _, rid, qid, _ = buttons[0].split("|", 4)
    return int(rid), qid


def expect_after_tap(
    s: Session,
    user: UserHandle,
    data: str,
    shown: tuple[int, str] | None,
    before: dict[Any, Any],
    totals: tuple[int, int, int, int],
    had_resident: bool,
) -> None:
    """Only what the data may do by the rules: consent (if it is a consent button), an answer
    to the question shown (if it is one of its buttons), erasure (if it is "erase")."""
    action = wire.decode_action(data)
    if isinstance(action, actions.Forget) and action.confirm:
        return  # erasing is the user's right, whatever message it came on
    if not had_resident:
        if isinstance(action, actions.Consent):
            assert s.answers(user) == {}
            return
        assert s.resident_id(user) is None, f"{data!r} stored a resident without consent"
        assert s.totals() == totals, f"{data!r} stored rows without consent"
        return
    after = s.answers(user)
    answering = (
        isinstance(action, actions.AnswerButton)
        and shown is not None
        and (action.round_id, action.question_id) == shown
    )
    if answering and isinstance(action, actions.AnswerButton) and action.option == wire.BACK:
        return  # back to the previous question, which the resident may answer anew
    for key, value in before.items():
        assert after.get(key) == value, f"{data!r} changed {key}: {value!r} -> {after.get(key)!r}"
    new = {key[1] for key in after.keys() - before.keys()}
    allowed = {shown[1]} if answering and shown is not None else set()
    assert new <= allowed, f"{data!r} stored answers to {new}"


def test_forged_callback_data(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    services = make_services(sqlite_url)
    other = other_round(services, clock)
    with session(services, make_app, emulator) as s:

        @FUZZ
        @given(stage=st.sampled_from(STAGES), data=st.data())
        def example(stage: str, data: st.DataObject) -> None:
            user = s.user()
            s.run(bring_to(s, user, stage))
            messages = user.messages()
            message = data.draw(st.sampled_from(messages)) if messages else None
            real = [d for m in messages for d in datas(m)]
            shown = current(user)
            rid = shown[0] if shown else 1
            taps = data.draw(st.lists(forged(real, rid, other), min_size=1, max_size=3))
            for tap in taps:
                before, totals = s.answers(user), s.totals()
                had_resident = s.resident_id(user) is not None
                shown = current(user)
                if message is None:
                    s.run(s.inline_tap(user, tap))
                else:
                    s.run(s.tap_data(user, tap, message))
                s.check([user.chat_id], [tap])
                expect_after_tap(s, user, tap, shown, before, totals, had_resident)
            s.run(finish(s, user))

        example()


def test_replayed_and_stale_taps_change_nothing(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:

        @FUZZ
        @given(answered=st.integers(1, 6), how=st.sampled_from(["redeliver", "again", "other"]))
        def example(answered: int, how: str) -> None:
            user = s.user()
            s.run(onboard(user))
            first = user.last_message()
            tapped, *_ = options = question_buttons(first)
            s.run(user.tap(data=tapped))
            update = user.last_update
            for _ in range(answered - 1):
                s.run(answer_current(user))
            before, count = s.answers(user), len(user.messages())
            if how == "redeliver":  # Telegram delivers the same tap again
                assert update is not None
                s.run(s.h.redeliver(update))
            elif how == "again":  # the same button tapped again on the old message
                s.run(s.tap_data(user, tapped, first))
            else:  # another option of the old question
                s.run(s.tap_data(user, options[4], first))
            s.check([user.chat_id], [])
            assert s.answers(user) == before
            assert len(user.messages()) == count  # no question sent twice
            s.run(finish(s, user))

        example()


def test_taps_on_another_users_message(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    """A tap forged from one user on a message in another's chat acts for nobody else."""
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:

        @FUZZ
        @given(
            stage=st.sampled_from(["new", "question", "later question"]),
            which=st.integers(0, 100),
        )
        def example(stage: str, which: int) -> None:
            owner, intruder = s.user(), s.user()
            s.run(onboard(owner))
            s.run(answer_current(owner))
            s.run(bring_to(s, intruder, stage))
            owned = s.answers(owner)
            message = owner.messages()[-1]
            buttons = datas(message)
            tap = buttons[which % len(buttons)]
            before, totals = s.answers(intruder), s.totals()
            had = s.resident_id(intruder) is not None
            s.run(s.tap_data(intruder, tap, message))
            s.check([owner.chat_id, intruder.chat_id], [])
            assert s.answers(owner) == owned
            expect_after_tap(s, intruder, tap, current(intruder), before, totals, had)
            s.run(finish(s, owner))
            s.run(finish(s, intruder))

        example()


def test_taps_in_a_group_never_make_a_resident(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:
        group = s.h.group("Buurtgroep", type="supergroup", admin=True)
        member = s.user()
        s.run(group.send(member, "/help"))
        in_group = group.last_message()

        @FUZZ
        @given(
            stage=st.sampled_from(["new", "declined", "question"]),
            tap=st.sampled_from(
                [
                    "v1|c||nl|",
                    "v1|c|utrecht-overvecht|en|detected",
                    "v1|lc",
                    "v1|q|1|grade_liveability|7",
                    "v1|f|y",
                    "v1|s|1",
                    "v1|ak",
                ]
            ),
            inline=st.booleans(),
        )
        def example(stage: str, tap: str, inline: bool) -> None:
            user = s.user()
            s.run(bring_to(s, user, stage))
            before, totals = s.answers(user), s.totals()
            resident = s.resident_id(user)
            if inline:
                s.run(s.inline_tap(user, tap))
            else:
                s.run(s.tap_data(user, tap, in_group))
            s.check([user.chat_id, group.chat_id], [])
            assert s.resident_id(user) == resident
            assert s.answers(user) == before
            assert s.totals() == totals
            assert s.count(Resident) == totals[0]
            s.run(finish(s, user))

        example()


def test_huge_numbers_in_callback_data(
    sqlite_url: str, make_services: Any, make_app: Any, emulator: Any
) -> None:
    """Ids beyond any database column (10**40) are old buttons, not an OverflowError."""
    services = make_services(sqlite_url)
    with session(services, make_app, emulator) as s:
        for stage in ("question", "done"):
            user = s.user()
            s.run(bring_to(s, user, stage))
            for data in (
                f"v1|q|{HUGE}|grade_liveability|7",
                f"v1|s|{HUGE}",
                f"v1|rh|{HUGE}|y",
                f"v1|ra|{HUGE}",
                f"v1|rj|{HUGE}",
                f"v1|q|1|grade_liveability|{HUGE}",
                f"v1|q|{2**63}|grade_liveability|7",
                f"v1|s|{2**31}",
                f"v1|rh|{2**63}|n",
            ):
                before, totals = s.answers(user), s.totals()
                shown = current(user)
                s.run(s.tap_data(user, data))
                s.check([user.chat_id], [data])
                expect_after_tap(s, user, data, shown, before, totals, True)
            s.run(finish(s, user))
