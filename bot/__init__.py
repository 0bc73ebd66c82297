"""Application wiring: settings, CLI, Telegram application, scheduler and outbox sender."""
