"""The Bot API emulator: Telegram-accurate, in-process (httpx transport) or over HTTP."""

from sandbox.emulator import (
    ApiError,
    BotAPIEmulator,
    Button,
    ManualClock,
    RateLimits,
    SimChat,
    SimUser,
    StoredMessage,
)
from sandbox.transport import EmulatorTransport, emulator_application_builder, emulator_request

__all__ = [
    "ApiError",
    "BotAPIEmulator",
    "Button",
    "EmulatorTransport",
    "ManualClock",
    "RateLimits",
    "SimChat",
    "SimUser",
    "StoredMessage",
    "emulator_application_builder",
    "emulator_request",
]
