"""SIGKILL at random moments while residents answer, with repeated deliveries: nothing lost or
doubled, everyone finishes.

The real bot (`buurtstem run`, polling, DEBUG logging) runs as a subprocess against the HTTP
emulator; residents go through the whole default survey while the bot is killed with SIGKILL at
random moments and started again, Telegram delivers some of their updates twice, and the
emulated Bot API is ~30 ms away. The scenario is benchmarks/soak.py's, run briefly: a few kills.
At the end, what each resident was shown (the "→ answer" record of every question in their
chat) is compared with what is stored, the tallies with tallies rebuilt from the answers, and
the logs are searched for tracebacks, ids, names, usernames, typed texts and the token.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from benchmarks.soak import SoakReport, SoakSettings, soak

pytestmark = pytest.mark.slow


def settings(url: str, tmp_path: Path) -> SoakSettings:
    return SoakSettings(
        database_url=url,
        residents=4,
        kills=3,
        kill_after=(0.2, 1.2),
        redeliver=0.15,
        noise=0.05,
        latency=0.03,
        jitter=0.01,
        seed=random.randrange(10**6),
        log_dir=tmp_path,
    )


def check(report: SoakReport, seed: int) -> None:
    summary = f"seed {seed}: " + "; ".join(report.lines()) + " | " + "; ".join(report.problems)
    assert report.kills >= 1, summary
    assert report.residents == 4 and report.answers > 0, summary
    assert report.lost == 0, summary
    assert report.doubled == 0, summary
    assert report.unfinished == 0, summary
    assert report.crashes == 0, summary
    assert report.leaks == 0, summary


async def test_sigkills_while_answering_lose_and_double_nothing_sqlite(tmp_path: Path) -> None:
    given = settings(f"sqlite:///{tmp_path / 'kills.db'}", tmp_path)
    check(await soak(given), given.seed)


@pytest.mark.postgres
async def test_sigkills_while_answering_lose_and_double_nothing_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    given = settings(postgres_url, tmp_path)
    check(await soak(given), given.seed)
