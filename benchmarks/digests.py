"""Benchmark: all 20 areas' digests on a database of 1,000,000 answers, against full scans.

Run: .venv/bin/python benchmarks/digests.py [--answers 1000000] [--database-url URL] [--keep]
SQLite (a temporary file) by default; PostgreSQL with --database-url (an empty database).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, func, select, text

import usecases.queue_digests as tick
from bot.settings import Settings
from digests.schedule import DEFAULT_SCHEDULE
from storage import aggregates
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    Alliance,
    Answer,
    AnswerTally,
    DigestSent,
    OutboxMessage,
    ResponseTally,
    Round,
)
from storage.rounds import ensure_standing_round
from storage.survey_versions import store_survey
from storage.tallies import rebuild_tallies
from surveys.areas import load_areas
from surveys.engine import Engine
from surveys.loader import load_survey

SURVEY = Path(__file__).resolve().parents[1] / "surveys" / "buurtpeiling.yaml"
NOW = datetime(2026, 11, 16, 8, 0, 30, tzinfo=UTC)  # just after Monday 09:00 Amsterdam
BATCH = 50_000
SETTINGS = Settings()  # the minimum cell size and time zone the bot would use
WORDS = [
    "meer",
    "groen",
    "minder",
    "rommel",
    "speeltuin",
    "verlichting",
    "politie",
    "buren",
    "jongeren",
    "parkeren",
]


def peak_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stamp(moment: datetime, postgres: bool) -> str:
    """A timestamp as SQLAlchemy stores it (SQLite: naive UTC text)."""
    if postgres:
        return moment.isoformat()
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


class Generator:
    """Realistic answers: area-specific grade levels, skip logic, nuisance, optional modules."""

    def __init__(self, rng: random.Random, survey: Any, areas: Any) -> None:
        self.rng = rng
        self.survey = survey
        self.engine = Engine(survey)
        self.areas = list(areas.all())
        # Bigger areas answer more; each area and neighbourhood has its own level.
        self.weights = [rng.uniform(0.5, 2.0) for _ in self.areas]
        self.level = {a.code: rng.uniform(5.0, 7.5) for a in self.areas}
        # Each nuisance problem is common or rare: weights of vaak / soms / (bijna) nooit.
        self.often = {
            q.id: [rng.uniform(0.1, 1.0), rng.uniform(0.5, 1.5), rng.uniform(0.5, 2.0)]
            for q in survey.questions
            if q.id.startswith("nuisance_")
        }
        self.modules = [
            (o.id, rng.uniform(0.1, 0.3)) for o in survey.question("more_topics").options
        ]

    def grade(self, level: float) -> int:
        return max(1, min(10, round(self.rng.gauss(level, 1.6))))

    def choice(self, qid: str) -> str:
        return self.rng.choice([o.id for o in self.survey.question(qid).options])

    def answers(self) -> tuple[str, str | None, list[tuple[str, Any, str | None]]]:
        rng = self.rng
        area = rng.choices(self.areas, self.weights)[0]
        hood = rng.choice(area.neighbourhoods).code if rng.random() > 0.05 else None
        level = self.level[area.code]
        given: dict[str, Any] = {}
        out: list[tuple[str, Any, str | None]] = []
        for q in self.survey.questions:
            if not self.engine.is_shown(q, given):
                continue
            language = None
            if q.id == "grade_liveability":
                value: Any = self.grade(level)
            elif q.id == "grade_safety":
                value = self.grade(level - 0.3)
            elif q.id == "unsafe_ever":
                value = rng.choices(["ja", "nee", "weet_niet"], [0.4, 0.55, 0.05])[0]
            elif q.id in self.often:
                value = rng.choices(["vaak", "soms", "nooit"], self.often[q.id])[0]
            elif q.id == "more_topics":
                value = [
                    oid for oid, share in self.modules if oid != "geen" and rng.random() < share
                ]
                value = value or ["geen"]
            elif q.type == "text":
                if rng.random() >= 0.25:
                    continue
                value = " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))
                language = rng.choices(["nl", "en", "tr", "ar", "pl"], [0.7, 0.1, 0.1, 0.05, 0.05])[
                    0
                ]
            elif q.type == "grade":
                value = self.grade(level)
            elif q.optional and rng.random() < 0.1:
                continue  # skipped
            else:
                value = self.choice(q.id)
            given[q.id] = value
            out.append((q.id, value, language))
        return area.code, hood, out


def generate(
    gen: Generator, rounds: list[tuple[int, int, datetime, datetime]], total: int
) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Batches of (responses, answers) rows; rounds: (id, version id, start, end) with shares."""
    response_id = 0
    answer_id = 0
    made = 0
    responses: list[tuple[Any, ...]] = []
    answers: list[tuple[Any, ...]] = []
    rng = gen.rng
    while made < total:
        round_id, version_id, start, end = rounds[0] if rng.random() < 0.3 else rounds[1]
        response_id += 1
        area, hood, rows = gen.answers()
        begun = start + (end - start) * rng.random()
        done = rng.random() < 0.9
        if not done:
            rows = rows[: rng.randint(1, len(rows) - 1)]
        responses.append(
            (
                response_id,
                round_id,
                version_id,
                f"b{response_id}",
                area,
                hood,
                "nl",
                "completed" if done else "started",
                begun,
                done,
            )
        )
        for qid, value, language in rows:
            answer_id += 1
            answers.append((answer_id, response_id, qid, json.dumps(value), language, begun))
        made += len(rows)
        if len(answers) >= BATCH:
            yield responses, answers
            responses, answers = [], []
    if answers:
        yield responses, answers


