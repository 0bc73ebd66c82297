"""Benchmark: the release cut and the digest tick for all 20 areas, on 1,000,000 answers or more.

Run: .venv/bin/python benchmarks/digests.py [--answers 1000000] [--database-url URL]
     [--sqlite-file PATH] [--reuse] [--workers 2]
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
import usecases.releases as releases
from bot.settings import Settings
from digests.chart_pool import ChartPool
from digests.schedule import DEFAULT_SCHEDULE
from storage import aggregates
from storage import releases as release_store
from storage.db import Database
from storage.migrate import upgrade
from storage.models import (
    Alliance,
    Answer,
    AnswerTally,
    AreaRelease,
    DigestSent,
    OutboxMessage,
    ReleaseChart,
    ReleaseSeries,
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


def run_digest(
    db: Database, areas: Any, now: datetime, *, chart: bool, charts: ChartPool | None = None
) -> tick.TickReport:
    """The digest tick as the bot runs it, with the settings' minimum cell size and time zone."""
    return tick.run_digest_tick(
        db,
        areas,
        now,
        min_n=SETTINGS.min_cell_size,
        tz=SETTINGS.tz,
        chart=chart,
        charts=charts if chart else None,
    )


def run_cut(db: Database, areas: Any, now: datetime, charts: ChartPool | None) -> Any:
    """The releases' cut after midnight, as the digest job does it."""
    return releases.cut_releases(db, areas, now, min_n=SETTINGS.min_cell_size, charts=charts)


def clocked(steps: list[tuple[Any, str, str]], work: Any) -> tuple[dict[str, float], float]:
    """Run `work` with these functions clocked: (seconds per step, seconds in all)."""
    spent: dict[str, float] = {}
    originals = [(module, name, getattr(module, name)) for module, name, _ in steps]

    def wrap(function: Any, label: str) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start

        return run

    for module, name, label in steps:
        setattr(module, name, wrap(getattr(module, name), label))
    try:
        start = time.perf_counter()
        work()
        total = time.perf_counter() - start
    finally:
        for module, name, function in originals:
            setattr(module, name, function)
    spent["other (assembly, lookups, transactions)"] = total - sum(spent.values())
    return spent, total


TICK_STEPS = [
    (tick, "cut_releases", "release check"),
    (tick, "due_digests", "due"),
    (tick, "_read", "read releases, quotes, charts"),
    (tick, "_render", "render (publish, text, CSV)"),
    (tick, "queue_digests", "record and queue"),
]
CUT_STEPS = [
    (aggregates, "_tallied", "tallies"),
    (aggregates, "_remainder", "day's remainder"),
    (release_store, "new_comments", "the day's comments"),
    (releases, "cut_release", "cut (suppression)"),
    (ChartPool, "draw", "charts"),
    (release_store, "add_release", "store"),
]


class Series:
    """The releases and series rows as they stood after yesterday's cut, to cut today afresh."""

    def __init__(self, db: Database, after: datetime) -> None:
        self.db = db
        self.after = after
        with db.session() as session:
            self.rows = [
                (s.area_code, s.round_id, s.checked_at, s.comments, s.closed)
                for s in session.scalars(select(ReleaseSeries))
            ]

    def reset(self) -> None:
        with self.db.session() as session:
            session.execute(delete(AreaRelease).where(AreaRelease.cut_at > self.after))
            session.execute(delete(ReleaseSeries))
            for area, round_id, checked_at, comments, closed in self.rows:
                session.add(
                    ReleaseSeries(
                        area_code=area,
                        round_id=round_id,
                        checked_at=checked_at,
                        comments=comments,
                        closed=closed,
                    )
                )


