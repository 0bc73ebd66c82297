"""/results sent in a group: a kind answer that it is for residents in a private chat."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.harness import BotHarness
from storage import alliances as store
from tests.conftest import TEST_KEY


@pytest.mark.parametrize(
    ("language", "expected"),
    [("nl", "privégesprek"), ("en", "private chat"), ("pl", "prywatnej rozmowie")],
)
async def test_results_in_a_group_says_it_is_for_a_private_chat(
    services: Any, make_app: Any, emulator: Any, language: str, expected: str
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        eva = h.user("Eva", language_code=language)
        group = h.group("Buurtapp")
        await group.add_bot(eva)
        await group.send(eva, "/results")
        answer = group.last_message().visible_text
        assert expected in answer and "/digest" in answer
        # A linked group answers in the alliance's language, also to /results@bot.
        await group.send(eva, f"/koppel {_invite(services)}")
        await group.send(eva, "/results@buurtstem_bot")
        assert "privégesprek" in group.last_message().visible_text
        assert len(group.messages()) == 3


def _invite(services: Any) -> str:
    with services.db.session() as session:
        return store.create_code(session, "delft-west", TEST_KEY, services.clock.now())
