"""Where handlers find buurtstem's services: the application's `bot_data`, under one typed key."""

from __future__ import annotations

from telegram.ext import ContextTypes

from usecases.services import Services

SERVICES_KEY = "buurtstem.services"
METRICS_KEY = "buurtstem.metrics"  # the instance's bot.metrics.Metrics, when a runtime runs


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    """The Services object of this application."""
    found = context.application.bot_data[SERVICES_KEY]
    assert isinstance(found, Services)
    return found