def insert(db: Database, batches: Any) -> tuple[int, int]:
    """Bulk insert: executemany on SQLite, COPY on PostgreSQL."""
    postgres = db.is_postgres
    n_responses = n_answers = 0
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        for responses, answers in batches:
            resp_rows = [
                (
                    i,
                    r,
                    v,
                    key,
                    area,
                    hood,
                    lang,
                    status,
                    "{}",
                    0,
                    stamp(at, postgres),
                    stamp(at + timedelta(minutes=3), postgres) if done else None,
                    stamp(at, postgres),
                )
                for i, r, v, key, area, hood, lang, status, at, done in responses
            ]
            ans_rows = [
                (i, rid, qid, value, language, stamp(at, postgres))
                for i, rid, qid, value, language, at in answers
            ]
            resp_cols = (
                "id, round_id, survey_version_id, response_key, area_code, "
                "neighbourhood_code, language, status, state, reminders_sent, "
                "started_at, completed_at, updated_at"
            )
            ans_cols = "id, response_id, question_id, value, text_language, answered_at"
            if postgres:
                with cur.copy(f"COPY responses ({resp_cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for response_row in resp_rows:
                        copy.write_row(response_row)
                with cur.copy(f"COPY answers ({ans_cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for answer_row in ans_rows:
                        copy.write_row(answer_row)
            else:
                cur.execute("BEGIN")
                cur.executemany(
                    f"INSERT INTO responses ({resp_cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    resp_rows,
                )
                cur.executemany(f"INSERT INTO answers ({ans_cols}) VALUES (?,?,?,?,?,?)", ans_rows)
                cur.execute("COMMIT")
            if postgres:
                raw.commit()
            n_responses += len(resp_rows)
            n_answers += len(ans_rows)
        if postgres:
            cur.execute("ANALYZE")
            raw.commit()
        else:
            cur.execute("ANALYZE")
    finally:
        raw.close()
    return n_responses, n_answers


def timed(work: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def build(db: Database, areas: Any, args: argparse.Namespace) -> None:
    """Survey, rounds, alliances, 1M generated answers (bulk SQL), then the tallies."""
    survey = load_survey(SURVEY)
    tz_now = NOW
    with db.session() as session:
        source = SURVEY.read_text(encoding="utf-8")
        version = store_survey(session, survey, source, tz_now - timedelta(days=200))
        earlier = Round(
            name="Voorjaarspeiling 2026",
            survey_version_id=version.id,
            area_codes=None,
            opens_at=tz_now - timedelta(days=200),
            closes_at=tz_now - timedelta(days=120),
            max_reminders=0,
            status="closed",
            standing=False,
            opened_at=tz_now - timedelta(days=200),
            closed_at=tz_now - timedelta(days=120),
            created_at=tz_now - timedelta(days=200),
        )
        session.add(earlier)
        standing = ensure_standing_round(session, version.id, tz_now - timedelta(days=70))
        session.flush()
        rounds = [
            (earlier.id, version.id, earlier.opens_at, earlier.closes_at),
            (standing.id, version.id, standing.opens_at, tz_now - timedelta(minutes=5)),
        ]
        # One alliance per area, linked long ago (their previous digest comes from a real tick).
        for i, area in enumerate(areas.all()):
            session.add(
                Alliance(
                    area_code=area.code,
                    chat_id=-5_000_000 - i,
                    title=area.name,
                    language="nl",
                    schedule={},
                    linked_at=tz_now - timedelta(days=60),
                )
            )
    gen = Generator(random.Random(args.seed), survey, areas)
    t_insert, (n_resp, n_ans) = timed(lambda: insert(db, generate(gen, rounds, args.answers)))
    backend = "PostgreSQL" if db.is_postgres else "SQLite"
    print(
        f"{backend}: inserted {n_resp:,} responses and {n_ans:,} answers in {t_insert:.1f} s "
        f"({n_ans / t_insert:,.0f} answers/s); peak RSS {peak_mb():.0f} MB"
    )

    def tally() -> tuple[int, int]:
        # Bulk SQL bypasses the ORM hook: build the tallies from the stored rows.
        with db.session() as session:
            rebuild_tallies(session)
        with db.session() as session:
            answers = session.scalar(select(func.count()).select_from(AnswerTally)) or 0
            responses = session.scalar(select(func.count()).select_from(ResponseTally)) or 0
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
        return answers, responses

    t_tally, (n_tally, n_rtally) = timed(tally)
    print(
        f"rebuild_tallies: {n_tally:,} answer tally rows, {n_rtally:,} response tally rows "
        f"in {t_tally:.1f} s"
    )


def run_digest(db: Database, areas: Any, now: datetime, *, chart: bool) -> tick.TickReport:
    """The digest tick as the bot runs it, with the settings' minimum cell size and time zone."""
    return tick.run_digest_tick(
        db, areas, now, min_n=SETTINGS.min_cell_size, tz=SETTINGS.tz, chart=chart
    )


def split(db: Database, areas: Any, now: datetime) -> tuple[dict[str, float], float]:
    """Run one tick with its steps clocked: (seconds per step, seconds in all)."""
    spent: dict[str, float] = {}
    steps = [
        (tick, "due_digests", "due"),
        (aggregates, "_tallied", "tallies"),
        (aggregates, "_remainder", "day's remainder"),
        (aggregates, "comments_by_area", "comments"),
        (tick, "build_digest", "build (publish, text, CSV)"),
        (tick, "queue_digests", "record and queue"),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in steps]

    def clocked(work: Any, label: str) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return work(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start

        return run

    for module, name, label in steps:
        setattr(module, name, clocked(getattr(module, name), label))
    try:
        start = time.perf_counter()
        run_digest(db, areas, now, chart=False)
        total = time.perf_counter() - start
    finally:
        for module, name, work in originals:
            setattr(module, name, work)
    spent["other (assembly, lookups, transactions)"] = total - sum(spent.values())
    return spent, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5, help="Runs of each timing (best kept).")
    parser.add_argument("--sqlite-file", default=None, help="Keep the SQLite database here.")
    parser.add_argument("--profile", action="store_true", help="cProfile one text-only tick.")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the answers and tallies already in the database (--sqlite-file or a "
        "PostgreSQL database from an earlier run) instead of generating them.",
    )
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{args.sqlite_file or tmp.name + '/bench.db'}"
    upgrade(url)
    db = Database(url)
    areas = load_areas(None)
    tz_now = NOW
    backend = "PostgreSQL" if db.is_postgres else "SQLite"
    with db.session() as session:
        stored = session.scalar(select(func.count()).select_from(Answer)) or 0
    if args.reuse and stored:
        print(f"{backend}: reusing {stored:,} stored answers (--reuse)")
    else:
        if stored:
            sys.exit("the database already holds answers: use --reuse, or an empty database")
        build(db, areas, args)
    with db.session() as session:
        standing = session.scalars(select(Round).where(Round.standing.is_(True))).one()
        standing_id = standing.id
    # The previous digests: a real tick a week ago (its DigestSent rows are what the timed
    # tick builds on, as in production).
    previous_run = DEFAULT_SCHEDULE.previous_run(tz_now - timedelta(days=1), SETTINGS.tz)
    with db.session() as session:
        session.execute(delete(OutboxMessage))
        session.execute(delete(DigestSent))
    week_ago = run_digest(db, areas, previous_run + timedelta(seconds=30), chart=False)
    with db.session() as session:
        session.execute(delete(OutboxMessage))
        rows = session.scalars(select(DigestSent)).all()
        assert all(r.round_id == standing_id for r in rows), "week-ago digests of the wrong round"
    print(
        f"previous digests: a real tick at {previous_run:%Y-%m-%d %H:%M} UTC queued "
        f"{len(week_ago.queued)}"
    )

    length = "length(CAST(value AS TEXT))" if db.is_postgres else "length(value)"

    def scan(sql: str) -> float:
        best = float("inf")
        for _ in range(args.repeat):
            with db.engine.connect() as conn:
                start = time.perf_counter()
                conn.execute(text(sql)).scalar()
                best = min(best, time.perf_counter() - start)
        return best

    t_count = scan("SELECT count(*) FROM answers")
    t_read = scan(f"SELECT sum({length}) FROM answers")
    print(f"full scan  SELECT count(*) FROM answers:            {t_count:7.3f} s")
    print(f"full scan  SELECT sum(length(value)) FROM answers:  {t_read:7.3f} s")

    def digests(chart: bool) -> tuple[float, int]:
        best, queued = float("inf"), 0
        for _ in range(args.repeat):
            with db.session() as session:
                session.execute(delete(OutboxMessage))
                session.execute(delete(DigestSent).where(DigestSent.period_end > previous_run))
            start = time.perf_counter()
            report = run_digest(db, areas, tz_now, chart=chart)
            best = min(best, time.perf_counter() - start)
            queued = len(report.queued)
        return best, queued

    if args.profile:
        import cProfile
        import pstats

        with db.session() as session:
            session.execute(delete(OutboxMessage))
            session.execute(delete(DigestSent).where(DigestSent.period_end > previous_run))
        profiler = cProfile.Profile()
        profiler.runcall(run_digest, db, areas, tz_now, chart=False)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    t_text, n_text = digests(chart=False)
    # Where the time goes: more text-only ticks (not timed above) with their steps clocked;
    # the fastest one is shown.
    best_split: tuple[dict[str, float], float] | None = None
    for _ in range(args.repeat):
        with db.session() as session:
            session.execute(delete(OutboxMessage))
            session.execute(delete(DigestSent).where(DigestSent.period_end > previous_run))
        found = split(db, areas, tz_now)
        if best_split is None or found[1] < best_split[1]:
            best_split = found
    assert best_split is not None
    steps, t_split = best_split
    print(
        f"where a text-only tick's time goes (fastest of {args.repeat} clocked ticks, "
        f"{t_split:.3f} s): "
        + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in steps.items())
    )
    rss_text = peak_mb()
    t_chart, n_chart = digests(chart=True)
    print(
        f"digests of {n_text} areas, no chart (tick: queries, build, queue):  {t_text:7.3f} s"
        f"  = {t_text / t_count:5.1f}x count(*), {t_text / t_read:5.1f}x value scan"
    )
    print(
        f"digests of {n_chart} areas, with chart:                            {t_chart:7.3f} s"
        f"  = {t_chart / t_count:5.1f}x count(*), {t_chart / t_read:5.1f}x value scan"
    )
    print(
        f"peak RSS after text digests {rss_text:.0f} MB, after chart digests {peak_mb():.0f} MB "
        "(includes the data generation)"
    )
    db.dispose()
    tmp.cleanup()


if __name__ == "__main__":
    main()