def worker_peak_mb(pool: ChartPool) -> float:
    """The largest peak resident memory of the pool's live workers (Linux /proc), in MB."""
    executor = pool._executor  # a benchmark may look inside
    peak = 0.0
    for pid in list(getattr(executor, "_processes", None) or {}):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) / 1024)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5, help="Runs of each timing (best kept).")
    parser.add_argument("--workers", type=int, default=2, help="Chart worker processes.")
    parser.add_argument("--sqlite-file", default=None, help="Keep the SQLite database here.")
    parser.add_argument("--profile", action="store_true", help="cProfile one text-only tick.")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Keep the answers and tallies already in the database (--sqlite-file or a "
        "PostgreSQL database from an earlier run) instead of generating them; run the timings "
        "in a fresh process this way to see the ticks' own peak memory.",
    )
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{args.sqlite_file or tmp.name + '/bench.db'}"
    upgrade(url)
    db = Database(url)
    areas = load_areas(None)
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
    pool = ChartPool(args.workers)
    # A week ago: the releases cut after midnight and the digests of Monday 09:00, by a real
    # tick (the series' first check reads the round's comments so far, once).
    previous_run = DEFAULT_SCHEDULE.previous_run(NOW - timedelta(days=1), SETTINGS.tz)
    with db.session() as session:
        session.execute(delete(OutboxMessage))
        session.execute(delete(DigestSent))
        session.execute(delete(AreaRelease))
        session.execute(delete(ReleaseSeries))
    t_first, week_ago = timed(
        lambda: run_digest(db, areas, previous_run + timedelta(seconds=30), chart=False)
    )
    with db.session() as session:
        rows = session.scalars(select(DigestSent)).all()
        assert all(r.round_id == standing_id for r in rows), "week-ago digests of the wrong round"
    assert week_ago.releases is not None
    print(
        f"a week ago: the first check of every series cut {len(week_ago.releases.cut)} "
        f"releases and queued {len(week_ago.queued)} digests in {t_first:.2f} s (once)"
    )
    # Every night since, the job's check after midnight (one day of comments each).
    days = 0
    start_setup = time.perf_counter()
    day = previous_run.replace(hour=0, minute=0, second=30) + timedelta(days=1)
    while day < NOW.replace(hour=0, minute=0, second=0):
        run_cut(db, areas, day, pool)  # with the charts, as the job draws them
        days += 1
        day += timedelta(days=1)
    print(
        f"the {days} nightly checks since then (with their charts): "
        f"{time.perf_counter() - start_setup:.2f} s"
    )
    series = Series(db, day - timedelta(days=1, seconds=30))

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

    cut_at = NOW.replace(hour=0, minute=0, second=30)  # the job's first run after midnight

    def cuts(charts: ChartPool | None) -> tuple[float, int, int]:
        best, made, drawn = float("inf"), 0, 0
        for _ in range(args.repeat):
            series.reset()
            start = time.perf_counter()
            report = run_cut(db, areas, cut_at, charts)
            best = min(best, time.perf_counter() - start)
            made, drawn = len(report.cut), report.charts
        return best, made, drawn

    def digest_once(chart: bool, keep_charts: bool = True) -> tuple[float, int]:
        with db.session() as session:
            session.execute(delete(OutboxMessage))
            session.execute(delete(DigestSent).where(DigestSent.period_end > previous_run))
            if not keep_charts:
                session.execute(delete(ReleaseChart))
        start = time.perf_counter()
        report = run_digest(db, areas, NOW, chart=chart, charts=pool)
        return time.perf_counter() - start, len(report.queued)

    def digests() -> tuple[float, float, int]:
        """Text only and with the charts kept, interleaved (the machine's load shifts)."""
        best_text = best_chart = float("inf")
        queued = 0
        for _ in range(args.repeat):
            t_one, queued = digest_once(chart=False)
            best_text = min(best_text, t_one)
            t_one, _ = digest_once(chart=True)
            best_chart = min(best_chart, t_one)
        return best_text, best_chart, queued

    # The cut after midnight: text only, then with the charts drawn in the pool (kept).
    t_cut, n_cut, _ = cuts(None)
    t_cut_charts, _, n_charts = cuts(pool)
    cut_split, t_cut_split = clocked(
        CUT_STEPS, lambda: (series.reset(), run_cut(db, areas, cut_at, None))
    )
    series.reset()
    run_cut(db, areas, cut_at, pool)  # the releases (with charts) the digests below show
    if args.profile:
        import cProfile
        import pstats

        series.reset()
        profiler = cProfile.Profile()
        profiler.runcall(run_cut, db, areas, cut_at, None)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        series.reset()
        run_cut(db, areas, cut_at, pool)
        with db.session() as session:
            session.execute(delete(OutboxMessage))
            session.execute(delete(DigestSent).where(DigestSent.period_end > previous_run))
        profiler = cProfile.Profile()
        profiler.runcall(run_digest, db, areas, NOW, chart=False)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    t_text, t_chart, n_text = digests()
    best_split: tuple[dict[str, float], float] | None = None
    for _ in range(args.repeat):
        with db.session() as session:
            session.execute(delete(OutboxMessage))
            session.execute(delete(DigestSent).where(DigestSent.period_end > previous_run))
        found = clocked(TICK_STEPS, lambda: run_digest(db, areas, NOW, chart=False))
        if best_split is None or found[1] < best_split[1]:
            best_split = found
    assert best_split is not None
    rss_text = peak_mb()
    t_drawn = min(digest_once(chart=True, keep_charts=False)[0] for _ in range(args.repeat))
    workers_mb = worker_peak_mb(pool)
    with db.session() as session:
        kept = session.scalar(select(func.count()).select_from(ReleaseChart))
    print(f"release cut after midnight ({n_cut} releases), no charts:           {t_cut:7.3f} s")
    print(
        f"release cut after midnight, {n_charts} charts in {args.workers} workers:           "
        f"{t_cut_charts:7.3f} s"
    )
    print(
        f"where a cut's time goes ({t_cut_split:.3f} s): "
        + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in cut_split.items())
    )
    steps, t_split = best_split
    print(
        f"where a text-only digest tick's time goes (fastest of {args.repeat} clocked ticks, "
        f"{t_split:.3f} s): "
        + ", ".join(f"{name} {seconds:.3f} s" for name, seconds in steps.items())
    )
    print(
        f"digest tick, {n_text} areas, text only:                          {t_text:7.3f} s"
        f"  = {t_text / t_count:5.1f}x count(*), {t_text / t_read:5.1f}x value scan"
    )
    print(
        f"digest tick, {n_text} areas, with the charts kept with the release: {t_chart:7.3f} s"
        f"  = {t_chart / t_text:4.2f}x text only"
    )
    print(
        f"digest tick, {n_text} areas, charts drawn in the tick ({args.workers} workers): "
        f"{t_drawn:7.3f} s  = {t_drawn / t_text:4.2f}x text only ({kept} charts kept)"
    )
    pool.close()
    print(
        f"peak RSS of this process after text ticks {rss_text:.0f} MB, after all {peak_mb():.0f} "
        f"MB; largest chart worker {workers_mb:.0f} MB"
        + ("" if args.reuse else " (this run includes the data generation)")
    )
    db.dispose()
    tmp.cleanup()


if __name__ == "__main__":
    main()
