"""The one settings object: every configurable value, its default and its help text."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Public (it is in the source): good for the sandbox and tests only; `buurtstem run` refuses it.
DEFAULT_PSEUDONYM_KEY = "buurtstem-development-key-change-me"
# Telegram ids are small numbers: a short or guessable key lets anyone holding the pseudonyms
# try keys until known ids come out. secrets.token_urlsafe(48) gives 64 characters.
MIN_KEY_LENGTH = 32
NEW_KEY_COMMAND = (
    "python3 -c \"import secrets; print('BUURTSTEM_PSEUDONYM_KEY=' + secrets.token_urlsafe(48))\""
    " >> .env"
)


# The smallest number of respondents a figure may show, and the floor no setting goes below.
# digests/ reads these (a leaf module: imported by every layer, imports nothing of buurtstem).
MIN_CELL_SIZE = 10
MIN_CELL_SIZE_FLOOR = 5


class Settings(BaseSettings):
    """buurtstem's configuration, read from BUURTSTEM_* environment variables and `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="BUURTSTEM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = Field(
        default="sqlite:///buurtstem.db",
        description="SQLAlchemy database URL: a SQLite file (default, in the working directory) "
        "or postgresql+psycopg://user:pass@host/db.",
    )
    timezone: str = Field(
        default="Europe/Amsterdam",
        description="Time zone for rounds, reminders and digest schedules.",
    )
    pseudonym_key: str = Field(
        default=DEFAULT_PSEUDONYM_KEY,
        description="Secret key for the keyed pseudonyms (HMAC) that replace Telegram ids. "
        "The default is public and only for the sandbox and tests: `buurtstem run` needs a "
        f"random value of at least {MIN_KEY_LENGTH} characters, and refuses to start when the "
        "database was started with another key. Never change it; back it up apart from the "
        "data.",
    )
    token: str | None = Field(
        default=None,
        description="Telegram bot token from @BotFather. Without it, the first README command "
        "starts the local sandbox instead of the real bot.",
    )
    api_base_url: str = Field(
        default="https://api.telegram.org",
        description="Base URL of the Bot API server (Telegram's, a self-hosted one, or the "
        "buurtstem emulator).",
    )
    admin_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description=(
            "Telegram user ids of programme staff allowed to use /rounds and to approve alliance "
            "responses to residents, comma separated."
        ),
    )
    min_cell_size: int = Field(
        default=MIN_CELL_SIZE,
        ge=MIN_CELL_SIZE_FLOOR,
        description="Smallest number of respondents for which a figure is shown (never below "
        f"{MIN_CELL_SIZE_FLOOR}).",
    )
    link_failures_per_hour: int = Field(
        default=50,
        ge=1,
        description="Wrong /koppel codes allowed per hour from all chats together; at this "
        "number every chat is refused until the hour is over (each chat also has its own "
        "back-off after 5 failures). `buurtstem alliance unblock` lifts it sooner.",
    )
    survey_file: str | None = Field(
        default=None,
        description="Survey definition file to offer when no round is open (default: the shipped "
        "Buurtpeiling).",
    )
    areas_file: str | None = Field(
        default=None,
        description="Areas file (focus areas, neighbourhoods, postcodes) to use instead of the "
        "shipped surveys/areas.yaml.",
    )
    references_dir: str | None = Field(
        default=None,
        description="Folder of reference figure files (the city's and the country's "
        "Veiligheidsmonitor figures per area and year, shown beside an area's own in digests; "
        "see docs/digests.md). None shipped: unset, digests show no comparison.",
    )
    chart_workers: int = Field(
        default=2,
        ge=0,
        description="Processes that draw digest charts at the same time (0: in the digest "
        "job's own thread).",
    )
    webhook_url: str | None = Field(
        default=None, description="Public HTTPS URL that Telegram posts updates to (webhook mode)."
    )
    webhook_listen: str = Field(
        default="127.0.0.1", description="Address the webhook server binds."
    )
    webhook_port: int = Field(default=8443, description="Port the webhook server listens on.")
    webhook_secret: str | None = Field(
        default=None,
        description="Secret token Telegram sends in X-Telegram-Bot-Api-Secret-Token; requests "
        "without it are refused.",
    )
    metrics_port: int | None = Field(
        default=None, description="Port for /health and /metrics (off when unset)."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as plain text or JSON lines."
    )
    log_level: str = Field(default="INFO", description="Log level (DEBUG, INFO, WARNING, ...).")
    retention_days: int = Field(
        default=730,
        ge=1,
        description="Days after which free-text answers and inactive residents' data are erased.",
    )
    controller: str | None = Field(
        default=None,
        description="Who is responsible for residents' data under the AVG/GDPR (the "
        "verwerkingsverantwoordelijke), with how to reach them, e.g. 'Gemeente Utrecht, "
        "privacy@utrecht.nl'. Shown to residents in the consent notice and /privacy; set it "
        "before going live (unset, residents are told it is not set yet).",
    )
    outbox_rate: float = Field(
        default=30.0, gt=0, description="Messages per second the outbox sender sends at most."
    )
    concurrent_updates: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Updates one instance handles at the same time. Updates of different chats "
        "run concurrently; one chat's updates always run one after another, in order.",
    )
    bot_api_connections: int = Field(
        default=64,
        ge=1,
        le=256,
        description="HTTP connections to the Bot API kept open by one instance. With Telegram "
        "about 100 ms away each one carries about 10 calls a second; calls beyond that wait.",
    )
    db_pool_size: int = Field(
        default=8,
        ge=1,
        le=128,
        description="Worker threads that run the updates' database transactions, and the "
        "database connections kept for them (jobs may open as many again).",
    )
    sandbox_port: int = Field(default=8080, description="Port of the sandbox web page.")
    sandbox_latency_ms: float = Field(
        default=0.0,
        ge=0,
        description="Sandbox only: how long each Bot API call of the emulated Telegram takes "
        "(round trip; Telegram's servers are about 100 ms from a Dutch host).",
    )
    sandbox_jitter_ms: float = Field(
        default=0.0, ge=0, description="Sandbox only: +/- variation of that latency."
    )
    sandbox_refuse_429: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Sandbox only: share of the bot's messages, edits and answers that the "
        "emulated Telegram refuses with 429 (flood control, retry after 1 s).",
    )
    sandbox_refuse_5xx: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Sandbox only: share refused with 502 Bad Gateway.",
    )
    sandbox_dir: str = Field(
        default="sandbox-data", description="Folder for the sandbox's SQLite database and files."
    )

    @property
    def bot_id(self) -> int:
        """The bot's Telegram id (the token's first part; 0 without a token)."""
        head = (self.token or "").split(":", 1)[0]
        return int(head) if head.isdigit() else 0

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        """SQLite and PostgreSQL only: say so before a driver import fails obscurely."""
        scheme = value.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(
                "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB "
                f"(not {scheme or 'an empty URL'})"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """A time zone of the IANA database (Europe/Amsterdam), checked once, here."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (e.g. Europe/Amsterdam)") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The time zone of rounds, reminders, schedules and every time shown."""
        return ZoneInfo(self.timezone)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """Accept "1,2,3" as well as a JSON list."""
        if isinstance(value, int):
            return [value]
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return value
            return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
        return value


def key_problem(key: str) -> str | None:
    """Why `key` must not pseudonymise real residents (public or too short), or None."""
    if key.strip() == DEFAULT_PSEUDONYM_KEY:
        return "the default BUURTSTEM_PSEUDONYM_KEY is public (it is in the source code)"
    if len(key.strip()) < MIN_KEY_LENGTH:
        return (
            f"BUURTSTEM_PSEUDONYM_KEY is too short ({len(key.strip())} characters; "
            f"at least {MIN_KEY_LENGTH})"
        )
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (read once)."""
    return Settings()
