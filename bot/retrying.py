"""Bot API calls that survive flood control and a flaky network, without ever acting twice.

`RetryingRequest` wraps the request object PTB sends every Bot API call through (a seam like
httpx's transports: the code that calls the bot does not change). A call that Telegram refused
is made again; a call that may have reached Telegram is made again only when doing it twice
changes nothing:

- 429 Too Many Requests: wait `retry_after`, then call again (Telegram did nothing). A wait
  longer than `max_wait` is not waited for: the refusal is returned to the caller.
- 502/503/504 from Telegram's front end, and connections that failed before the request was
  sent (connect errors, pool timeouts): call again after a short backoff with jitter.
- A broken connection or read timeout after the request went out: Telegram may have acted.
  Edits, answerCallbackQuery and reads are called again (the same edit twice is harmless);
  sends are not, so nothing reaches a resident twice. The resident's journey copes with a
  reply that never arrived (the next message a resident writes brings the question back).
- Everything else (400, 403, ...) is final and goes straight back to the caller.

The outbox sender keeps its own bookkeeping of attempts and flood waits (bot/outbox.py), so its
calls run inside `without_retries()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import httpx
from telegram._utils.defaultvalue import DEFAULT_NONE
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

log = logging.getLogger(__name__)

# 502/503/504 come from Telegram's front end when no server behind it took the request.
GATEWAY_ERRORS = frozenset({502, 503, 504})
# Methods whose repetition changes nothing (lower case, matched by prefix for get*/set*/...).
_IDEMPOTENT_PREFIXES = ("get", "edit", "set", "delete", "answercallbackquery", "close", "logout")

_retries_on: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "buurtstem_bot_api_retries", default=True
)

Sleep = Callable[[float], Awaitable[None]]
RetryHook = Callable[[str, str], None]


@contextlib.contextmanager
def without_retries() -> Iterator[None]:
    """Calls made inside go out once: the caller handles 429s and failures itself."""
    token = _retries_on.set(False)
    try:
        yield
    finally:
        _retries_on.reset(token)


def surely_not_sent(exc: BaseException) -> bool:
    """True when a failed call cannot have reached Telegram (the connection never carried it):
    no connection could be made, or none was free in time (httpx or aiohttp)."""
    cause = exc.__cause__
    return isinstance(
        cause,
        httpx.ConnectError
        | httpx.ConnectTimeout
        | httpx.PoolTimeout
        | aiohttp.ClientConnectorError
        | aiohttp.ConnectionTimeoutError,
    )


def may_have_been_sent(exc: BaseException) -> bool:
    """True when a failed call may have reached Telegram: the connection failed after the request
    went out (a read timeout, a connection broken before the answer). An HTTP error answer (a 502
    from Telegram's front end) is not such a failure: it is an answer."""
    if surely_not_sent(exc):
        return False
    return isinstance(exc.__cause__, httpx.TransportError | aiohttp.ClientError | TimeoutError)


def is_idempotent(method: str) -> bool:
    """Whether making this Bot API call twice has the same effect as once."""
    return method.lower().startswith(_IDEMPOTENT_PREFIXES)


def _retry_after(payload: bytes) -> float | None:
    try:
        body = json.loads(payload)
        value = body["parameters"]["retry_after"]
    except (ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) else None


class DelegatingRequest(BaseRequest):
    """A BaseRequest that hands every call to `inner`: the base of request wrappers."""

    def __init__(self, inner: BaseRequest) -> None:
        self.inner = inner

    @property
    def read_timeout(self) -> float | None:
        """The wrapped request's default read timeout."""
        return self.inner.read_timeout

    async def initialize(self) -> None:
        """Initialise the wrapped request."""
        await self.inner.initialize()

    async def shutdown(self) -> None:
        """Shut the wrapped request down."""
        await self.inner.shutdown()


class RetryingRequest(DelegatingRequest):
    """A BaseRequest that retries refused and surely-unsent calls; see the module docstring."""

    def __init__(
        self,
        inner: BaseRequest,
        *,
        max_attempts: int = 5,
        max_wait: float = 30.0,
        backoff: float = 0.5,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        on_retry: RetryHook | None = None,
    ) -> None:
        super().__init__(inner)
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.backoff = backoff
        self.sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self.on_retry = on_retry

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = DEFAULT_NONE,
        write_timeout: ODVInput[float] = DEFAULT_NONE,
        connect_timeout: ODVInput[float] = DEFAULT_NONE,
        pool_timeout: ODVInput[float] = DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Make the call; on a refusal or a surely-unsent failure, wait and make it again."""
        endpoint = url.rstrip("/").rsplit("/", 1)[-1]
        attempt, waited = 0, 0.0
        while True:
            attempt += 1
            try:
                code, payload = await self.inner.do_request(
                    url,
                    method,
                    request_data,
                    read_timeout=read_timeout,
                    write_timeout=write_timeout,
                    connect_timeout=connect_timeout,
                    pool_timeout=pool_timeout,
                )
            except (TimedOut, NetworkError) as exc:
                if not _retries_on.get() or attempt >= self.max_attempts:
                    raise
                if not (surely_not_sent(exc) or is_idempotent(endpoint)):
                    raise  # may have been sent: never twice
                delay, reason = self._backoff(attempt), "network"
            else:
                if not _retries_on.get() or attempt >= self.max_attempts:
                    return code, payload
                if code == 429:
                    seconds = _retry_after(payload)
                    if seconds is None:
                        return code, payload
                    # A little beyond retry_after, so the retry is not refused again.
                    delay, reason = seconds + self._rng.uniform(0.0, 0.2), "429"
                elif code in GATEWAY_ERRORS:
                    delay, reason = self._backoff(attempt), str(code)
                else:
                    return code, payload
                if waited + delay > self.max_wait:
                    return code, payload
            log.info(
                "Bot API %s: %s, trying again in %.1f s (attempt %d)",
                endpoint,
                reason,
                delay,
                attempt + 1,
            )
            if self.on_retry is not None:
                self.on_retry(endpoint, reason)
            await self.sleep(delay)
            waited += delay

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: callers failing together spread out."""
        return self._rng.uniform(0.5, 1.0) * self.backoff * 2 ** (attempt - 1)


def retrying(inner: BaseRequest, **kwargs: Any) -> RetryingRequest:
    """Wrap `inner` unless it already retries."""
    if isinstance(inner, RetryingRequest):
        return inner
    return RetryingRequest(inner, **kwargs)
