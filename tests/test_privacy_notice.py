"""The privacy notice: pseudonymous, who the controller is, how long data are kept, how to object."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.harness import BotHarness

CONTROLLER = "Gemeente Utrecht & partners, privacy@utrecht.nl"
LANGS = ("nl", "en", "tr", "ar", "pl")


def privacy_text(services: Any, lang: str, key: str) -> str:
    """A privacy text as the journey writes it, with the settings of these services."""
    return str(services.journey_context(services.clock.now()).privacy_text(lang, key))


@pytest.fixture
def service_settings() -> dict[str, Any]:
    """Services with a controller, a year's retention and a cell size of 12."""
    return {"controller": CONTROLLER, "retention_days": 365, "min_cell_size": 12}


async def test_privacy_command_names_the_controller_and_the_retention(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        ann = h.user("Ann", language_code="nl")
        await ann.send("/start")
        consent = ann.last_message().visible_text
        assert "niet anoniem" in consent and CONTROLLER in consent
        assert "365 dagen" in consent and "minder dan 12 antwoorden" in consent
        await ann.send("/privacy")
        text = ann.last_message().visible_text
    assert "Is het anoniem? Nee." in text
    assert f"Wie is verantwoordelijk? {CONTROLLER}." in text
    assert "Open antwoorden wissen we na 365 dagen." in text
    assert "/forget" in text and "/stop" in text and "bezwaar" in text
    assert "Autoriteit Persoonsgegevens" in text
    assert "versleut" not in text  # a keyed pseudonym is not encryption
    assert "112" in text  # and where to go in an emergency


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("key", ["privacy", "consent.notice"])
def test_every_language_says_the_same_things(services: Any, lang: str, key: str) -> None:
    text = privacy_text(services, lang, key)
    assert "{" not in text
    assert "Gemeente Utrecht &amp; partners, privacy@utrecht.nl" in text  # escaped for HTML
    assert "365" in text and "12" in text and "/forget" in text and "/stop" in text
    if key == "privacy":
        assert "Autoriteit Persoonsgegevens" in text
        assert text.count("365") == 2 and text.count("privacy@utrecht.nl") == 2
    else:
        assert "/privacy" in text


def test_without_a_controller_the_notice_says_so(make_services: Any, sqlite_url: str) -> None:
    services = make_services(sqlite_url)
    assert services.settings.controller is None
    text = privacy_text(services, "en", "privacy")
    assert "Who is responsible?</b> (not filled in yet by whoever runs this bot)." in text
    assert f"after {services.settings.retention_days} days" in text
