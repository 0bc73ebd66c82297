"""Shared checks of the authorisation tests: what a refused request may show and may change.

- `snapshot` reads every table of the database, so a test can assert that a refused command or
  tap changed nothing but the bookkeeping every update leaves (its claim, its inbox row).
- `assert_clean` checks a reply for internal details: tracebacks, exception and library names,
  SQL, file paths, unfilled placeholders, the pseudonym key or the bot token.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import MetaData, select

from tests.conftest import TEST_KEY

# Every update leaves these behind, allowed or not.
BOOKKEEPING = ("processed_updates", "update_inbox")

_INTERNAL = re.compile(
    r"Traceback|Exception|Error\b|sqlalchemy|psycopg|sqlite|SELECT |INSERT |UPDATE |"
    r"\.py\b|File \"|telegram\.|NoneType|\{[a-z_]+\}|<function|object at 0x|"
    r"alliance\.[a-z_]+\.[a-z_]+|responses\.[a-z_]+\.[a-z_]+|notice\.[a-z_]+",
)


def snapshot(db: Any, ignore: Iterable[str] = BOOKKEEPING) -> dict[str, list[str]]:
    """Every row of every table (but `ignore`), as sorted JSON strings per table."""
    skipped = set(ignore)
    meta = MetaData()
    out: dict[str, list[str]] = {}
    with db.session() as session:
        meta.reflect(bind=session.connection())
        for name, table in sorted(meta.tables.items()):
            if name in skipped or name == "alembic_version":
                continue
            rows = session.execute(select(table)).mappings().all()
            out[name] = sorted(json.dumps(dict(row), default=str, sort_keys=True) for row in rows)
    return out


def changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, Any]:
    """The tables whose rows differ, with the rows gone and the rows new."""
    diff: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        old, new = set(before.get(name, [])), set(after.get(name, []))
        if old != new:
            diff[name] = {"gone": sorted(old - new), "new": sorted(new - old)}
    return diff


def assert_clean(text: str | None, *secrets: str) -> None:
    """A reply a stranger may see: no internal details, no key, no token, no given secret."""
    if text is None:
        return
    found = _INTERNAL.search(text)
    assert found is None, f"internal detail {found.group(0)!r} in a reply: {text!r}"
    for secret in (TEST_KEY, *secrets):
        assert secret not in text, f"a secret in a reply: {text!r}"


def bot_texts(emulator: Any, chat_id: int) -> list[str]:
    """Everything the bot shows in a chat (texts and captions, edits applied)."""
    return [m.visible_text for m in emulator.sent_to(chat_id)]


def notices(emulator: Any) -> list[str]:
    """Every answer to a tap (the toast or alert)."""
    return [q.answer_text for q in emulator.callback_queries.values() if q.answer_text]


def plain(text: str) -> str:
    """A catalogue text as the chat shows it (HTML tags gone, entities read)."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))
