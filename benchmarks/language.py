"""Benchmark: plain langdetect against buurtstem's detector on tests/data/language_eval.tsv.

Run: .venv/bin/python benchmarks/language.py [--split all|dev|test] [--errors]
     .venv/bin/python benchmarks/language.py --long    # huge and odd messages: time per message
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langdetect import DetectorFactory, LangDetectException
from langdetect import detect as langdetect_detect

from locales.detection import LanguageDetector, decide_language

EVAL_FILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "language_eval.tsv"
OFFERED = ("nl", "en", "tr", "ar", "pl")
NO_LANGUAGE = ("unknown", "other")  # rows where the right answer is "unknown"
BUCKETS = ("1", "2", "3-5", "6-12")
# Telegram codes as clients send them, region and case included.
TELEGRAM_CODES = {"nl": "nl-NL", "en": "en-GB", "tr": "TR", "ar": "ar", "pl": "pl"}


@dataclass(frozen=True)
class Row:
    """One labelled message of the evaluation set."""

    language: str
    text: str
    split: str

    @property
    def bucket(self) -> str:
        """Length bucket by whitespace-separated words."""
        n = len(self.text.split())
        return "1" if n == 1 else "2" if n == 2 else "3-5" if n <= 5 else "6-12"


@dataclass
class Tally:
    """Counts and time for one cell of a table."""

    n: int = 0
    correct: int = 0
    unknown: int = 0
    seconds: float = 0.0

    def add(self, correct: bool, unknown: bool, seconds: float) -> None:
        """Count one message."""
        self.n += 1
        self.correct += correct
        self.unknown += unknown
        self.seconds += seconds

    def line(self, label: str) -> str:
        """One table line: accuracy, abstention, accuracy among decided, mean time."""
        if not self.n:
            return f"{label:<10} {0:>4}"
        decided = self.n - self.unknown
        among = f"{100 * self.correct / decided:6.1f}%" if decided else "     -"
        return (
            f"{label:<10} {self.n:>4} {100 * self.correct / self.n:6.1f}% "
            f"{100 * self.unknown / self.n:6.1f}% {among}  {1000 * self.seconds / self.n:7.3f}"
        )


def load(split: str) -> list[Row]:
    """The evaluation rows of one split (or all)."""
    with EVAL_FILE.open(encoding="utf-8") as handle:
        rows = [
            Row(r["language"], r["text"], r["split"])
            for r in csv.DictReader(handle, delimiter="\t")
        ]
    return [row for row in rows if split == "all" or row.split == split]


def plain_langdetect(text: str) -> str | None:
    """langdetect as commonly used: seeded, all 55 languages, exceptions mean no answer."""
    try:
        return str(langdetect_detect(text))
    except LangDetectException:
        return None


def run(name: str, guess: Callable[[str], str | None], rows: list[Row], errors: bool) -> None:
    """Print the per-language and per-length table for one detector."""
    by_lang: dict[str, Tally] = defaultdict(Tally)
    by_bucket: dict[str, Tally] = defaultdict(Tally)
    total, long_ = Tally(), Tally()
    abstain = Tally()
    wrong: list[str] = []
    for row in rows:
        start = time.perf_counter()
        answer = guess(row.text)
        seconds = time.perf_counter() - start
        if row.language in NO_LANGUAGE:
            abstain.add(answer is None, answer is None, seconds)
            if answer is not None and errors:
                wrong.append(f"  {row.language}->{answer}: {row.text}")
            continue
        correct = answer == row.language
        for tally in (by_lang[row.language], by_bucket[row.bucket], total):
            tally.add(correct, answer is None, seconds)
        if row.bucket in ("3-5", "6-12"):
            long_.add(correct, answer is None, seconds)
        if not correct and errors:
            wrong.append(f"  {row.language}->{answer}: {row.text}")
    print(f"\n## {name}")
    print(f"{'':<10} {'n':>4} {'acc':>7} {'unknown':>7} {'decided':>7}  {'ms/msg':>7}")
    for lang in OFFERED:
        print(by_lang[lang].line(lang))
    for bucket in BUCKETS:
        print(by_bucket[bucket].line(f"{bucket} words"))
    print(long_.line("3+ words"))
    print(total.line("overall"))
    print(
        f"no-language rows (neutral, other languages): {abstain.correct}/{abstain.n} "
        "answered unknown"
    )
    if wrong:
        print("errors:")
        print("\n".join(wrong))


def combined(detector: LanguageDetector, rows: list[Row]) -> None:
    """The decision with Telegram's language_code given for every second message."""
    settled = settled_wrong = other = other_right = 0
    sources: dict[str, int] = defaultdict(int)
    labelled = [row for row in rows if row.language in OFFERED]
    for i, row in enumerate(labelled):
        # Every second message has a Telegram code for its language; every fifth of the rest
        # a code for a language buurtstem does not offer (German), which must not count.
        code = TELEGRAM_CODES[row.language] if i % 2 == 0 else ("de-DE" if i % 5 == 1 else None)
        detection = detector.detect(row.text)
        lang, source = decide_language(
            chosen=None, telegram_code=code, detected=detection, offered=OFFERED
        )
        sources[source] += 1
        if source == "telegram":
            settled += 1
            settled_wrong += lang != row.language
        else:
            other += 1
            other_right += lang == row.language
    print("\n## (c) combined decision (language_code for 50% of messages)")
    print(f"settled by language_code: {settled}, wrong: {settled_wrong}")
    print(
        f"rest (detection or default nl): {other}, right: {other_right} "
        f"({100 * other_right / max(other, 1):.1f}%)"
    )
    right = settled - settled_wrong + other_right
    print(f"overall: {right}/{len(labelled)} ({100 * right / max(len(labelled), 1):.1f}%)")
    print("sources: " + ", ".join(f"{k} {v}" for k, v in sorted(sources.items())))


