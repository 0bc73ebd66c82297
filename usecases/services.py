"""What the use cases work with: settings, database, clock, texts, areas, surveys, language detection.

Built once at start (bot/app.py `build_services`); the Telegram adapters find it in the
application's `bot_data` (handlers/context.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.settings import Settings
from digests.chart_pool import ChartPool, chart_pool
from digests.references import References
from journey.model import Context
from locales.catalogue import Catalogue
from locales.detection import LanguageDetector
from storage.db import Database
from storage.pseudonyms import pseudonym, short_pseudonym
from surveys.areas import Areas
from surveys.engine import Engine
from surveys.schema import Survey


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
    # Reference figures per area (settings.references_dir), checked at start.
    references: dict[str, References] = field(default_factory=dict)

    @property
    def charts(self) -> ChartPool:
        """The process's chart workers (settings.chart_workers)."""
        return chart_pool(self.settings.chart_workers)

    def engine(self, session: Session, survey_version_id: int) -> Engine:
        """The engine of a stored survey version (the database's one cache: `db.surveys`)."""
        return self.db.surveys.engine(session, survey_version_id)

    def journey_context(self, now: datetime, telegram_code: str | None = None) -> Context:
        """What the journey needs for one update (the resident's Telegram language, if offered)."""
        code = (telegram_code or "").split("-")[0].lower()
        offered = self.offered_languages
        return Context(
            catalogue=self.catalogue,
            areas=self.areas,
            offered_languages=offered,
            detector=self.detector,
            now=now,
            telegram_language=code if code in offered else None,
            controller=self.settings.controller,
            retention_days=self.settings.retention_days,
            min_cell_size=self.settings.min_cell_size,
        )

    @property
    def bot_id(self) -> int:
        """The bot's Telegram id (the token's first part): update ids are unique per bot."""
        return self.settings.bot_id

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
