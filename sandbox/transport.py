"""An httpx transport that answers Bot API requests from the emulator in-process."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
from telegram.ext import ApplicationBuilder
from telegram.request import HTTPXRequest

from sandbox.emulator import ApiError, BotAPIEmulator, UploadedFile, decode_body
from sandbox.network import NetworkFault

_METHOD_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)/?$")
_FILE_PATH = re.compile(r"^/file/bot(?P<token>[^/]+)/(?P<path>.+)$")


class EmulatorTransport(httpx.AsyncBaseTransport):
    """Like httpx.MockTransport, but every request goes to a BotAPIEmulator: no network."""

    def __init__(self, emulator: BotAPIEmulator) -> None:
        self.emulator = emulator

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Route /bot<token>/<method> and /file/bot<token>/<path> to the emulator."""
        body = await request.aread()
        path = request.url.path
        file_match = _FILE_PATH.match(path)
        if file_match:
            return self._file(file_match["token"], file_match["path"])
        match = _METHOD_PATH.match(path)
        if match is None:
            return _json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        try:
            params, files = decode_request(request, body)
        except ApiError as error:
            return _json(error.code, error.payload())
        try:
            status, payload = await self.emulator.call(
                match["method"], params, files, token=match["token"]
            )
        except NetworkFault as fault:
            # What httpx raises when a connection fails before sending, or breaks before the
            # answer arrives (the caller cannot tell whether Telegram acted).
            if fault.performed:
                raise httpx.ReadError("connection lost before the answer (emulated)") from fault
            raise httpx.ConnectError("connection failed (emulated)") from fault
        return _json(status, payload)

    def _file(self, token: str, path: str) -> httpx.Response:
        stored = self.emulator.file_by_path(path) if token == self.emulator.token else None
        if stored is None or stored.data is None:
            return _json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        return httpx.Response(
            200,
            content=stored.data,
            headers={"content-type": stored.mime_type or "application/octet-stream"},
        )


def decode_request(
    request: httpx.Request, body: bytes
) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters and uploaded files of an httpx request."""
    return decode_body(request.headers.get("content-type"), body, request.url.query.decode())


def _json(status: int, payload: dict[str, Any]) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
    )


def emulator_request(emulator: BotAPIEmulator, **request_kwargs: Any) -> HTTPXRequest:
    """A PTB HTTPXRequest whose httpx client talks to the emulator in-process."""
    httpx_kwargs = dict(request_kwargs.pop("httpx_kwargs", None) or {})
    httpx_kwargs["transport"] = EmulatorTransport(emulator)
    return HTTPXRequest(httpx_kwargs=httpx_kwargs, **request_kwargs)


def emulator_application_builder(emulator: BotAPIEmulator) -> ApplicationBuilder:
    """An ApplicationBuilder with the emulator's token and two emulated request objects."""
    return (
        ApplicationBuilder()
        .token(emulator.token)
        .request(emulator_request(emulator))
        .get_updates_request(emulator_request(emulator))
    )