# Shapes of long messages: ordinary words, one endless word, and those that made the old e-mail
# pattern backtrack. Each is repeated to LONG_LENGTH characters.
LONG_SHAPES = {
    "dutch words": "de buurt is vies en onveilig ",
    "one word": "a",
    "a@ repeated": "a@",
    "a@a. repeated": "a@a.",
    "arabic script": "ب",
    "www. repeated": "www.",
}
LONG_LENGTH = 400_000


def long_messages(detector: LanguageDetector) -> None:
    """Time one detection per shape of a 400,000-character message (best of 3)."""
    print(f"\n## long messages ({LONG_LENGTH:,} characters; detection reads the first 4,096)")
    for name, unit in LONG_SHAPES.items():
        text = unit * (LONG_LENGTH // len(unit))
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            detector.detect(text)
            best = min(best, time.perf_counter() - start)
        print(f"{name:<16} {1000 * best:8.1f} ms")


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", choices=("all", "dev", "test"), default="all")
    parser.add_argument("--errors", action="store_true", help="list every wrong answer")
    parser.add_argument("--long", action="store_true", help="time huge and odd messages only")
    args = parser.parse_args()
    if args.long:
        long_messages(LanguageDetector(OFFERED))
        return
    rows = load(args.split)
    counts = {lang: sum(r.language == lang for r in rows) for lang in (*OFFERED, *NO_LANGUAGE)}
    print(f"evaluation set: {EVAL_FILE.name}, split {args.split}, {len(rows)} rows {counts}")

    DetectorFactory.seed = 0
    start = time.perf_counter()
    plain_langdetect("warm up")
    print(f"langdetect profile load: {1000 * (time.perf_counter() - start):.0f} ms")
    start = time.perf_counter()
    detector = LanguageDetector(OFFERED)
    print(f"buurtstem detector build: {1000 * (time.perf_counter() - start):.0f} ms")

    run("(a) plain langdetect, seeded, unrestricted", plain_langdetect, rows, args.errors)
    run("(b) buurtstem LanguageDetector", lambda t: detector.detect(t).language, rows, args.errors)
    combined(detector, rows)


if __name__ == "__main__":
    main()
