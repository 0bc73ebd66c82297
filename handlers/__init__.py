"""python-telegram-bot handlers: thin adapters between Telegram updates and the survey engine."""
