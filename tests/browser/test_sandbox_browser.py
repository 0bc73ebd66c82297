"""Headless Chromium completes the default survey on the sandbox page, as a person would."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from sandbox.runner import SANDBOX_ALLIANCES, Sandbox
from tests.conftest import TEST_KEY
from tests.test_sandbox import SURVEY_TAPS

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _playwright_or_skip() -> Any:
    """The sync Playwright API with Debian's Chromium; skip (or fail in CI) when missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (scripts/install-chromium)")
    sync_playwright: Any = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the python package playwright (pip install -e '.[dev]')")
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if os.environ.get("BUURTSTEM_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (BUURTSTEM_REQUIRE_BROWSER=1)")
        pytest.skip(message)
    return sync_playwright


class ThreadedSandbox:
    """The sandbox on its own event loop in a thread, so the test can drive a browser."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    def __enter__(self) -> Sandbox:
        self.thread.start()
        self.run(self.sandbox.start())
        return self.sandbox

    def __exit__(self, *exc: object) -> None:
        self.run(self.sandbox.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[tuple[Any, ThreadedSandbox]]:
    sync_playwright = _playwright_or_skip()
    settings = Settings(sandbox_dir=str(tmp_path), pseudonym_key=TEST_KEY, _env_file=None)  # type: ignore[call-arg]
    threaded = ThreadedSandbox(Sandbox(settings, port=0))
    with threaded as sandbox, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="nl-NL")
            page.set_default_timeout(WAIT_MS)
            page.goto(sandbox.url)
            yield page, threaded
        finally:
            browser.close()


def _keyboard_text(page: Any, message_id: str) -> str:
    return str(
        page.evaluate(
            """(id) => {
                const bubble = document.querySelector(`.bubble[data-message-id="${id}"]`);
                const keyboard = bubble && bubble.parentElement.querySelector('.keyboard');
                return keyboard ? keyboard.innerText : '';
            }""",
            message_id,
        )
    )


def tap(page: Any, button: Any) -> None:
    """Click an inline button and wait until the bot changed that message's keyboard."""
    row = button.locator("xpath=ancestor::div[contains(@class, 'row')]")
    message_id = row.locator(".bubble").get_attribute("data-message-id")
    before = _keyboard_text(page, message_id)
    button.click()
    page.wait_for_function(
        """([id, before]) => {
            const bubble = document.querySelector(`.bubble[data-message-id="${id}"]`);
            const keyboard = bubble && bubble.parentElement.querySelector('.keyboard');
            return (keyboard ? keyboard.innerText : '') !== before;
        }""",
        arg=[message_id, before],
    )


def last_bot_text(page: Any) -> str:
    return str(page.locator(".row.in .text").last.inner_text())


def test_browser_completes_the_default_survey_and_sees_a_digest(
    browser_page: tuple[Any, ThreadedSandbox],
) -> None:
    page, threaded = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    page.fill("#resident-name", "Sanne")
    page.select_option("#resident-lang", "nl")
    page.click("#create-resident")
    page.wait_for_selector("#chat-title:text('Sanne')")
    page.click("#start-button")
    consent = page.locator(".row.in .kb-button").first
    consent.wait_for()
    tap(page, consent)
    tap(page, page.locator('.kb-button[data-callback="v1|lc"]'))
    page.fill("#text", "3563")
    page.press("#text", "Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.row.in .text')].some(t => t.innerText.startsWith('Vraag 1\\n'))"
    )
    # Bold survey texts arrive as entities and are rendered as <b>, never as markup text.
    assert page.locator(".row.in .text b").count() > 0
    assert "<b>" not in page.locator("#messages").inner_text()
    for suffix in SURVEY_TAPS:
        tap(page, page.locator(f'.kb-button[data-callback$="{suffix}"]').last)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.row.in .text')].pop().innerText.toLowerCase().includes('dank')"
    )
    # Answered questions were edited in place: only records remain, marked "bewerkt".
    assert page.locator(".edited").count() >= len(SURVEY_TAPS) - 3
    page.screenshot(path=str(ARTIFACTS / "sandbox-survey.png"))

    # An Arabic resident: the bot's text is shown right-to-left.
    page.fill("#resident-name", "Fatima")
    page.select_option("#resident-lang", "ar")
    page.click("#create-resident")
    page.wait_for_selector("#chat-title:text('Fatima')")
    page.click("#start-button")
    page.locator(".row.in .kb-button").first.wait_for()
    direction = page.locator(".row.in .text").first.evaluate("t => getComputedStyle(t).direction")
    assert direction == "rtl"
    page.screenshot(path=str(ARTIFACTS / "sandbox-arabic.png"))

    # The alliance group: "send digest now" when the digest code is there, else shown disabled.
    group = SANDBOX_ALLIANCES[0][2]
    page.click(f"[data-chat-id='{group}']")
    control = page.locator("[data-control=digest_now]")
    if control.is_enabled():
        # The real digest through the outbox and the Bot API: one resident answered, so the
        # short digest ("too few answers"), without chart or CSV.
        control.click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.row.in')].some(r => r.innerText.includes('Overvecht'))"
        )
        assert "te weinig antwoorden" in page.locator("#messages").inner_text().lower()
    else:
        assert control.get_attribute("title") == "not available yet"
    # Show that the page renders a digest's chart and CSV as the bot sends them.
    bot = threaded.sandbox.application.bot  # type: ignore[union-attr]
    threaded.run(bot.send_photo(group, TINY_PNG, caption="<b>grafiek</b>", parse_mode="HTML"))
    threaded.run(bot.send_document(group, b"a;b\n1;2\n", filename="digest.csv"))
    page.locator("[data-testid=photo]").last.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=photo]')].pop().naturalWidth > 0"
    )
    link = page.locator("[data-testid=document]").last
    link.wait_for()
    name = link.get_attribute("download")
    assert name and name.endswith(".csv")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == name
    assert b";" in Path(download.value.path()).read_bytes()
    page.screenshot(path=str(ARTIFACTS / "sandbox-digest.png"))


