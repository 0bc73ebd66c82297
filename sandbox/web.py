"""The sandbox's web page server: the static chat page and JSON endpoints over the emulator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from sandbox.server import json_body

JSON = dict[str, Any]
STATIC = Path(__file__).parent / "static"
LONG_POLL_SECONDS = 25.0
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})?$")
# Telegram's rule for a deep link's start parameter: up to 64 of A-Z, a-z, 0-9, _ and -.
_START = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Control:
    """A sandbox button (e.g. "round opens"); `run` is None while the feature does not exist."""

    label: str
    run: Callable[[], Awaitable[str]] | None
    help: str = ""


@dataclass
class SandboxInfo:
    """What the page needs to know about this sandbox besides the emulator's state."""

    survey_title: str
    survey_version: str
    languages: list[str]
    staff_user_id: int
    first_resident_id: int = 100_001
    alliance_areas: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # --database-url of the sandbox's data, for the terminal.
    database_url: str = ""
    # Codes a poster link can carry: {code, name, area}.
    deep_links: list[dict[str, str]] = field(default_factory=list)


@dataclass
class _Config:
    emulator_url: str
    token: str
    info: Callable[[], SandboxInfo]
    controls: Mapping[str, Control]


CONFIG_KEY = web.AppKey("sandbox_config", _Config)
CLIENT_KEY = web.AppKey("sandbox_client", aiohttp.ClientSession)


class Upstream(Exception):
    """The emulator answered with an error; passed on to the page with its status."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


async def _emulator(
    request: web.Request, method: str, path: str, *, body: JSON | None = None, **query: Any
) -> Any:
    """One call to the emulator's control API (over HTTP, as any other client would)."""
    config, client = request.app[CONFIG_KEY], request.app[CLIENT_KEY]
    params = {k: str(v) for k, v in query.items()}
    async with client.request(
        method, config.emulator_url + path, json=body, params=params or None
    ) as response:
        if response.status >= 400:
            raise Upstream(response.status, (await response.text())[:300])
        return await response.json()


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except Upstream as exc:
        return web.json_response({"error": exc.text}, status=exc.status)
    except aiohttp.ClientError:
        return web.json_response({"error": "the emulator is not reachable"}, status=502)


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"{what} must be a number") from exc


# --------------------------------------------------------------------------- page


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


# --------------------------------------------------------------------------- JSON API


async def _state(request: web.Request) -> web.Response:
    """Residents, alliance groups, controls and sandbox facts in one answer."""
    config = request.app[CONFIG_KEY]
    info = config.info()
    snapshot = await _emulator(request, "GET", "/_emulator/state")
    chats = {c["id"]: c for c in snapshot["chats"]}
    residents = [
        {
            "id": u["id"],
            "first_name": u["first_name"],
            "language_code": u.get("language_code"),
            "has_chat": u["id"] in chats,
            "blocked": u.get("blocked", False),
        }
        for u in snapshot["users"]
        if not u.get("is_bot") and u["id"] != info.staff_user_id
    ]
    groups = [
        {
            "id": c["id"],
            "title": c.get("title") or "",
            "area": info.alliance_areas.get(c["id"]),
        }
        for c in snapshot["chats"]
        if c["type"] in ("group", "supergroup")
    ]
    controls = {
        name: {"label": c.label, "available": c.run is not None, "help": c.help}
        for name, c in config.controls.items()
    }
    return web.json_response(
        {
            "bot": snapshot["bot"],
            "residents": sorted(residents, key=lambda r: r["id"]),
            "groups": groups,
            "controls": controls,
            "sandbox": asdict(info),
        }
    )


async def _create_resident(request: web.Request) -> web.Response:
    """A new simulated resident with a name and a Telegram language code."""
    body = await json_body(request)
    name = str(body.get("first_name") or "").strip()
    if not name or len(name) > 64:
        raise web.HTTPBadRequest(text="a name of 1 to 64 characters is needed")
    language = str(body.get("language_code") or "").strip()
    if language and not _LANGUAGE.match(language):
        raise web.HTTPBadRequest(text="language code like nl, en, tr, ar, pl")
    start = str(body.get("start") or "").strip()
    if start and not _START.match(start):
        raise web.HTTPBadRequest(
            text="een startlink mag alleen letters, cijfers, _ en - bevatten (hoogstens 64)"
        )
    config = request.app[CONFIG_KEY]
    info = config.info()
    snapshot = await _emulator(request, "GET", "/_emulator/state")
    taken = [u["id"] for u in snapshot["users"] if u["id"] != info.staff_user_id]
    # Explicit ids: residents restored from an earlier run must not be handed out again.
    new_id = max([info.first_resident_id - 1, *[i for i in taken if i < info.staff_user_id]]) + 1
    user = await _emulator(
        request,
        "POST",
        "/_emulator/users",
        body={"first_name": name, "language_code": language or None, "id": new_id},
    )
    if start:
        # As a poster's link opens the chat: Telegram shows START, which sends /start <code>.
        username = snapshot["bot"]["username"]
        user = {**user, "start": start, "link": f"https://t.me/{username}?start={start}"}
    return web.json_response(user)


