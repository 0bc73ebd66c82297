"""Application wiring: what a started bot registers by itself."""

from __future__ import annotations

from typing import Any

from bot.app import _post_init
from sandbox.harness import BotHarness


async def test_post_init_registers_commands_and_the_ticks(
    make_services: Any, make_app: Any, emulator: Any, sqlite_url: str
) -> None:
    services = make_services(sqlite_url)
    app = make_app(services)
    async with BotHarness(emulator, app):
        await _post_init(app)
        names = {job.name for job in app.job_queue.jobs()}
        assert any("round" in (name or "").lower() for name in names), names
        assert any("digest" in (name or "").lower() for name in names), names
        for job in app.job_queue.jobs():
            job.schedule_removal()
    # setMyCommands in each offered language, and once as the default.
    languages = {call.params.get("language_code") for call in emulator.calls("setMyCommands")}
    assert {"nl", "en", "tr", "ar", "pl", None} <= languages