def test_browser_poster_links_many_residents_and_dutch_control_reports(
    browser_page: tuple[Any, ThreadedSandbox],
) -> None:
    page, _threaded = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    # A resident who opens a poster's link: the page offers every area and neighbourhood code.
    assert page.locator("#deep-links option[value='overvecht-noord']").count() == 1
    page.fill("#resident-name", "Noor")
    page.select_option("#resident-lang", "nl")
    page.fill("#resident-link", "overvecht-noord")
    page.click("#create-resident")
    page.wait_for_selector("#chat-title:text('Noor')")
    assert "start=overvecht-noord" in page.locator("[data-testid=empty-chat]").inner_text()
    page.click("#start-button")
    page.wait_for_selector(".row.out .text:text('/start overvecht-noord')")
    consent = page.locator(".row.in .kb-button").first
    consent.wait_for()
    tap(page, consent)
    tap(page, page.locator('.kb-button[data-callback="v1|lc"]'))
    # No postcode question: the link told the bot where Noor lives; she confirms it.
    tap(page, page.locator('.kb-button[data-callback="v1|ak"]'))
    page.wait_for_function(
        "() => [...document.querySelectorAll('.row.in .text')].some(t => t.innerText.startsWith('Vraag 1\\n'))"
    )
    assert "3563" not in page.locator("#messages").inner_text()

    # Many residents: their list scrolls, the alliance groups and controls stay on screen.
    page.evaluate(
        """async () => {
            for (let i = 1; i <= 20; i++) {
                await fetch('/api/residents', {method: 'POST', headers: {'Content-Type': 'application/json'},
                    body: JSON.stringify({first_name: 'Bewoner ' + i, language_code: 'nl'})});
            }
        }"""
    )
    page.fill("#resident-name", "Laatste")
    page.click("#create-resident")
    page.wait_for_selector("#chat-title:text('Laatste')")
    assert page.locator("[data-testid=resident]").count() >= 22
    height = page.viewport_size["height"]
    residents = page.locator("#residents")
    assert residents.evaluate("list => list.scrollHeight > list.clientHeight")
    newest = page.locator("[data-testid=resident].active").bounding_box()
    assert newest is not None and newest["y"] >= 0 and newest["y"] + newest["height"] <= height
    for selector in ("[data-testid=group] >> nth=-1", "[data-control=digest_now]"):
        box = page.locator(selector).bounding_box()
        assert box is not None and box["y"] + box["height"] <= height, (selector, box, height)
    page.screenshot(path=str(ARTIFACTS / "sandbox-many-residents.png"))

    # The programme team's controls answer in plain Dutch sentences.
    page.click("[data-control=round_tick]")
    report = page.locator(".toast.report").last
    report.wait_for()
    text = report.inner_text()
    assert "gepubliceerd voor alle focusgebieden" in text and "De ronde is open" in text, text
    for raw in ("invitations", "superseded", "skipped", "False"):
        assert raw not in text
    assert (
        page.locator("[data-control=round_tick]")
        .get_attribute("title")
        .startswith("Publiceert een sandbox-ronde")
    )
    # The footer says how to reach this sandbox's data from the terminal.
    assert "--database-url sqlite:////" in page.locator("#notes").inner_text()
