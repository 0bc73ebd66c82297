"""Bot API calls over aiohttp: a connection pool whose cost does not grow with its size.

python-telegram-bot talks HTTP through httpx by default. httpcore, under httpx, walks its whole
pool, and every request waiting for a connection, each time a request starts or ends; with
Telegram 100 ms away and dozens of updates in hand, that walk cost more CPU than the replies
themselves (benchmarks/README.md, "Many residents at once"). aiohttp's connector keeps idle
connections and waiters in queues instead. This is the request object `buurtstem run` and the
sandbox use; tests in-process keep httpx with the emulator's transport (sandbox/transport.py).

Failures are raised as python-telegram-bot raises them, with the aiohttp exception as cause;
`bot.retrying.surely_not_sent` knows which of them mean the request never left.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

USER_AGENT = "buurtstem (python-telegram-bot, aiohttp)"


class AiohttpRequest(BaseRequest):
    """A BaseRequest on one aiohttp session with at most `connections` connections."""

    def __init__(
        self,
        connections: int = 16,
        *,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 10.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self.connections = connections
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (on the running event loop)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": USER_AGENT}
            )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Make one call; the status and body as Telegram sent them."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, self._media_write_timeout if files else self._write_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        # aiohttp's `connect` covers waiting for a pooled connection and making one.
        timeout = aiohttp.ClientTimeout(
            connect=_total(connect, pool), sock_read=_total(read, write)
        )
        kwargs: dict[str, Any] = {"timeout": timeout}
        if files:
            form = aiohttp.FormData()
            for name, value in (request_data.json_parameters if request_data else {}).items():
                form.add_field(name, value)
            for name, part in files.items():
                filename, content, mime = part if len(part) == 3 else (*part, None)  # type: ignore[misc]
                form.add_field(name, content, filename=filename, content_type=mime)
            kwargs["data"] = form
        elif request_data is not None and request_data.parameters:
            # Form fields with JSON-encoded values, exactly as python-telegram-bot sends them.
            kwargs["data"] = request_data.json_parameters
        try:
            async with self._session.request(method, url, **kwargs) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as err:
            raise TimedOut("Connect or pool timeout: the request was not sent.") from err
        except TimeoutError as err:
            raise TimedOut from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err


def _given(value: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(value, DefaultValue) else value


def _total(*parts: float | None) -> float | None:
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
