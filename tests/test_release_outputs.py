"""One published series per area, end to end: digests of two groups and /results, through the
tick, the outbox and the emulated Bot API, on SQLite and PostgreSQL.

The attack of issue 13: link two groups to one area; 12 residents answer, group A asks /digest;
one more answers, group B (linked later) asks /digest; the difference of the two CSVs gave the
13th resident's answers. The same with /results against a newly linked group's digest. Now every
output shows the area's latest release, so the differences are all zero until at least
min_cell_size more have answered.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.clock import FakeClock
from digests.chart import chart_job, draw_job
from digests.chart_pool import ChartPool
from digests.table import parse_csv
from sandbox.harness import BotHarness, GroupHandle
from storage.models import AllianceResponse, AreaRelease, DigestSent, ReleaseChart, Round
from tests.test_alliance_data import seed
from tests.test_digest_delivery import deliver, linked_group
from tests.test_resident_flow import answer_default_survey, onboard
from usecases.queue_digests import run_digest_tick

AREA = "utrecht-overvecht"
# The first resident's answers; the 13th answers everything differently.
SAME = {"nuisance_litter": "vaak", "nuisance_dogs": "soms", "trend": "vooruit"}
ODD = {"nuisance_litter": "nooit", "nuisance_dogs": "vaak", "trend": "achteruit"}


def tick(services: Any, now: datetime, chart: bool = False) -> Any:
    return run_digest_tick(
        services.db,
        services.areas,
        now,
        min_n=services.settings.min_cell_size,
        tz=services.settings.tz,
        chart=chart,
        charts=ChartPool(0),
        references=services.references,
    )


def midnight_after(moment: datetime) -> datetime:
    """The first digest-job run after the next midnight UTC."""
    day = moment.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, 0, 0, 30, tzinfo=UTC)


def csv_of(emulator: Any, group: GroupHandle) -> dict[tuple[str, str, str, str], tuple[str, str]]:
    """The group's latest CSV: (scope, neighbourhood, question, measure) -> (n, value)."""
    document = [m for m in group.messages() if m.method == "sendDocument"][-1]
    rows = parse_csv(emulator.file_bytes(document.files[0]))
    return {
        (r["scope"], r["neighbourhood"], r["question"], r["measure"]): (r["n"], r["value"])
        for r in rows
    }


def current(cells: dict[tuple[str, str, str, str], tuple[str, str]]) -> dict[Any, Any]:
    return {k: v for k, v in cells.items() if k[0] == "current"}


def published(cells: dict[Any, tuple[str, str]]) -> dict[Any, tuple[str, str]]:
    return {k: v for k, v in cells.items() if v[0] != ""}


