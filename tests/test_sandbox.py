"""The sandbox over its web JSON API: the real bot, the emulator over HTTP, the page's endpoints."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from click.testing import CliRunner
from sqlalchemy import func, select

from bot.cli import cli
from bot.settings import Settings
from sandbox.runner import SANDBOX_ALLIANCES, Sandbox
from storage.models import Alliance, Response
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The default survey answered by button taps: the end of each button's callback data.
SURVEY_TAPS = [
    "|7",
    "|6",
    "|vooruit",
    "|ja",
    "|soms",
    "|zelden_nooit",
    "|eens",
    "|eens",
    "|eens",
    "|eens",
    "|vaak",  # six nuisance problems
    "|soms",
    "|nooit",
    "|vaak",
    "|soms",
    "|nooit",
    "|tevreden",
    "|neutraal",
    "|schoon",  # what first
    "|~s",  # the open question skipped
    "|geen",  # no optional modules
    "|~d",
]
Messages = list[dict[str, Any]]


class Page:
    """What the browser page does, through the same JSON endpoints."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.after = 0

    async def create_resident(self, name: str, language: str = "nl") -> int:
        response = await self.client.post(
            "/api/residents", json={"first_name": name, "language_code": language}
        )
        response.raise_for_status()
        return int(response.json()["id"])

    async def create_resident_via_link(self, name: str, code: str) -> dict[str, Any]:
        """A resident who opens a poster's link (what the page's link field does)."""
        response = await self.client.post(
            "/api/residents", json={"first_name": name, "language_code": "nl", "start": code}
        )
        response.raise_for_status()
        return dict(response.json())

    async def send(self, chat_id: int, text: str, user_id: int | None = None) -> None:
        body = {"text": text, "user_id": user_id or chat_id}
        response = await self.client.post(f"/api/chats/{chat_id}/send", json=body)
        response.raise_for_status()

    async def tap(self, chat_id: int, message: dict[str, Any], data: str) -> None:
        body = {"user_id": chat_id, "message_id": message["message_id"], "data": data}
        response = await self.client.post(f"/api/chats/{chat_id}/tap", json=body)
        response.raise_for_status()

    async def messages(self, chat_id: int) -> Messages:
        response = await self.client.get(f"/api/chats/{chat_id}/messages")
        response.raise_for_status()
        return list(response.json())

    async def wait(self, chat_id: int, ready: Callable[[Messages], bool]) -> Messages:
        """Wait for the bot through the page's long poll; fails after 20 s without it."""
        for _ in range(40):
            messages = await self.messages(chat_id)
            if ready(messages):
                return messages
            events = await self.client.get(
                "/api/events", params={"after": self.after, "timeout": 1}
            )
            self.after = max([self.after, *[e["seq"] for e in events.json()]])
        raise AssertionError(f"the bot did not answer as expected in chat {chat_id}")

    async def wait_reply(self, chat_id: int, after_count: int) -> dict[str, Any]:
        """The newest bot message once the bot has more than `after_count` messages."""
        messages = await self.wait(chat_id, lambda ms: len(_bot(ms)) > after_count)
        return _bot(messages)[-1]


def _bot(messages: Messages) -> Messages:
    return [m for m in messages if m["from_bot"]]


def button_ending(message: dict[str, Any], suffix: str) -> str:
    """The callback data of the button whose data ends with `suffix`."""
    for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            if str(button.get("callback_data", "")).endswith(suffix):
                return str(button["callback_data"])
    raise AssertionError(f"no button {suffix!r} in {message.get('text', '')[:80]!r}")


async def tap_and_wait(page: Page, chat_id: int, suffix: str) -> dict[str, Any]:
    """Tap a button on the newest bot message; return the next state of the conversation."""
    before = await page.messages(chat_id)
    last = _bot(before)[-1]
    await page.tap(chat_id, last, button_ending(last, suffix))
    # The answer is an edit of the question (a record) plus a new message, or just an edit.
    fingerprint = [(m["message_id"], m.get("text"), m.get("reply_markup")) for m in before]

    def settled(ms: Messages) -> bool:
        changed = [(m["message_id"], m.get("text"), m.get("reply_markup")) for m in ms]
        newest = _bot(ms)[-1]
        # Settled: the next question is up (buttons), or the closing thanks arrived.
        return changed != fingerprint and (_has_buttons([newest]) or "dank" in newest["text"])

    return _bot(await page.wait(chat_id, settled))[-1]


