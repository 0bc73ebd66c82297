"""Callback data from outside: bounded before it is parsed, and never from a group or channel."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from journey import wire as cb
from sandbox.harness import BotHarness, UserHandle
from storage.models import Answer, Resident
from tests.test_resident_flow import onboard


@pytest.mark.parametrize(
    "data",
    [
        "v1|s|7",
        "v1|q|12|grade_safety|3",
        "v1|c|utrecht-overvecht|nl|detected",
        "v1|q|2147483647|grade|~b",
    ],
)
def test_ordinary_data_is_parsed(data: str) -> None:
    parsed = cb.decode(data)
    assert parsed is not None and "|".join(["v1", parsed.kind, *parsed.args]) == data


@pytest.mark.parametrize(
    "data",
    [
        "v1|s|99999999999999999999",  # a round id no database column holds
        "v1|s|2147483648",
        "v1|q|" + "9" * 40 + "|grade|3",
        "v1|s|²",  # a digit to str.isdigit, not to int()
        "v1|s|٣٣",
        "v1|q|1|" + "x" * 80,  # longer than Telegram's 64 bytes
        "v1|a|b|c|d|e|f|g",  # more parts than any button has
        "v1|q|1|grade|" + "é" * 28,  # 64 characters, more than 64 bytes
    ],
)
def test_out_of_bounds_data_is_refused_before_parsing(data: str) -> None:
    assert cb.decode(data) is None


def forged_tap(user: UserHandle, data: str, chat: dict[str, Any] | None = None) -> dict[str, Any]:
    """A tap on the user's newest button, with other callback data and/or in another chat."""
    emulator = user.emulator
    message = next(m for m in reversed(user.messages()) if m.buttons)
    tap = emulator.user_taps(user.user, message, data=message.buttons[0][0].callback_data)
    tap.pop("update_id")
    query = {**tap["callback_query"], "data": data}
    if chat is not None:
        query["message"] = {**query["message"], "chat": chat}
    tap["callback_query"] = query
    emulator.push_raw_update(tap)
    return dict(emulator.updates_log[-1])


def residents(services: Any) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Resident)) or 0)


@pytest.mark.parametrize(
    "data", ["v1|s|99999999999999999999", "v1|q|99999999999999999999|grade_safety|3", "v1|s|²"]
)
async def test_a_huge_round_id_is_an_old_button_notice(
    services: Any, make_app: Any, emulator: Any, data: str
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        frank = h.user("Frank")
        await onboard(h, frank)
        sent_before = len(frank.messages())
        await h.deliver(forged_tap(frank, data))
        answer = frank.last_callback_answer
        assert h.errors == []
        assert answer is not None and answer.text == services.text("nl", "notice.old_version")
        assert len(frank.messages()) == sent_before
    with services.db.session() as session:
        assert session.scalars(select(Answer)).all() == []


@pytest.mark.parametrize(
    "chat",
    [
        {"id": -4_000_123, "type": "group", "title": "Buurtgroep"},
        {"id": -1_001_234_567_890, "type": "supergroup", "title": "Buurtgroep"},
        {"id": -1_009_876_543_210, "type": "channel", "title": "Buurtnieuws"},
    ],
    ids=["group", "supergroup", "channel"],
)
async def test_a_consent_tap_from_a_group_or_channel_creates_no_resident(
    services: Any, make_app: Any, emulator: Any, chat: dict[str, Any]
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        hans = h.user("Hans")
        await hans.send("/start")
        consent = hans.last_message().buttons[0][0].callback_data
        assert consent is not None and consent.startswith("v1|c|")
        await h.deliver(forged_tap(hans, consent, chat))
        assert h.errors == []
        answer = hans.last_callback_answer
        assert answer is not None and answer.text == services.text("nl", "notice.private_only")
        assert residents(services) == 0
        # The same tap in the private chat still works.
        await hans.tap(data=consent)
        assert residents(services) == 1


async def test_a_residents_tap_from_a_group_changes_nothing(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        ida = h.user("Ida")
        await onboard(h, ida)
        group = {"id": -4_000_777, "type": "group", "title": "Buurtgroep"}
        await h.deliver(forged_tap(ida, "v1|f|y", group))  # "erase everything", from a group
        assert h.errors == []
    assert residents(services) == 1


def test_any_valid_survey_fits_the_button_format_with_the_largest_round_id() -> None:
    from surveys.schema import BUTTON_KEY_BUDGET

    question_id = "q" * (BUTTON_KEY_BUDGET // 2)
    option = "o" * (BUTTON_KEY_BUDGET - len(question_id))
    data = cb.encode(cb.QUESTION, cb.MAX_INT, question_id, option)
    assert len(data.encode()) == cb.MAX_BYTES - (cb.QUESTION_KEY_BUDGET - BUTTON_KEY_BUDGET)
    assert cb.decode(data) is not None


def test_survey_validation_refuses_ids_that_would_overflow_the_button(tmp_path: Any) -> None:
    from surveys.loader import SurveyError, load_survey
    from surveys.schema import BUTTON_KEY_BUDGET

    long_id = "v" * (BUTTON_KEY_BUDGET - 1)  # with a 2-digit grade option: one byte too many
    path = tmp_path / "s.yaml"
    path.write_text(
        "id: s\nversion: '1'\nlanguages: [nl]\ntitle: {nl: S}\nintro: {nl: I}\nquestions:\n"
        f"  - id: {long_id}\n    type: grade\n    text: {{nl: 'Cijfer?'}}\n"
    )
    with pytest.raises(SurveyError) as raised:
        load_survey(path)
    assert any("bytes" in str(problem) for problem in raised.value.problems)
