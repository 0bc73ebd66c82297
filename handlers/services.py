"""What handlers need from the application, kept in `bot_data` under one typed key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from telegram.ext import ContextTypes

from bot.clock import Clock
from bot.settings import Settings
from locales.catalogue import Catalogue
from locales.detection import LanguageDetector
from storage.db import Database
from storage.pseudonyms import pseudonym, short_pseudonym
from surveys.areas import Areas
from surveys.engine import Engine
from surveys.schema import Survey

SERVICES_KEY = "buurtstem.services"


@dataclass
class Services:
    """The database, clock, texts, areas and surveys the handlers work with."""

    settings: Settings
    db: Database
    clock: Clock
    catalogue: Catalogue
    areas: Areas
    default_survey: Survey
    detector: LanguageDetector
    engines: dict[int, Engine] = field(default_factory=dict)

    def resident_key(self, telegram_id: int) -> str:
        """The keyed pseudonym for a Telegram user id."""
        return pseudonym(self.settings.pseudonym_key, telegram_id)

    def response_key(self, resident_pseudonym: str, round_id: int) -> str:
        """A per-round pseudonym for exports, unlinkable across rounds."""
        return short_pseudonym(self.settings.pseudonym_key, resident_pseudonym, f"round:{round_id}")

    @property
    def offered_languages(self) -> list[str]:
        """Languages the bot offers: those of the catalogue that the default survey has too."""
        survey_langs = set(self.default_survey.languages)
        return [lang for lang in self.catalogue.languages if lang in survey_langs]

    def text(self, lang: str | None, key: str, **params: Any) -> str:
        """A catalogue text."""
        return self.catalogue.get(lang, key, **params)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    """The Services object of this application."""
    found = context.application.bot_data[SERVICES_KEY]
    assert isinstance(found, Services)
    return found