async def onboard(page: Page, chat_id: int, postcode: str = "3563") -> dict[str, Any]:
    """/start, consent, keep the Telegram language, give a postcode: the first question."""
    await page.send(chat_id, "/start")
    consent = _bot(await page.wait(chat_id, lambda ms: _has_buttons(_bot(ms))))[-1]
    first = consent["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    await page.tap(chat_id, consent, first)
    language = await page.wait(chat_id, lambda ms: "v1|lc" in str(_bot(ms)[-1]))
    await page.tap(chat_id, _bot(language)[-1], "v1|lc")
    count = len(_bot(await page.wait(chat_id, lambda ms: "v1|lc" not in str(_bot(ms)[-1]))))
    await page.send(chat_id, postcode)
    messages = await page.wait(
        chat_id, lambda ms: len(_bot(ms)) > count and _bot(ms)[-1]["text"].startswith("Vraag 1\n")
    )
    return _bot(messages)[-1]


def _has_buttons(messages: Messages) -> bool:
    return bool(messages and (messages[-1].get("reply_markup") or {}).get("inline_keyboard"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Sandbox]:
    """One sandbox for this module (it takes seconds to start: matplotlib, YAML, migrations)."""
    folder = tmp_path_factory.mktemp("sandbox")
    settings = Settings(sandbox_dir=str(folder), pseudonym_key=TEST_KEY, _env_file=None)  # type: ignore[call-arg]
    async with Sandbox(settings, port=0) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def page(sandbox: Sandbox) -> AsyncIterator[Page]:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30) as client:
        yield Page(client)


async def test_page_state_lists_alliances_controls_and_languages(page: Page) -> None:
    html = await page.client.get("/")
    assert html.status_code == 200 and "buurtstem sandbox" in html.text
    for name in ("app.js", "app.css"):
        assert (await page.client.get(f"/static/{name}")).status_code == 200
    state = (await page.client.get("/api/state")).json()
    assert [g["title"] for g in state["groups"]] == [t for _, t, _ in SANDBOX_ALLIANCES]
    assert state["groups"][0]["area"] == "Utrecht Overvecht"
    assert set(state["controls"]) == {"round_tick", "digest_now"}
    assert {"nl", "en", "tr", "ar", "pl"} <= set(state["sandbox"]["languages"])
    assert state["bot"]["username"] == "buurtstem_bot"
    # Poster links: every focus area and neighbourhood code, with names for the picker.
    links = {link["code"]: link for link in state["sandbox"]["deep_links"]}
    assert links["utrecht-overvecht"]["name"] == "Utrecht Overvecht"
    assert links["overvecht-noord"]["area"] == "Utrecht Overvecht"


async def test_page_names_the_database_for_other_commands(page: Page, sandbox: Sandbox) -> None:
    state = (await page.client.get("/api/state")).json()
    url = sandbox.database.cli_url
    assert url.startswith("sqlite:////") and url.endswith(".sqlite")  # absolute
    assert state["sandbox"]["database_url"] == url
    assert f"buurtstem round list --database-url {url}" in " ".join(state["sandbox"]["notes"])
    # The notes on the (Dutch) page are Dutch.
    assert "sandbox-database" in state["sandbox"]["notes"][0]


async def test_alliances_are_pre_linked_in_the_sandbox_database(sandbox: Sandbox) -> None:
    assert sandbox.db is not None
    with sandbox.db.session() as session:
        rows = {a.chat_id: a.area_code for a in session.scalars(select(Alliance))}
    assert rows == {chat_id: area for area, _, chat_id in SANDBOX_ALLIANCES}


async def test_resident_completes_the_default_survey_by_taps(page: Page, sandbox: Sandbox) -> None:
    anna = await page.create_resident("Anna", "nl")
    question = await onboard(page, anna)
    assert question["text"].startswith("Vraag 1\n")  # no total while it depends on answers
    last = question
    for suffix in SURVEY_TAPS:
        last = await tap_and_wait(page, anna, suffix)
    assert "dank" in last["text"].lower()
    messages = await page.messages(anna)
    # Questions are edited in place into records: the first one lost its buttons.
    first = next(m for m in messages if m["message_id"] == question["message_id"])
    assert first["edits"] and not (first.get("reply_markup") or {}).get("inline_keyboard")
    assert sandbox.db is not None
    with sandbox.db.session() as session:
        completed = session.scalar(
            select(func.count()).select_from(Response).where(Response.status == "completed")
        )
    assert completed == 1


async def test_bot_html_comes_with_entities_for_the_page(page: Page) -> None:
    bea = await page.create_resident("Bea", "en")
    await page.send(bea, "/start")
    welcome = await page.wait_reply(bea, 0)
    assert "<b>" in (welcome["html"] or "")  # what the bot sent
    assert "<b>" not in welcome["text"]  # what the page renders, with entities
    assert any(e["type"] == "bold" for e in welcome["entities"])


async def test_arabic_resident_is_answered_in_arabic(page: Page) -> None:
    fatima = await page.create_resident("Fatima", "ar")
    await page.send(fatima, "/start")
    welcome = await page.wait_reply(fatima, 0)
    assert any("\u0600" <= ch <= "\u06ff" for ch in welcome["text"])


async def test_bad_requests_get_clear_errors(page: Page) -> None:
    assert (await page.client.post("/api/residents", json={"first_name": ""})).status_code == 400
    bad_lang = {"first_name": "X", "language_code": "<script>"}
    assert (await page.client.post("/api/residents", json=bad_lang)).status_code == 400
    cid = await page.create_resident("Cas")
    tap = await page.client.post(f"/api/chats/{cid}/tap", json={"message_id": 999, "data": "x"})
    assert tap.status_code == 404 and "error" in tap.json()
    assert (await page.client.post("/api/controls/nope")).status_code == 404
    assert await page.messages(cid) == []  # no chat before the resident writes


async def test_a_poster_link_starts_a_resident_in_its_neighbourhood(
    page: Page, sandbox: Sandbox
) -> None:
    created = await page.create_resident_via_link("Noor", "overvecht-noord")
    assert created["link"] == "https://t.me/buurtstem_bot?start=overvecht-noord"
    noor = int(created["id"])
    # What START sends for a resident who came through the link.
    await page.send(noor, "/start overvecht-noord")
    consent = _bot(await page.wait(noor, lambda ms: _has_buttons(_bot(ms))))[-1]
    await page.tap(noor, consent, consent["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
    language = await page.wait(noor, lambda ms: "v1|lc" in str(_bot(ms)[-1]))
    await page.tap(noor, _bot(language)[-1], "v1|lc")
    # No postcode question: the link said where Noor lives; she confirms, the survey starts.
    check = await page.wait(noor, lambda ms: "v1|ak" in str(_bot(ms)[-1]))
    assert "Overvecht" in _bot(check)[-1]["text"]
    await page.tap(noor, _bot(check)[-1], "v1|ak")
    first = await page.wait(noor, lambda ms: _bot(ms)[-1]["text"].startswith("Vraag 1\n"))
    assert not any("postcode" in m["text"].lower() for m in _bot(first)[-1:])
    assert sandbox.db is not None
    from storage.models import Resident

    with sandbox.db.session() as session:
        places = {(r.area_code, r.neighbourhood_code) for r in session.scalars(select(Resident))}
    assert ("utrecht-overvecht", "overvecht-noord") in places


async def test_a_malformed_start_link_is_refused_in_dutch(page: Page) -> None:
    bad = {"first_name": "X", "start": "overvecht noord!"}
    answer = await page.client.post("/api/residents", json=bad)
    assert answer.status_code == 400 and "startlink" in answer.text


async def test_round_opens_and_invites_a_resident(page: Page, sandbox: Sandbox) -> None:
    state = (await page.client.get("/api/state")).json()
    if not state["controls"]["round_tick"]["available"]:
        answer = await page.client.post("/api/controls/round_tick")
        assert answer.status_code == 409 and answer.json()["error"] == "nog niet beschikbaar"
        return
    assert state["controls"]["round_tick"]["help"].startswith("Publiceert een sandbox-ronde")
    dirk = await page.create_resident("Dirk", "nl")
    await onboard(page, dirk)
    before = len(_bot(await page.messages(dirk)))
    answer = (await page.client.post("/api/controls/round_tick")).json()
    assert answer["ok"], answer
    # Plain Dutch sentences for the programme team, not a dump of the tick's fields.
    report = answer["result"]
    assert re.fullmatch(
        r"Ronde 'Sandbox-ronde [\d: -]+' gepubliceerd voor alle focusgebieden, open tot "
        r"[\d: -]+\. De ronde is open: \d+ bewoners? met toestemming uitgenodigd\..*",
        report,
    ), report
    for raw in ("invitations", "superseded", "skipped", "False", ": 0"):
        assert raw not in report
    invitation = await page.wait_reply(dirk, before)
    assert "|s|" in str(invitation["reply_markup"])
    again = (await page.client.post("/api/controls/round_tick")).json()["result"]
    assert again.startswith("Ronde 'Sandbox-ronde ") and "is al open (tot " in again
    assert again.endswith("Er was niets te openen, te sluiten of te herinneren.")
    # The one rule for databases: the round is there for `round list` with the printed URL.
    listed = CliRunner().invoke(cli, ["round", "list", "--database-url", sandbox.database.cli_url])
    assert listed.exit_code == 0, listed.output
    assert "Sandbox-ronde" in listed.stdout


async def test_digest_now_reaches_the_alliance_groups(page: Page) -> None:
    state = (await page.client.get("/api/state")).json()
    answer = await page.client.post("/api/controls/digest_now")
    if not state["controls"]["digest_now"]["available"]:
        assert answer.status_code == 409 and answer.json()["error"] == "nog niet beschikbaar"
        return
    assert answer.json()["ok"], answer.json()
    released, *lines = answer.json()["result"].splitlines()
    # New figures first (as the bot does after midnight), where enough people answered.
    assert released.startswith(("Nieuwe cijfers vrijgegeven", "Geen nieuwe cijfers")), released
    assert [line.split(":")[0] for line in lines] == [t for _, t, _ in SANDBOX_ALLIANCES]
    assert all(
        line.endswith(
            (
                "digest verstuurd (met grafiek en CSV zodra er genoeg antwoorden zijn).",
                "geen ronde in dit gebied.",
            )
        )
        for line in lines
    ), lines
    # Asked again at once: too soon, said so with the time it can be asked again.
    soon = (await page.client.post("/api/controls/digest_now")).json()["result"]
    assert "kreeg net al een digest. Weer mogelijk om " in soon
    group = SANDBOX_ALLIANCES[0][2]

    def text(m: dict[str, Any]) -> str:
        return str(m.get("text") or m.get("caption") or "")

    messages = await page.wait(group, lambda ms: any("Overvecht" in text(m) for m in _bot(ms)))
    # Everything in the group came from the bot through the outbox: with nobody answering in
    # the sandbox yet, the short digest ("too few answers"), without chart or CSV.
    assert all(m["from_bot"] for m in messages)
    digest = [m for m in _bot(messages) if "Overvecht" in text(m)]
    assert digest and "te weinig antwoorden" in text(digest[-1]).lower()


async def test_files_the_bot_sent_are_served_for_download(page: Page, sandbox: Sandbox) -> None:
    # A document as a digest's CSV would be: sent by the bot through the Bot API over HTTP.
    assert sandbox.application is not None
    chat_id = SANDBOX_ALLIANCES[1][2]
    sent = await sandbox.application.bot.send_document(
        chat_id, b"area;n\nx;12\n", filename="digest.csv"
    )
    assert sent.document is not None
    file_id = sent.document.file_id
    plain = await page.client.get(f"/api/files/{file_id}")
    assert plain.content == b"area;n\nx;12\n"
    download = await page.client.get(
        f"/api/files/{file_id}", params={"download": "1", "name": "digest.csv"}
    )
    assert download.headers["Content-Disposition"] == 'attachment; filename="digest.csv"'
    assert (await page.client.get("/api/files/nope")).status_code == 404


async def test_stop_keeps_residents_for_the_next_run(tmp_path: Path) -> None:
    settings = Settings(sandbox_dir=str(tmp_path), pseudonym_key=TEST_KEY, _env_file=None)  # type: ignore[call-arg]
    first = Sandbox(settings, port=0)
    await first.start()
    try:
        async with httpx.AsyncClient(base_url=first.url) as client:
            created = await client.post("/api/residents", json={"first_name": "Eva"})
            eva = created.json()["id"]
    finally:
        await first.stop()
    second = Sandbox(settings, port=0)
    await second.start()
    try:
        assert "Continuing" in " ".join(second.notes)
        async with httpx.AsyncClient(base_url=second.url) as client:
            residents = (await client.get("/api/state")).json()["residents"]
            assert [(r["id"], r["first_name"]) for r in residents] == [(eva, "Eva")]
            newer = (await client.post("/api/residents", json={"first_name": "Finn"})).json()
            assert newer["id"] == eva + 1  # never an id of an earlier resident
    finally:
        await second.stop()
    await asyncio.sleep(0)
