"""A crash after an answer was committed but before the bot replied: the resident is not stuck.

The soak (benchmarks/soak.py) found it: a resident taps an answer, the instance commits it and is
SIGKILLed before the record edit and the next question go out. After the restart the update
comes back (from the inbox, or from Telegram when it was never confirmed) and is recognised as
handled before: nothing is sent. The resident still sees the question with its buttons and taps
again: that tap is on a question answered already (stale), which only turned the message into
its record. The next question never came: the resident was stuck until they typed something.

Now, at start, the residents of updates queued again from the inbox (taken by an instance that
died before handling them to the end) get their current question marked as possibly lost, as a
failed send does, so the tap again asks the current question. A repeat delivered while nothing
crashed still sends nothing (tests/test_instances.py: every question asked once).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.runtime import Runtime
from journey import wire
from journey.model import Tap
from sandbox.harness import BotHarness
from storage import inbox
from tests.test_resident_flow import button_data, onboard
from usecases.resident import Who, handle


async def test_a_tap_after_a_crash_between_commit_and_reply_asks_the_next_question(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        ada = h.user("Ada")
        await onboard(h, ada)
        question = ada.last_message()
        assert question.buttons
        data = button_data(ada, "7")
        update = emulator.user_taps(ada.user, question, data=data)
        # The instance that took the tap stored it in its inbox, committed the answer and died
        # before replying.
        action = wire.decode_action(data)
        assert action is not None
        who = Who(ada.user.id, ada.chat_id, "nl")
        tap = Tap(action, question.message_id, question.html)
        # (Stored two minutes ago: on PostgreSQL only updates older than a minute are taken
        # over, as a live instance may still be handling a newer one.)
        now = services.clock.now() - timedelta(minutes=2)
        stored = [(update["update_id"], json.dumps(update))]
        services.db.transaction(
            lambda session: inbox.store(session, services.settings.bot_id, stored, now)
        )
        services.db.transaction(
            lambda session: handle(services, session, update["update_id"], who, tap)
        )
        sent = len(ada.messages())
        # The restart: the stored update is queued again and found handled before; nothing is
        # sent twice.
        runtime = Runtime(h.app, services)
        await runtime.start()
        try:
            await h.app.update_queue.join()
        finally:
            await runtime.stop()
        assert len(ada.messages()) == sent
        # The resident sees the unanswered-looking question and taps once more.
        await ada.tap_on(question, data=data)
        newest = ada.last_message()
        assert newest.message_id != question.message_id, "no next question: the resident is stuck"
        assert any(
            (b.callback_data or "").startswith("v1|q|") and "|grade_safety|" in b.callback_data
            for row in newest.buttons
            for b in row
        ), newest.visible_text
        # The old message became the record of the stored answer; nothing was answered twice.
        assert "→ 7" in emulator.message(ada.chat_id, question.message_id).visible_text


async def test_a_plain_repeat_sends_nothing(services: Any, make_app: Any, emulator: Any) -> None:
    """The mark costs nothing when the reply did arrive: a repeat alone still sends nothing."""
    async with BotHarness(emulator, make_app(services)) as h:
        bea = h.user("Bea")
        await onboard(h, bea)
        await bea.tap(data=button_data(bea, "8"))
        sent = len(bea.messages())
        await bea.resend_last_update()
        assert len(bea.messages()) == sent
        # The next answer goes on as usual.
        await bea.tap(data=button_data(bea, "6"))
        assert "Vraag 3" in bea.last_message().visible_text