async def _send(request: web.Request) -> web.Response:
    """A user writes in a chat: the resident in a private chat, staff in a group."""
    chat_id = _int(request.match_info["chat_id"], "chat id")
    body = await json_body(request)
    user_id = _int(body.get("user_id", chat_id), "user_id")
    text = str(body.get("text") or "")
    if not text.strip():
        raise web.HTTPBadRequest(text="empty message")
    payload: JSON = {"text": text[:4096]}
    if chat_id != user_id:
        payload["chat_id"] = chat_id
    answer = await _emulator(request, "POST", f"/_emulator/users/{user_id}/send", body=payload)
    return web.json_response(answer)


async def _tap(request: web.Request) -> web.Response:
    """A user taps an inline button of one message."""
    chat_id = _int(request.match_info["chat_id"], "chat id")
    body = await json_body(request)
    user_id = _int(body.get("user_id", chat_id), "user_id")
    payload: JSON = {"chat_id": chat_id, "message_id": _int(body.get("message_id"), "message_id")}
    if body.get("data") is not None:
        payload["data"] = str(body["data"])
    else:
        payload["label"] = str(body.get("label") or "")
    answer = await _emulator(request, "POST", f"/_emulator/users/{user_id}/tap", body=payload)
    return web.json_response(answer)


async def _messages(request: web.Request) -> web.Response:
    """Every message of a chat as it stands now (edits applied, with their history)."""
    chat_id = _int(request.match_info["chat_id"], "chat id")
    try:
        messages = await _emulator(request, "GET", f"/_emulator/chats/{chat_id}/messages")
    except Upstream as exc:
        if exc.status != 404:
            raise
        messages = []  # a resident who has not written yet has no chat
    return web.json_response(messages)


async def _events(request: web.Request) -> web.Response:
    """Long-poll: what happened after event number `after` (messages, edits, deletions, answers)."""
    after = max(0, _int(request.query.get("after", "0"), "after"))
    timeout = min(max(0.0, float(request.query.get("timeout", LONG_POLL_SECONDS))), 55.0)
    events = await _emulator(request, "GET", "/_emulator/events", after=after, timeout=timeout)
    return web.json_response(events)


async def _file(request: web.Request) -> web.Response:
    """A file the bot sent, fetched like a client would: getFile, then the /file/ route."""
    config, client = request.app[CONFIG_KEY], request.app[CLIENT_KEY]
    file_id = request.match_info["file_id"]
    base = f"{config.emulator_url}/bot{config.token}"
    async with client.get(base + "/getFile", params={"file_id": file_id}) as response:
        found = await response.json()
    if not found.get("ok"):
        raise web.HTTPNotFound(text="unknown file")
    path = found["result"]["file_path"]
    async with client.get(f"{config.emulator_url}/file/bot{config.token}/{path}") as response:
        if response.status != 200:
            raise web.HTTPNotFound(text="file has no bytes")
        data = await response.read()
        content_type = response.content_type
    headers = {"Cache-Control": "private, max-age=3600"}
    if request.query.get("download") == "1":
        name = _FILE_NAME.sub("_", request.query.get("name") or path.rsplit("/", 1)[-1])
        headers["Content-Disposition"] = f'attachment; filename="{name[:100]}"'
    return web.Response(body=data, content_type=content_type, headers=headers)


async def _control(request: web.Request) -> web.Response:
    """Run a sandbox control ("round opens", "send digest now")."""
    control = request.app[CONFIG_KEY].controls.get(request.match_info["name"])
    if control is None:
        raise web.HTTPNotFound(text="unknown control")
    if control.run is None:
        return web.json_response({"ok": False, "error": control.help}, status=409)
    try:
        result = await control.run()
    except Exception as exc:  # shown on the page: the sandbox is where one finds such bugs
        return web.json_response(
            {"ok": False, "error": f"{control.label} mislukt: {exc} ({type(exc).__name__})"[:300]}
        )
    return web.json_response({"ok": True, "result": result})


async def _client_ctx(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=LONG_POLL_SECONDS + 35)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[CLIENT_KEY] = session
        yield


def build_web_app(
    emulator_url: str,
    token: str,
    *,
    info: Callable[[], SandboxInfo],
    controls: Mapping[str, Control] | None = None,
) -> web.Application:
    """The page at / and its JSON API under /api/, talking to the emulator at `emulator_url`."""
    app = web.Application(middlewares=[_errors])
    app[CONFIG_KEY] = _Config(emulator_url.rstrip("/"), token, info, dict(controls or {}))
    app.cleanup_ctx.append(_client_ctx)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/api/state", _state)
    app.router.add_post("/api/residents", _create_resident)
    app.router.add_post("/api/chats/{chat_id}/send", _send)
    app.router.add_post("/api/chats/{chat_id}/tap", _tap)
    app.router.add_get("/api/chats/{chat_id}/messages", _messages)
    app.router.add_get("/api/events", _events)
    app.router.add_get("/api/files/{file_id}", _file)
    app.router.add_post("/api/controls/{name}", _control)
    return app