async def test_two_groups_of_one_area_get_the_same_release(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    db = services.db
    seed(db, area=AREA, neighbourhood="overvecht-zuid", n=12, at=clock.now(), grade=7, extra=SAME)
    clock.set(midnight_after(clock.now()))
    report = tick(services, clock.now())
    assert (AREA, report.releases.cut[0][1], 1) in report.releases.cut
    async with BotHarness(emulator, make_app(services)) as h:
        group_a = await linked_group(h, services, "Alliantie A", AREA)
        await group_a.send(h.user("Lid Alliantie A"), "/digest")
        await deliver(h, services, clock)
        first = csv_of(emulator, group_a)
        assert first[("current", "totaal", "respondents", "started")][0] == "12"

        # The 13th resident answers, very differently.
        clock.advance(timedelta(hours=10))
        seed(db, area=AREA, neighbourhood="overvecht-zuid", n=1, at=clock.now(), grade=2, extra=ODD)
        clock.set(midnight_after(clock.now()))
        assert tick(services, clock.now()).releases.cut == []  # 1 new: no new release

        group_b = await linked_group(h, services, "Alliantie B", AREA)
        await group_b.send(h.user("Lid Alliantie B"), "/digest")
        await deliver(h, services, clock)
        second = csv_of(emulator, group_b)

    # The difference of the two CSVs gives nothing away: every published figure is the same.
    a, b = published(current(first)), published(current(second))
    assert a and a == b
    assert len(a) > 40  # the grade, the problems, every option: all shown, all equal
    differing = [k for k in set(first) & set(second) if first[k] != second[k]]
    assert differing == []
    with db.session() as session:
        releases = set(session.scalars(select(DigestSent.release_id)).all())
    assert len(releases) == 1 and None not in releases


async def test_results_and_a_new_groups_digest_show_the_same_release(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    db = services.db
    seed(db, area=AREA, neighbourhood="overvecht-zuid", n=12, at=clock.now(), grade=7, extra=SAME)
    clock.set(midnight_after(clock.now()))
    tick(services, clock.now())
    async with BotHarness(emulator, make_app(services)) as h:
        # A resident answers (the 13th) and asks for the results.
        carla = h.user("Carla")
        await onboard(h, carla, postcode="3563")
        await answer_default_survey(carla)
        await carla.send("/results")
        results = carla.last_message().visible_text
        lines = results.splitlines()
        assert lines[2] == "Cijfers tot 3 november 2026, 01:00: 12 buren hebben geantwoord."
        assert "Leefbaarheid: gemiddeld 7,0 (n=12)" in results
        assert "Weleens onveilig in de buurt: 100% ja (n=12)" in results
        assert "Komt vaak voor: rommel op straat 100%" in results
        # Why there is nothing newer, and that Carla's answers count next time.
        assert "zodra er minstens 10 nieuwe antwoorden zijn, hooguit één keer per dag" in results
        assert "Uw antwoorden van 3 november 2026 tellen mee in de volgende cijfers." in results
        assert "De alliantie antwoordde" not in results

        # The alliance's response to the area's residents, once approved and sent.
        with db.session() as session:
            standing = session.scalars(select(Round).where(Round.standing.is_(True))).one()
            session.add(
                AllianceResponse(
                    alliance_id=None,
                    area_code=AREA,
                    round_id=standing.id,
                    text="We zetten er tien afvalbakken bij.",
                    translations={"en": "We are adding ten litter bins."},
                    status="approved",
                    created_at=clock.now(),
                    reviewed_at=clock.now(),
                )
            )
        await carla.send("/results")
        results = carla.last_message().visible_text
        assert "De alliantie antwoordde (3 november 2026):\nWe zetten er tien afvalbakken bij." in (
            results
        )

        # A group linked now gets the same release: the same 12, not 13.
        group = await linked_group(h, services, "Alliantie Overvecht", AREA)
        await group.send(h.user("Lid Alliantie Overvecht"), "/digest")
        await deliver(h, services, clock)
        cells = csv_of(emulator, group)
        assert cells[("current", "totaal", "respondents", "started")][0] == "12"
        assert cells[("current", "totaal", "grade_liveability", "mean")][1] == "7,0000"

        # Ten more answer; after midnight a new release, in /results and in the digest.
        clock.advance(timedelta(hours=5))
        seed(db, area=AREA, neighbourhood="overvecht-noord", n=10, at=clock.now(), grade=5)
        clock.set(midnight_after(clock.now()))
        tick(services, clock.now())
        await carla.send("/results")
        results = carla.last_message().visible_text
        assert results.splitlines()[2] == (
            "Cijfers tot 4 november 2026, 01:00: 23 buren hebben geantwoord."
        )
        assert "tellen mee in de volgende cijfers" not in results
        # A question fewer than 10 answered stays hidden, and says why.
        assert "Hoe vaak onveilig" not in results  # single questions are not shown here
        clock.advance(timedelta(minutes=11))
        await group.send(h.user("Lid Alliantie Overvecht"), "/digest")
        await deliver(h, services, clock)
        cells = csv_of(emulator, group)
        assert cells[("current", "totaal", "respondents", "started")][0] == "23"
        # Carla's own neighbourhood (she is its only resident) is never shown on its own.
        hoods = {
            k[1]: int(v[0])
            for k, v in cells.items()
            if k[0] == "current" and k[2:] == ("respondents", "started") and v[0]
        }
        assert hoods.pop("totaal") == 23 and all(n >= 10 for n in hoods.values())


async def test_results_before_any_release_say_why_and_when(
    services: Any, make_app: Any, emulator: Any, clock: FakeClock
) -> None:
    seed(services.db, area=AREA, neighbourhood=None, n=6, at=clock.now())
    clock.set(midnight_after(clock.now()))
    assert tick(services, clock.now()).releases.cut == []
    async with BotHarness(emulator, make_app(services)) as h:
        dana = h.user("Dana", language_code="en")
        await onboard(h, dana, postcode="3563")
        await dana.send("/results")
        text = dana.last_message().visible_text
        lines = text.splitlines()
        assert lines[0] == "Results Utrecht Overvecht"
        assert lines[1].startswith("Round: Doorlopende buurtpeiling, ongoing since 2 November 2026")
        assert lines[2].startswith(
            "No figures yet: there are still too few answers (fewer than 10)."
        )


async def test_releases_at_most_daily_and_the_last_one_when_a_round_closes(
    services: Any, clock: FakeClock
) -> None:
    db = services.db
    start = clock.now()
    with db.session() as session:
        standing = session.scalars(select(Round).where(Round.standing.is_(True))).one()
        published_round = Round(
            name="Najaarspeiling 2026",
            survey_version_id=standing.survey_version_id,
            area_codes=["delft-west"],
            opens_at=start,
            closes_at=start + timedelta(days=5),
            max_reminders=0,
            status="open",
            standing=False,
            opened_at=start,
            created_at=start,
        )
        session.add(published_round)
        session.flush()
        round_id = published_round.id
    with db.session() as session:
        round_ = session.get(Round, round_id)
    seed(db, area="delft-west", neighbourhood="delft-voorhof", n=15, at=start, round_=round_)
    clock.set(midnight_after(start))
    first = tick(services, clock.now()).releases
    assert ("delft-west", round_id, 1) in first.cut
    # Ten more the same morning: no second release that day, however often the job runs.
    seed(db, area="delft-west", neighbourhood="delft-voorhof", n=10, at=clock.now(), round_=round_)
    for minutes in (1, 60, 600):
        assert tick(services, clock.now() + timedelta(minutes=minutes)).releases.cut == []
    clock.set(midnight_after(clock.now()))
    assert ("delft-west", round_id, 2) in tick(services, clock.now()).releases.cut
    # Ten more, then the round closes at noon: its last release comes at once, not at midnight.
    seed(
        db, area="delft-west", neighbourhood="delft-buitenhof", n=10, at=clock.now(), round_=round_
    )
    closed_at = clock.now() + timedelta(hours=12)
    with db.session() as session:
        row = session.get(Round, round_id)
        assert row is not None
        row.status, row.closed_at = "closed", closed_at
    clock.set(closed_at + timedelta(minutes=1))
    report = tick(services, clock.now())
    assert ("delft-west", round_id, 3) in report.releases.cut
    with db.session() as session:
        last = session.scalars(
            select(AreaRelease).where(
                AreaRelease.area_code == "delft-west",
                AreaRelease.round_id == round_id,
                AreaRelease.seq == 3,
            )
        ).one()
        assert last.final and last.cut_at == closed_at and last.started == 35


async def test_a_digest_staff_can_act_on(
    make_services: Any,
    database_url: str,
    make_app: Any,
    emulator: Any,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "utrecht-overvecht-2023.yaml").write_text(
        'area: utrecht-overvecht\nyear: 2023\nsource: "Testbron 2023, tabel 4"\ncity: Utrecht\n'
        "figures:\n  VM.leefbaarheid_cijfer:\n    mean: {city: 7.1, country: 7.6}\n",
        encoding="utf-8",
    )
    services = make_services(database_url, references_dir=str(refs))
    db = services.db
    now = clock.now()
    seed(
        db,
        area=AREA,
        neighbourhood="overvecht-zuid",
        n=14,
        at=now,
        grade=8,
        extra={"nuisance_litter": "vaak", "nuisance_dogs": "soms"},
        text="Er ligt veel afval bij de containers, bel 0612345678",
    )
    seed(
        db,
        area=AREA,
        neighbourhood="overvecht-noord",
        n=12,
        at=now,
        grade=5,
        extra={"nuisance_litter": "soms", "nuisance_dogs": "vaak"},
        text="Meer speeltuinen voor de kinderen",
    )
    seed(db, area=AREA, neighbourhood="overvecht-vechtzoom", n=3, at=now, grade=2)
    # With Vechtzoom's 3, enough to hide together: Noord need not be hidden to protect it.
    seed(db, area=AREA, neighbourhood=None, n=8, at=now, grade=7)
    seed(db, area="delft-west", neighbourhood="delft-voorhof", n=4, at=now)
    async with BotHarness(emulator, make_app(services)) as h:
        overvecht = await linked_group(h, services, "Alliantie Overvecht", AREA)
        delft = await linked_group(h, services, "Alliantie Delft", "delft-west")
        clock.set(datetime(2026, 11, 9, 8, 0, 30, tzinfo=UTC))  # Monday 09:00 Amsterdam
        report = tick(services, clock.now(), chart=True)
        assert len(report.queued) == 2
        await deliver(h, services, clock)
        got = overvecht.messages()[1:]
        text = "\n".join(m.visible_text for m in got if m.text is not None)
        lines = text.splitlines()
        assert lines[2] == "Cijfers tot 09-11-2026 01:00"
        summary = lines[lines.index("In het kort") + 1 : lines.index("In het kort") + 4]
        assert summary == [
            "• Nog geen eerdere cijfers om mee te vergelijken.",
            "• Laagste rapportcijfer: Veiligheid in Overvecht-Noord, 4,0 (n=12, indicatief).",
            "• Meest genoemd probleem: rommel op straat, 54% zegt dat het vaak voorkomt "
            "(n=26, indicatief).",
        ]
        assert "Ter vergelijking (2023): hier 6,3 · Utrecht 7,1 · Nederland 7,6" in text
        assert "Vergelijkingscijfers (2023): Testbron 2023, tabel 4" in text
        # Problems per neighbourhood where shown; Vechtzoom (3) hidden, with the reason.
        assert "   Problemen (vaak): rommel op straat 100% · hondenpoep 0%" in lines
        assert "   Problemen (vaak): hondenpoep 100% · rommel op straat 0%" in lines
        assert "Vechtzoom: te weinig antwoorden" in lines
        assert "Buurt onbekend: te weinig antwoorden" in lines
        assert text.count("Problemen (vaak)") == 2
        # Comments by neighbourhood and theme, scrubbed.
        assert "Overvecht-Zuid: afval en rommel 14" in lines
        assert "Overvecht-Noord: groen en spelen 12 · jongeren en activiteiten 12" in lines
        assert "0612345678" not in text and "[telefoon]" in text
        assert [m.method for m in got][-2:] == ["sendPhoto", "sendDocument"]
        # Delft West (4 residents): one short message, nothing else.
        short = delft.messages()[1:]
        assert [m.method for m in short] == ["sendMessage"]
        assert short[0].visible_text.splitlines()[-1] == (
            "Nog te weinig antwoorden (minder dan 10) om cijfers te tonen."
        )
        # The chart was drawn once, with the release, for every digest that shows it.
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(ReleaseChart)) == 1

        # A week without new figures: the scheduled digest says so in one message.
        clock.set(datetime(2026, 11, 16, 8, 0, 30, tzinfo=UTC))
        before = len(overvecht.messages())
        assert len(tick(services, clock.now(), chart=True).queued) == 2
        await deliver(h, services, clock)
        news = overvecht.messages()[before:]
        assert [m.method for m in news] == ["sendMessage"]
        assert "Geen nieuwe cijfers sinds de vorige digest" in news[0].visible_text
        assert "cijfers van 09-11-2026 01:00" in news[0].visible_text


def test_charts_drawn_by_worker_processes_are_the_charts_drawn_here() -> None:
    from tests.test_digest_release import area, cut, table_of

    tables = [table_of(cut(area({"noord": 30 + i, "zuid": 20})), None) for i in range(3)]
    jobs = [job for t in tables if (job := chart_job(t)) is not None]
    pool = ChartPool(2)
    try:
        assert pool.draw(jobs) == [draw_job(job) for job in jobs]
    finally:
        pool.close()
