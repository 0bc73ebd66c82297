"""`buurtstem alliance unblock`: programme teams lift the /koppel limits (all chats, or one
chat's back-off), asked first; through the CLI and the emulated Bot API on real databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from sandbox.harness import BotHarness, GroupHandle
from storage import alliances as store
from tests.conftest import TEST_KEY

PER_HOUR = 3


@pytest.fixture
def service_settings() -> dict[str, Any]:
    return {"link_failures_per_hour": PER_HOUR}


def unblock(services: Any, *args: str, answer: str | None = None) -> Result:
    env = {
        "BUURTSTEM_DATABASE_URL": services.settings.database_url,
        "BUURTSTEM_PSEUDONYM_KEY": TEST_KEY,
    }
    return CliRunner().invoke(cli, ["alliance", "unblock", *args], env=env, input=answer)


def invite(services: Any) -> str:
    with services.db.session() as session:
        return store.create_code(session, "delft-west", TEST_KEY, services.clock.now())


def blocked(services: Any, chat_id: int) -> bool:
    with services.db.session() as session:
        return store.blocked_until(session, chat_id, services.clock.now()) is not None


async def new_group(h: BotHarness, title: str) -> tuple[GroupHandle, Any]:
    member = h.user(f"Lid {title}")
    group = h.group(title)
    await group.add_bot(member)
    return group, member


async def test_unblock_clears_the_limit_of_all_chats_after_asking(
    services: Any, make_app: Any, emulator: Any
) -> None:
    # The command compares with the real time: let the test clock start there.
    services.clock.set(datetime.now(UTC).replace(microsecond=0))
    nothing = unblock(services)
    assert nothing.exit_code == 0 and "Nothing to clear" in nothing.output
    async with BotHarness(emulator, make_app(services)) as h:
        for n in range(PER_HOUR):
            group, member = await new_group(h, f"Aanvaller {n}")
            await group.send(member, "/koppel AAAAA-AAAAA")
        alliance, member = await new_group(h, "Alliantie Delft")
        code = invite(services)
        await alliance.send(member, f"/koppel {code}")
        assert "ook vanuit andere groepen" in alliance.last_message().visible_text
        assert blocked(services, store.ALL_CHATS)

        refused = unblock(services, answer="n\n")
        assert refused.exit_code == 1 and "Nothing cleared" in refused.output
        assert "Linking is blocked for every chat until" in refused.output
        assert f"{PER_HOUR} failed code(s)" in refused.output
        assert "Clear the failed codes of every chat?" in refused.output
        assert blocked(services, store.ALL_CHATS)

        done = unblock(services, "--yes")
        assert done.exit_code == 0, done.output
        assert "Cleared: every chat can try a code again" in done.output
        assert done.output.startswith("Database: ")  # names its database first
        assert not blocked(services, store.ALL_CHATS)
        await alliance.send(member, f"/koppel {code}")
        assert "gekoppeld aan" in alliance.last_message().visible_text


async def test_unblock_chat_clears_one_chats_back_off_only(
    services: Any, make_app: Any, emulator: Any
) -> None:
    services.clock.set(datetime.now(UTC).replace(microsecond=0))
    async with BotHarness(emulator, make_app(services)) as h:
        services.settings.link_failures_per_hour = 1000
        group, member = await new_group(h, "Alliantie Delft")
        other, other_member = await new_group(h, "Andere groep")
        for _ in range(store.FREE_FAILURES):
            await group.send(member, "/koppel AAAAA-AAAAA")
            await other.send(other_member, "/koppel AAAAA-AAAAA")
        assert blocked(services, group.chat_id) and blocked(services, other.chat_id)

        asked = unblock(services, "--chat", str(group.chat_id), answer="y\n")
        assert asked.exit_code == 0, asked.output
        assert (
            f"Chat {group.chat_id}: {store.FREE_FAILURES} failed code(s), blocked" in asked.output
        )
        assert not blocked(services, group.chat_id)
        assert blocked(services, other.chat_id)  # only the chat asked for
        await group.send(member, f"/koppel {invite(services)}")
        assert "gekoppeld aan" in group.last_message().visible_text
    again = unblock(services, "--chat", str(group.chat_id))
    assert again.exit_code == 0 and "Nothing to clear" in again.output
    zero = unblock(services, "--chat", "0")
    assert zero.exit_code != 0 and "not a chat id" in zero.output
