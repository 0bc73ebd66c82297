"""A bound on webhook request bodies: python-telegram-bot's webhook server takes up to 100 MB.

Telegram documents no maximum update size, but an update is one message: at most 4,096
characters of text (or 1,024 of caption) with entities, the message it replies to, a keyboard;
tens of kilobytes. Anything over MAX_BODY_BYTES (1 MiB, as `client_max_body_size 1m` in the
nginx example of docs/deploy.md) is not from Telegram and is refused with 413 without reaching
the bot. The body is read and dropped, not kept, so the client gets its answer instead of a
reset connection; beyond DRAIN_BYTES the server stops reading and answers 400 (tornado's own).

PTB builds its tornado HTTPServer itself; tornado's documented `Configurable.configure` makes
that construction use the subclass below, with a lower read limit. It applies process-wide, to
the one tornado server `buurtstem run --webhook` runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from tornado import httputil
from tornado.httpserver import HTTPServer

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
DRAIN_BYTES = 32 * 1024 * 1024


def limit_webhook_bodies() -> None:
    """Make every tornado HTTPServer created from now on refuse bodies over MAX_BODY_BYTES."""
    HTTPServer.configure(_LimitedHTTPServer, max_body_size=DRAIN_BYTES)


def unlimit_webhook_bodies() -> None:
    """Undo `limit_webhook_bodies` (tests)."""
    HTTPServer.configure(None)


class _LimitedHTTPServer(HTTPServer):
    """tornado's HTTPServer with every request passing through a body-size gate."""

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        inner = super().start_request(server_conn, request_conn)
        return _BodyLimit(inner, request_conn)


class _BodyLimit(httputil.HTTPMessageDelegate):
    """Passes a request on while its body stays within the limit; else drops it and says 413."""

    def __init__(
        self, inner: httputil.HTTPMessageDelegate, connection: httputil.HTTPConnection
    ) -> None:
        self.inner = inner
        self.connection = connection
        self.received = 0
        self.refused = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        declared = headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            self.refused = True  # the application never sees this request
            log.warning(
                "webhook: refused a request body of %s bytes (limit %d)", declared, MAX_BODY_BYTES
            )
            return None
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.refused:
            return None
        self.received += len(chunk)
        if self.received > MAX_BODY_BYTES:  # a chunked body without Content-Length
            self.refused = True
            self.inner.on_connection_close()
            log.warning("webhook: refused a chunked request body over %d bytes", MAX_BODY_BYTES)
            return None
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if not self.refused:
            self.inner.finish()
            return
        self.connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 413, "Content Too Large"),
            httputil.HTTPHeaders({"Content-Length": "0"}),
        )
        self.connection.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.inner.on_connection_close()
