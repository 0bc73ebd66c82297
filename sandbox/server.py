"""The emulator over HTTP (aiohttp): the Bot API, file downloads, a JSON control API, webhooks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import httpx
from aiohttp import web

from sandbox.emulator import (
    JSON,
    ApiError,
    BotAPIEmulator,
    ManualClock,
    SimUser,
    StoredMessage,
    decode_body,
    update_chat,
)
from sandbox.network import NetworkFault

log = logging.getLogger(__name__)
T = TypeVar("T")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
EMULATOR_KEY = web.AppKey("emulator", BotAPIEmulator)


# --------------------------------------------------------------------------- webhooks


class WebhookDeliverer:
    """POSTs queued updates to the webhook URL in order; retries until a 2xx answer."""

    def __init__(
        self,
        emulator: BotAPIEmulator,
        *,
        client: httpx.AsyncClient | None = None,
        retry_delay: float = 1.0,
        max_retry_delay: float = 30.0,
        request_timeout: float = 10.0,
    ) -> None:
        self.emulator = emulator
        self._client = client
        self._own_client = client is None
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.request_timeout = request_timeout
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start delivering in the background."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.request_timeout)
        self._task = asyncio.create_task(self._run(), name="emulator-webhook-delivery")

    async def stop(self) -> None:
        """Stop delivering (pending updates stay queued)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> WebhookDeliverer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        # Up to max_connections POSTs at once, one per chat (see BotAPIEmulator.webhook_batch).
        self._delay = self.retry_delay
        flying: dict[asyncio.Task[None], object] = {}
        while True:
            room = self.emulator.webhook_max_connections - len(flying)
            batch = self.emulator.webhook_batch(set(flying.values()), room)
            for pending in batch:
                task = asyncio.create_task(self._deliver(pending))
                flying[task] = update_chat(pending.data)
            # Registered before anything else runs: a change right after the batch still wakes.
            waits: list[asyncio.Future[Any]] = [self.emulator.signal.waiter()]
            try:
                await asyncio.wait([*flying, *waits], return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                for task in flying:
                    task.cancel()
                await asyncio.gather(*flying, return_exceptions=True)
                raise
            finally:
                for wait in waits:
                    wait.cancel()
            for task in [t for t in flying if t.done()]:
                del flying[task]

    async def _deliver(self, pending: Any) -> None:
        """POST one update; after a failure its chat waits (Telegram backs off, shorter here)."""
        status, error = await self._post(self.emulator.webhook_url, pending.data)
        self.emulator.webhook_result(pending, status, error)
        if status is not None and 200 <= status < 300:
            self._delay = self.retry_delay
            return
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, self.max_retry_delay)

    async def _post(self, url: str, update: JSON) -> tuple[int | None, str | None]:
        assert self._client is not None
        headers = {"Content-Type": "application/json"}
        if self.emulator.webhook_secret:
            headers[SECRET_HEADER] = self.emulator.webhook_secret
        try:
            response = await self._client.post(url, json=update, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"Connection failed: {type(exc).__name__}"
        if 200 <= response.status_code < 300:
            return response.status_code, None
        reason = response.reason_phrase or ""
        return (
            response.status_code,
            f"Wrong response from the webhook: {response.status_code} {reason}",
        )


# --------------------------------------------------------------------------- Bot API routes


async def _bot_method(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    body = await request.read()
    try:
        params, files = decode_body(request.headers.get("Content-Type"), body, request.query_string)
    except ApiError as error:
        return web.json_response(error.payload(), status=error.code)
    try:
        status, payload = await emulator.call(
            request.match_info["method"], params, files, token=request.match_info["token"]
        )
    except NetworkFault:
        # The connection breaks without an answer: the client sees a network error.
        if request.transport is not None:
            request.transport.abort()
        raise web.HTTPServiceUnavailable() from None
    return web.json_response(payload, status=status)


async def _file(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    if request.match_info["token"] != emulator.token:
        raise web.HTTPNotFound()
    stored = emulator.file_by_path(request.match_info["path"])
    if stored is None or stored.data is None:
        raise web.HTTPNotFound()
    return web.Response(
        body=stored.data, content_type=stored.mime_type or "application/octet-stream"
    )


# --------------------------------------------------------------------------- control API


async def json_body(request: web.Request) -> JSON:
    """The request's JSON object ({} when there is no body); 400 for anything else."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text="body must be JSON") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def _user(emulator: BotAPIEmulator, request: web.Request) -> SimUser:
    try:
        return emulator.users[int(request.match_info["user_id"])]
    except (KeyError, ValueError) as exc:
        raise web.HTTPNotFound(text="unknown user") from exc


def _message(
    emulator: BotAPIEmulator, chat_id: int, body: JSON, *, with_label: bool
) -> StoredMessage:
    if body.get("message_id") is not None:
        try:
            return emulator.message(chat_id, int(body["message_id"]))
        except KeyError as exc:
            raise web.HTTPNotFound(text="unknown message") from exc
    label, data = body.get("label"), body.get("data")
    for message in reversed(emulator.sent_to(chat_id)):
        if not with_label or message.find_button(label, data) is not None:
            return message
    raise web.HTTPNotFound(text="no message with that button")


def _update_answer(update: JSON | None) -> JSON:
    return {"ok": True, "update_id": update["update_id"] if update else None}


async def _state(request: web.Request) -> web.Response:
    return web.json_response(request.app[EMULATOR_KEY].snapshot())


async def _create_user(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    body = await json_body(request)
    user = emulator.add_user(
        str(body.get("first_name") or "Bewoner"),
        last_name=body.get("last_name"),
        username=body.get("username"),
        language_code=body.get("language_code", "nl"),
        user_id=body.get("id"),
        started=bool(body.get("started", False)),
    )
    return web.json_response(user.to_api())


async def _create_group(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    body = await json_body(request)
    members = [emulator.users[int(i)] for i in body.get("members", []) if int(i) in emulator.users]
    added_by = body.get("added_by")
    chat = emulator.add_group(
        str(body.get("title") or "Groep"),
        type=str(body.get("type", "group")),
        username=body.get("username"),
        members=members,
        bot_status="left" if added_by else "member",
    )
    if added_by:
        emulator.add_bot_to_group(
            chat, emulator.users[int(added_by)], as_admin=bool(body.get("admin"))
        )
    return web.json_response(chat.to_api())


async def _user_send(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    user = _user(emulator, request)
    body = await json_body(request)
    chat = emulator.chats.get(int(body["chat_id"])) if body.get("chat_id") else None
    reply_to = None
    if body.get("reply_to_message_id") is not None:
        reply_to = emulator.message(chat.id if chat else user.id, int(body["reply_to_message_id"]))
    update = emulator.user_sends(user, str(body.get("text", "")), chat=chat, reply_to=reply_to)
    return web.json_response(_update_answer(update))


async def _user_tap(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    user = _user(emulator, request)
    body = await json_body(request)
    chat_id = int(body.get("chat_id") or user.id)
    message = _message(emulator, chat_id, body, with_label=True)
    try:
        update = emulator.user_taps(user, message, label=body.get("label"), data=body.get("data"))
    except LookupError as exc:
        raise web.HTTPNotFound(text=str(exc)) from exc
    return web.json_response(
        {**_update_answer(update), "callback_query_id": update["callback_query"]["id"]}
    )


async def _user_block(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    user = _user(emulator, request)
    blocked = request.match_info["action"] == "block"
    update = emulator.block(user) if blocked else emulator.unblock(user)
    return web.json_response(_update_answer(update))


async def _chats(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    return web.json_response([c.to_api() for c in emulator.chats.values()])


async def _chat_messages(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    chat_id = int(request.match_info["chat_id"])
    if chat_id not in emulator.chats:
        raise web.HTTPNotFound(text="unknown chat")
    include_deleted = request.query.get("include_deleted") == "1"
    messages = emulator.messages(chat_id, include_deleted=include_deleted)
    return web.json_response([emulator.message_record(m) for m in messages])


async def _callback_queries(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    return web.json_response([vars(q) | {} for q in emulator.callback_queries.values()])


async def _file_bytes(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    stored = emulator.files.get(request.match_info["file_id"])
    if stored is None or stored.data is None:
        raise web.HTTPNotFound(text="unknown file")
    headers = {}
    if stored.filename:
        headers["Content-Disposition"] = f'inline; filename="{stored.filename}"'
    return web.Response(
        body=stored.data,
        content_type=stored.mime_type or "application/octet-stream",
        headers=headers,
    )


async def _limits(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    body = await json_body(request)
    for key, value in body.items():
        if hasattr(emulator.limits, key):
            current = getattr(emulator.limits, key)
            setattr(emulator.limits, key, type(current)(value))
    return web.json_response(vars(emulator.limits) | {})


async def _network(request: web.Request) -> web.Response:
    """Read or change latency and faults: POST {"latency": 0.1, "refuse_429": 0.15, ...}."""
    emulator = request.app[EMULATOR_KEY]
    if request.method == "POST":
        body = await json_body(request)
        try:
            emulator.network.configure(**body)
        except (TypeError, ValueError) as exc:
            return web.json_response({"ok": False, "description": str(exc)}, status=400)
    return web.json_response(emulator.network.describe())


async def _time(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    body = await json_body(request)
    if body.get("real"):
        emulator.clock = time.time
    else:
        clock = emulator.clock
        if not isinstance(clock, ManualClock):
            clock = ManualClock(emulator.clock())
            emulator.clock = clock
        if body.get("time") is not None:
            clock.set(float(body["time"]))
        if body.get("advance") is not None:
            clock.advance(float(body["advance"]))
    return web.json_response({"time": emulator.clock()})


async def _requests(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR_KEY]
    method = request.query.get("method")
    records = emulator.calls(method) if method else emulator.requests
    return web.json_response([vars(r) | {} for r in records])


async def _events(request: web.Request) -> web.Response:
    """Long-poll for what happened after event `after` (messages, edits, deletions, answers)."""
    emulator = request.app[EMULATOR_KEY]
    after = int(request.query.get("after", "0"))
    timeout = min(float(request.query.get("timeout", "0")), 60.0)
    await emulator.wait_until(lambda: len(emulator.events) > after, timeout)
    return web.json_response(emulator.events[after:])


def build_app(emulator: BotAPIEmulator) -> web.Application:
    """The aiohttp application: Bot API, files and the /_emulator control API."""
    app = web.Application(client_max_size=60 * 1024 * 1024)
    app[EMULATOR_KEY] = emulator
    app.router.add_route("*", "/bot{token}/{method}", _bot_method)
    app.router.add_get("/file/bot{token}/{path:.+}", _file)
    app.router.add_get("/_emulator/state", _state)
    app.router.add_post("/_emulator/users", _create_user)
    app.router.add_post("/_emulator/groups", _create_group)
    app.router.add_post("/_emulator/users/{user_id}/send", _user_send)
    app.router.add_post("/_emulator/users/{user_id}/tap", _user_tap)
    app.router.add_post("/_emulator/users/{user_id}/{action:block|unblock}", _user_block)
    app.router.add_get("/_emulator/chats", _chats)
    app.router.add_get("/_emulator/chats/{chat_id}/messages", _chat_messages)
    app.router.add_get("/_emulator/callback_queries", _callback_queries)
    app.router.add_get("/_emulator/files/{file_id}", _file_bytes)
    app.router.add_post("/_emulator/limits", _limits)
    app.router.add_post("/_emulator/time", _time)
    app.router.add_route("*", "/_emulator/network", _network)
    app.router.add_get("/_emulator/requests", _requests)
    app.router.add_get("/_emulator/events", _events)
    return app


# --------------------------------------------------------------------------- servers


class EmulatorServer:
    """Serves an emulator on host:port (port 0 picks a free one) and delivers its webhooks."""

    def __init__(
        self,
        emulator: BotAPIEmulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_retry_delay: float = 1.0,
    ) -> None:
        self.emulator = emulator
        self.host = host
        self.port = port
        self.deliverer = WebhookDeliverer(emulator, retry_delay=webhook_retry_delay)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:8081."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What PTB's `base_url` should be (the token is appended by PTB)."""
        return self.url + "/bot"

    @property
    def base_file_url(self) -> str:
        """What PTB's `base_file_url` should be."""
        return self.url + "/file/bot"

    async def start(self) -> None:
        """Bind and start serving."""
        # handler_cancellation: a client that goes away must end its long poll here too.
        self._runner = web.AppRunner(
            build_app(self.emulator), access_log=None, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        await self.deliverer.start()

    async def stop(self) -> None:
        """Stop serving."""
        await self.deliverer.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class ThreadedEmulatorServer:
    """An EmulatorServer on its own event loop in a background thread (for sync tests)."""

    def __init__(self, emulator: BotAPIEmulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = EmulatorServer(emulator, host=host, port=port)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the server's loop (the emulator's state belongs to that thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        self.run(self.server.start())

    def stop(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()

    def __enter__(self) -> ThreadedEmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def serve(emulator: BotAPIEmulator, host: str, port: int) -> None:
    """Serve until cancelled; prints where."""
    async with EmulatorServer(emulator, host=host, port=port) as server:
        print(f"Bot API emulator at {server.url}", flush=True)
        print(f"  token:    {emulator.token}", flush=True)
        print(f"  base_url: {server.base_url}  (BUURTSTEM_API_BASE_URL={server.url})", flush=True)
        await asyncio.Event().wait()


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """--latency-ms, --jitter-ms and the fault shares (docs/emulator.md, "Network")."""
    group = parser.add_argument_group("network (how far away Telegram seems)")
    group.add_argument("--latency-ms", type=float, default=0.0, help="round trip per Bot API call")
    group.add_argument("--jitter-ms", type=float, default=0.0, help="+/- on the latency, uniform")
    group.add_argument("--refuse-429", type=float, default=0.0, help="share of calls refused (429)")
    group.add_argument("--retry-after", type=int, default=1, help="retry_after of those 429s")
    group.add_argument("--refuse-5xx", type=float, default=0.0, help="share refused (502)")
    group.add_argument("--connect-error", type=float, default=0.0, help="share not arriving")
    group.add_argument("--lose-response", type=float, default=0.0, help="share done, answer lost")
    group.add_argument("--seed", type=int, default=None, help="reproducible faults and jitter")


def network_settings(args: argparse.Namespace) -> dict[str, object]:
    """The Network fields from parsed `add_network_arguments` options."""
    return {
        "latency": args.latency_ms / 1000,
        "jitter": args.jitter_ms / 1000,
        "refuse_429": args.refuse_429,
        "retry_after": args.retry_after,
        "refuse_5xx": args.refuse_5xx,
        "connect_error": args.connect_error,
        "lose_response": args.lose_response,
        "seed": args.seed,
    }


def main(argv: list[str] | None = None) -> None:
    """`python -m sandbox.server --port N`: run the emulator standalone."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.server", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default=None, help="bot token the emulator accepts")
    parser.add_argument("--username", default="buurtstem_bot", help="the bot's username")
    parser.add_argument("--limits", action="store_true", help="enforce Telegram's rate limits")
    add_network_arguments(parser)
    args = parser.parse_args(argv)
    kwargs: dict[str, Any] = {"bot_username": args.username}
    if args.token:
        kwargs["token"] = args.token
    emulator = BotAPIEmulator(**kwargs)
    emulator.limits.enabled = args.limits
    emulator.network.configure(**network_settings(args))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(emulator, args.host, args.port))


if __name__ == "__main__":
    main()
