"""What a digest knows of a survey: its questions with short labels, and the period's label."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from digests.model import QuestionInfo
from locales.catalogue import Catalogue
from surveys.schema import Survey


def question_infos(survey: Survey, catalogue: Catalogue) -> list[QuestionInfo]:
    """The digest's view of a survey's questions (short labels from the catalogue)."""
    infos = []
    for q in survey.questions:
        if not q.digest:
            continue  # e.g. the profile: never a digest cell, however many answered
        key = f"alliance.labels.{q.id}"
        labels = {
            lang: catalogue.get(lang, key)
            for lang in catalogue.languages
            if catalogue.has(lang, key)
        }
        infos.append(
            QuestionInfo(
                id=q.id,
                type=q.type,
                text=dict(q.text),
                options=[(o.id, dict(o.label)) for o in q.options],
                reverse=q.reverse,
                item=q.item,
                label=labels,
            )
        )
    return infos


def period_label(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """`02-11-2026 – 09-11-2026` in local dates (language neutral)."""
    return f"{start.astimezone(tz):%d-%m-%Y} – {end.astimezone(tz):%d-%m-%Y}"
