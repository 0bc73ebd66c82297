"""What residents meet, end to end through the emulated Bot API (issue: the tools feel finished)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sandbox.harness import BotHarness, UserHandle
from storage.models import Answer, Resident

DATA = Path(__file__).parent / "data" / "surveys"


@pytest.fixture
def service_settings() -> dict[str, Any]:
    """Settings of this module's services."""
    return {"survey_file": str(DATA / "long_multi.yaml")}


def residents(services: Any) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Resident)) or 0)


async def onboard(user: UserHandle) -> None:
    await user.send("/start")
    await user.tap("Ja, ik doe mee")
    await user.tap(data="v1|lc")
    await user.send("3563")


async def test_no_to_consent_stores_nothing_and_says_how_to_come_back(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        noor = h.user("Noor")
        await noor.send("/start")
        consent = noor.last_message()
        assert "Nee, liever niet" in consent.button_labels
        await noor.tap("Nee, liever niet")
        after = emulator.message(noor.chat_id, consent.message_id)
        assert "/start" in after.visible_text and not after.buttons
        assert residents(services) == 0
        await noor.send("/start")  # and back she comes
        assert "Ja, ik doe mee" in noor.last_message().button_labels


async def test_area_shows_the_current_neighbourhood_and_keep_changes_nothing(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        piet = h.user("Piet")
        await onboard(piet)
        await piet.send("/area")
        shown = piet.last_message()
        assert "Overvecht" in shown.visible_text and "Zo laten" in shown.button_labels
        await piet.tap("Zo laten")
        assert "Overvecht" in emulator.message(piet.chat_id, shown.message_id).visible_text
        assert "Vraag 1" in piet.last_message().visible_text  # back to the survey
    with services.db.session() as session:
        resident = session.scalars(select(Resident)).one()
        assert resident.area_code == "utrecht-overvecht" and not (resident.flow or {}).get("step")


async def test_none_of_these_clears_other_ticks_on_tap(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        sara = h.user("Sara")
        await onboard(sara)
        question = sara.last_message()
        await sara.tap_on(question, "☐ Rommel")
        await sara.tap_on(emulator.message(sara.chat_id, question.message_id), "☐ Lawaai")
        labels = emulator.message(sara.chat_id, question.message_id).button_labels
        assert "☑ Rommel" in labels and "☑ Lawaai" in labels
        # "Geen van deze" is on the second page of this long list.
        await sara.tap_on(emulator.message(sara.chat_id, question.message_id), "Meer opties ›")
        page = emulator.message(sara.chat_id, question.message_id)
        none = next(label for label in page.button_labels if "Geen van deze" in label)
        await sara.tap_on(page, none)
        labels = emulator.message(sara.chat_id, question.message_id).button_labels
        assert any(label.startswith("☑") and "Geen van deze" in label for label in labels)
        await sara.tap_on(emulator.message(sara.chat_id, question.message_id), "‹ Eerdere opties")
        labels = emulator.message(sara.chat_id, question.message_id).button_labels
        assert "☐ Rommel" in labels and "☐ Lawaai" in labels  # cleared by "none of these"
        await sara.tap_on(emulator.message(sara.chat_id, question.message_id), "Klaar ✓")
    with services.db.session() as session:
        assert session.scalars(select(Answer.value)).all() == [["geen"]]


async def test_a_long_list_fits_the_screen(services: Any, make_app: Any, emulator: Any) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        tim = h.user("Tim")
        await onboard(tim)
        rows = tim.last_message().buttons
        # 13 options: eight on the first page, short labels two to a row, then turn and done.
        options = [b for row in rows for b in row if b.text.startswith(("☐", "☑"))]
        assert len(options) == 8 and len(rows) <= 7
