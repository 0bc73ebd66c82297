"""Linking alliance groups with one-time codes, /results for residents, and the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select

from bot.cli import cli
from sandbox.harness import BotHarness
from storage import alliances as store
from storage.models import Alliance, AllianceCode
from tests.conftest import TEST_KEY
from tests.test_alliance_data import release, seed
from tests.test_resident_flow import onboard


def invite(services: Any, area: str, valid: timedelta = store.CODE_VALID) -> str:
    with services.db.session() as session:
        return store.create_code(session, area, TEST_KEY, services.clock.now(), valid)


def alliances(services: Any) -> list[tuple[str, int]]:
    with services.db.session() as session:
        return [(a.area_code, a.chat_id) for a in store.all_alliances(session)]


def test_codes_are_easy_to_type_and_stored_hashed(services: Any) -> None:
    code = invite(services, "delft-west")
    assert len(code) == 11 and code[5] == "-"
    assert store.normalise_code(code.lower().replace("-", " ")) == code.replace("-", "")
    with services.db.session() as session:
        stored = session.scalars(select(AllianceCode.code_hash)).one()
    assert code.replace("-", "") not in stored and code not in stored


async def test_a_code_links_once_and_wrong_or_old_codes_change_nothing(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        anna = h.user("Anna")
        first, second = h.group("Alliantie Delft"), h.group("Andere groep")
        for group in (first, second):
            await group.add_bot(anna)
        code = invite(services, "delft-west")
        await first.send(anna, f"/link {code.lower()}")
        confirmation = first.last_message().visible_text
        assert "Delft West" in confirmation and "maandag om 09:00" in confirmation
        assert "unlink" in confirmation
        # Used: refused elsewhere, and nothing changes.
        await second.send(anna, f"/koppel {code}")
        assert "al gebruikt" in second.last_message().visible_text
        # Expired.
        old = invite(services, "delft-west", valid=timedelta(days=7))
        services.clock.advance(timedelta(days=7, seconds=1))
        await second.send(anna, f"/koppel {old}")
        assert "verlopen" in second.last_message().visible_text
        # Wrong.
        await second.send(anna, "/koppel AAAAA-BBBBB")
        assert "klopt niet" in second.last_message().visible_text
        # A linked group cannot be moved to another area with a fresh code; the code survives.
        other = invite(services, "utrecht-overvecht")
        await first.send(anna, f"/koppel {other}")
        assert "al gekoppeld aan" in first.last_message().visible_text
        await second.send(anna, f"/koppel {other}")
        assert "Utrecht Overvecht" in second.last_message().visible_text
        # Without a code, and in a private chat.
        await first.send(anna, "/koppel")
        assert "/koppel" in first.last_message().visible_text
        await anna.send("/koppel ABCDE-FGHJK")
        assert "groep" in anna.last_message().visible_text
    assert sorted(alliances(services)) == sorted(
        [("delft-west", first.chat_id), ("utrecht-overvecht", second.chat_id)]
    )


async def test_repeated_wrong_codes_are_slowed_down(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        ben = h.user("Ben")
        group = h.group("Raadgroep")
        await group.add_bot(ben)
        for _ in range(store.FREE_FAILURES - 1):
            await group.send(ben, "/koppel AAAAA-AAAAA")
            assert "Probeer het opnieuw na" not in group.last_message().visible_text
        await group.send(ben, "/koppel AAAAA-AAAAA")
        assert "Probeer het opnieuw na" in group.last_message().visible_text
        # Blocked: even a good code is not looked at, and it stays usable.
        good = invite(services, "delft-west")
        await group.send(ben, f"/koppel {good}")
        assert "Te veel onjuiste codes" in group.last_message().visible_text
        assert alliances(services) == []
        services.clock.advance(timedelta(minutes=1, seconds=1))
        await group.send(ben, "/koppel AAAAA-AAAAA")  # the 6th failure waits twice as long
        with services.db.session() as session:
            until = store.blocked_until(session, group.chat_id, services.clock.now())
        assert until is not None and until - services.clock.now() == timedelta(minutes=2)
        services.clock.advance(timedelta(minutes=2, seconds=1))
        await group.send(ben, f"/koppel {good}")
        assert "gekoppeld" in group.last_message().visible_text
    assert alliances(services) == [("delft-west", group.chat_id)]


async def test_results_for_a_resident_with_suppression(
    services: Any, make_app: Any, emulator: Any
) -> None:
    start = services.clock.now()
    seed(
        services.db,
        area="utrecht-overvecht",
        neighbourhood="overvecht-zuid",
        n=12,
        at=start,
        grade=7,
    )
    seed(services.db, area="leeuwarden-oost", neighbourhood=None, n=4, at=start, grade=3)
    services.clock.advance(timedelta(days=7))
    release(services)  # the digest job's cut after midnight: Monday 9 November 00:00 UTC
    async with BotHarness(emulator, make_app(services)) as h:
        carla = h.user("Carla", language_code="en")
        await onboard(h, carla, postcode="3563")
        await carla.send("/results")
        text = carla.last_message().visible_text
        lines = text.splitlines()
        assert lines[0] == "Results Utrecht Overvecht"
        assert lines[1].startswith("Round: ") and "ongoing since 2 November 2026" in lines[1]
        # When the figures are from (01:00 in Amsterdam), and how many neighbours answered.
        assert lines[2] == "Figures up to 9 November 2026, 01:00: 12 neighbours have answered."
        assert "Liveability: average 7.0 (n=12)" in text
        assert "at least 10 new answers, at most once a day" in text
        assert "not a random sample" in text
        # Leeuwarden-Oost has 4 responses: no release, so no figures for its residents.
        dirk = h.user("Dirk")
        await onboard(h, dirk, postcode="8924")
        await dirk.send("/results")
        text = dirk.last_message().visible_text
        assert "te weinig antwoorden" in text.lower() and "3,0" not in text
        assert "Nog geen cijfers" in text
        # Someone who never started.
        eva = h.user("Eva")
        await eva.send("/results")
        assert "/start" in eva.last_message().visible_text


def test_cli_invite_list_schedule_unlink(services: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {
        "BUURTSTEM_DATABASE_URL": services.settings.database_url,
        "BUURTSTEM_PSEUDONYM_KEY": TEST_KEY,
    }
    result = runner.invoke(cli, ["alliance", "invite", "delft-west"], env=env)
    assert result.exit_code == 0, result.output
    code = result.output.split("Code for Delft West: ")[1].split()[0]
    assert runner.invoke(cli, ["alliance", "invite", "atlantis"], env=env).exit_code != 0
    with services.db.session() as session:
        linked = store.redeem_code(
            session,
            chat_id=-4001,
            title="Alliantie Delft",
            text=code,
            key=TEST_KEY,
            now=services.clock.now(),
            schedule={},
        )
        assert linked.outcome == "linked" and linked.alliance is not None
        alliance_id = linked.alliance.id
    listing = runner.invoke(cli, ["alliance", "list"], env=env)
    assert listing.exit_code == 0, listing.output
    # A table like `round list`: header, rule, one row per chat, cells aligned.
    header, rule, row = listing.stdout.splitlines()[:3]
    assert header.split("  ")[0] == "id" and set(rule) == {"-"}
    cells = [cell for cell in row.split("  ") if cell.strip()]
    assert [c.strip() for c in cells[:3]] == [str(alliance_id), "delft-west", "Alliantie Delft"]
    assert "weekly mon 09:00" in row and "\t" not in listing.output
    assert header.index("area") == row.index("delft-west")
    assert header.index("schedule") == row.index("weekly mon 09:00")
    refused = runner.invoke(
        cli, ["alliance", "schedule", str(alliance_id), "--day", "sun", "--time", "02:30"], env=env
    )
    assert refused.exit_code != 0 and "daylight saving" in refused.output
    dutch = runner.invoke(
        cli,
        ["alliance", "schedule", str(alliance_id), "--day", "maandag", "--time", "10:00"],
        env=env,
    )
    assert dutch.exit_code == 0, dutch.output
    assert "weekly mon 10:00" in dutch.output
    unknown = runner.invoke(cli, ["alliance", "schedule", str(alliance_id), "--day", "x"], env=env)
    assert unknown.exit_code != 0 and "Dutch or English" in unknown.output
    done = runner.invoke(
        cli,
        [
            "alliance",
            "schedule",
            str(alliance_id),
            "--every",
            "biweekly",
            "--day",
            "fri",
            "--time",
            "16:00",
            "--language",
            "en",
        ],
        env=env,
    )
    assert done.exit_code == 0, done.output
    with services.db.session() as session:
        row = session.get(Alliance, alliance_id)
        assert row is not None
        assert row.schedule == {"every": "biweekly", "day": "fri", "time": "16:00"}
        assert row.language == "en"
    kept = runner.invoke(cli, ["alliance", "unlink", "-4001"], env=env, input="n\n")
    assert kept.exit_code == 1 and "Unlink 'Alliantie Delft' (delft-west)?" in kept.output
    assert "Not unlinked." in kept.output
    gone = runner.invoke(cli, ["alliance", "unlink", "-4001"], env=env, input="y\n")
    assert gone.exit_code == 0 and "Unlinked" in gone.output
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Alliance)) == 0


def test_cli_digest_preview_writes_png_and_csv(services: Any, tmp_path: Path) -> None:
    env = {"BUURTSTEM_DATABASE_URL": services.settings.database_url}
    out = tmp_path / "out"
    # No release yet: the short message only, no chart or CSV.
    result = CliRunner().invoke(
        cli, ["digest", "preview", "delft-west", "--out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    assert "Nog te weinig antwoorden (minder dan 10)" in result.stdout
    assert "No chart and no CSV" in result.stdout and not out.exists()
    seed(
        services.db,
        area="delft-west",
        neighbourhood="delft-voorhof",
        n=11,
        at=services.clock.now() - timedelta(minutes=5),
    )
    seed(
        services.db,
        area="delft-west",
        neighbourhood="delft-buitenhof",
        n=2,
        at=services.clock.now() - timedelta(minutes=5),
        grade=1,
    )
    release(services, at=services.clock.now())
    result = CliRunner().invoke(
        cli, ["digest", "preview", "delft-west", "--out", str(out)], env=env
    )
    assert result.exit_code == 0, result.output
    assert "Delft West" in result.output
    # Piped (not a terminal): plain text, no Telegram HTML tags or entities.
    assert result.stdout.startswith("--- message 1 of ")
    for raw in ("<b>", "</b>", "<i>", "&amp;", "&lt;", "\x1b["):
        assert raw not in result.stdout
    assert result.stderr.startswith(f"Database: {services.settings.database_url}")
    assert list(out.glob("*.png")) and list(out.glob("*.csv"))
    csv_text = next(out.glob("*.csv")).read_bytes().decode("utf-8-sig")
    buitenhof = [line for line in csv_text.splitlines() if "delft-buitenhof" in line]
    assert buitenhof and all("min_n" in line or "secondary" in line for line in buitenhof)


async def test_help_and_start_in_a_group_say_what_the_bot_does_there(
    services: Any, make_app: Any, emulator: Any
) -> None:
    async with BotHarness(emulator, make_app(services)) as h:
        bram = h.user("Bram")
        group = h.group("Alliantie Delft")
        await group.add_bot(bram)
        for command in ("/help", "/start"):
            await group.send(bram, command)
            answer = group.last_message().visible_text
            assert "/koppel" in answer and "privégesprek" in answer, command
        await group.send(bram, f"/koppel {invite(services, 'delft-west')}")
        for command in ("/help", "/start@buurtstem_bot"):
            await group.send(bram, command)
            answer = group.last_message().visible_text
            assert "Delft West" in answer and "/digest" in answer and "maandag" in answer
            assert "alleen in een privégesprek" not in answer
