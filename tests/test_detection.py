"""Resident language detection: held-out accuracy, abstention, determinism and the decisions."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from locales.detection import (
    UNKNOWN,
    Detection,
    LanguageDetector,
    decide_language,
    fold,
    normalise_code,
    should_offer_switch,
)

OFFERED = ("nl", "en", "tr", "ar", "pl")
EVAL_FILE = Path(__file__).parent / "data" / "language_eval.tsv"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    """One detector for the whole module: building it reads the n-gram profiles."""
    return LanguageDetector(OFFERED)


@pytest.fixture(scope="module")
def eval_rows() -> list[dict[str, str]]:
    """The labelled evaluation set."""
    with EVAL_FILE.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_evaluation_set_is_large_balanced_and_short(eval_rows: list[dict[str, str]]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for row in eval_rows:
        counts[row["language"]] += 1
        assert 1 <= len(row["text"].split()) <= 12, row["text"]
        assert row["split"] in ("dev", "test")
    assert all(counts[lang] >= 70 for lang in OFFERED)
    assert sum(counts[lang] for lang in OFFERED) >= 400
    assert sum(row["split"] == "test" for row in eval_rows) >= 100


def test_held_out_accuracy_per_language(
    detector: LanguageDetector, eval_rows: list[dict[str, str]]
) -> None:
    long_right: dict[str, list[bool]] = defaultdict(list)
    all_right: list[bool] = []
    wrong_decisions: list[str] = []
    for row in eval_rows:
        if row["split"] != "test" or row["language"] not in OFFERED:
            continue
        found = detector.detect(row["text"]).language
        all_right.append(found == row["language"])
        if len(row["text"].split()) >= 3:
            long_right[row["language"]].append(found == row["language"])
        if found is not None and found != row["language"]:
            wrong_decisions.append(f"{row['language']}->{found}: {row['text']}")
    for lang in OFFERED:
        hits = long_right[lang]
        assert len(hits) >= 15
        assert sum(hits) / len(hits) >= 0.9, lang
    # "unknown" counts as wrong here; a confident wrong answer is rarer still.
    assert sum(all_right) / len(all_right) >= 0.85
    assert len(wrong_decisions) <= 0.03 * len(all_right), wrong_decisions


def test_held_out_rows_without_an_offered_language_are_unknown(
    detector: LanguageDetector, eval_rows: list[dict[str, str]]
) -> None:
    rows = [r for r in eval_rows if r["split"] == "test" and r["language"] not in OFFERED]
    assert rows
    assert [r["text"] for r in rows if detector.detect(r["text"]).language is not None] == []


@pytest.mark.parametrize(
    "text",
    ["ok", "7", "👍", "😊🙏", "3563 AB", "Overvecht", "Kanaleneiland", "Hoge Vucht", "", "  ?! "],
)
def test_too_little_evidence_is_unknown(detector: LanguageDetector, text: str) -> None:
    detection = detector.detect(text)
    assert detection.language is None
    assert detection.stored == UNKNOWN


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Ik woon in Kanaleneiland", "nl"),
        ("I live in Overvecht", "en"),
        ("Overvecht'te oturuyorum", "tr"),
        ("mieszkam w Poelenburgu od lat", "pl"),
        ("wallah die jongens in de Bijlmer zijn irritant", "nl"),
        ("الشارع وسخ", "ar"),
        ("bzaf dyal zbel f zanqa", "ar"),
        ("dziekuje", "pl"),
        ("tesekkurler", "tr"),
        ("bedankt", "nl"),
    ],
)
def test_short_texts_and_place_names(detector: LanguageDetector, text: str, language: str) -> None:
    assert detector.detect(text).language == language


def test_place_names_from_area_data_are_no_evidence() -> None:
    plain = LanguageDetector(OFFERED)
    with_areas = LanguageDetector(OFFERED, place_names=["Sterrenburg"])
    assert with_areas.detect("Sterrenburg").language is None
    assert with_areas.detect("Sterrenburg").words == 0
    assert plain.detect("Sterrenburg").words == 1


def test_scripts_follow_the_offered_languages() -> None:
    assert LanguageDetector(["nl", "en"]).detect("Дякую, все добре").language is None
    assert LanguageDetector(["nl", "uk"]).detect("Дякую, все добре").language == "uk"
    assert LanguageDetector(["nl", "en"]).detect("شكرا جزيلا").language is None


def test_same_answer_every_time(detector: LanguageDetector) -> None:
    texts = ["hallo", "merhaba", "ja hoor", "te veel troep", "cześć", "salam"]
    first = [detector.detect(t) for t in texts]
    again = LanguageDetector(OFFERED)
    for _ in range(3):
        assert [detector.detect(t) for t in texts] == first
        assert [again.detect(t) for t in texts] == first


DETERMINISM_TEXTS = [
    "hallo",
    "goed",
    "ok ok",
    "parkowanie to dramat",
    "no",
    "la ma3reftch",
    "te veel hangjongeren in Overvecht",
    "Mi ta biba na Overvecht",
]
DETERMINISM_SCRIPT = """
import json, sys
from locales.detection import LanguageDetector
detector = LanguageDetector(["nl", "en", "tr", "ar", "pl"])
texts = json.loads(sys.argv[1])
print(json.dumps([[d.language, d.confidence, d.reason] for d in map(detector.detect, texts)]))
"""


def test_same_answer_in_separate_processes(detector: LanguageDetector) -> None:
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", DETERMINISM_SCRIPT, json.dumps(DETERMINISM_TEXTS)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(json.loads(done.stdout))
    here = [[d.language, d.confidence, d.reason] for d in map(detector.detect, DETERMINISM_TEXTS)]
    assert outputs[0] == outputs[1] == here


@pytest.mark.parametrize(
    ("code", "base"),
    [("en-GB", "en"), ("pt-br", "pt"), ("AR", "ar"), ("zh_hans", "zh"), ("", None), (None, None)],
)
def test_normalise_code(code: str | None, base: str | None) -> None:
    assert normalise_code(code) == base


def test_fold_removes_diacritics_as_residents_do() -> None:
    assert fold("Dziękuję") == "dziekuje"
    assert fold("Teşekkürler") == "tesekkurler"
    assert fold("İYİ") == "iyi"
    assert fold("Łódź") == "lodz"


def test_own_choice_wins(detector: LanguageDetector) -> None:
    detected = detector.detect("çok teşekkür ederim, sokak çok pis")
    assert detected.language == "tr"
    assert decide_language(
        chosen="pl", telegram_code="en-GB", detected=detected, offered=OFFERED
    ) == ("pl", "chosen")


def test_telegram_code_settles_it_when_offered(detector: LanguageDetector) -> None:
    detected = detector.detect("de straat is vies en er wordt gedeald")
    assert decide_language(chosen=None, telegram_code="AR", detected=detected, offered=OFFERED) == (
        "ar",
        "telegram",
    )
    assert decide_language(chosen=None, telegram_code="en-GB", detected=None, offered=OFFERED) == (
        "en",
        "telegram",
    )
    # Portuguese is not offered: the message decides.
    assert decide_language(
        chosen=None, telegram_code="pt-br", detected=detected, offered=OFFERED
    ) == ("nl", "detected")


def test_chosen_language_that_is_not_offered_is_ignored() -> None:
    assert decide_language(chosen="so", telegram_code="pl", detected=None, offered=OFFERED) == (
        "pl",
        "telegram",
    )


def test_unsure_detection_falls_back_to_the_default(detector: LanguageDetector) -> None:
    assert decide_language(
        chosen=None, telegram_code=None, detected=detector.detect("ok"), offered=OFFERED
    ) == ("nl", "default")
    unsure = Detection("tr", 0.85, "words+ngrams", 1)
    assert decide_language(chosen=None, telegram_code=None, detected=unsure, offered=OFFERED) == (
        "nl",
        "default",
    )
    assert decide_language(
        chosen=None, telegram_code=None, detected=None, offered=OFFERED, default="en"
    ) == ("en", "default")


def test_switch_is_offered_once(detector: LanguageDetector) -> None:
    detection = detector.detect("sokak çok pis ve geceleri gençler bağırıyor")
    offer = should_offer_switch(
        current="nl", source="telegram", detection=detection, already_offered=False
    )
    assert offer == "tr"
    assert (
        should_offer_switch(
            current="nl", source="telegram", detection=detection, already_offered=True
        )
        is None
    )


def test_no_switch_for_short_same_or_unknown_text(detector: LanguageDetector) -> None:
    for text, current in [("evet", "nl"), ("de straat is echt heel vies", "nl"), ("7", "en")]:
        detection = detector.detect(text)
        assert (
            should_offer_switch(
                current=current, source="detected", detection=detection, already_offered=False
            )
            is None
        ), text


def test_switch_after_own_choice_needs_more_evidence(detector: LanguageDetector) -> None:
    short = detector.detect("polis hiç gelmiyor")
    assert (
        should_offer_switch(current="nl", source="telegram", detection=short, already_offered=False)
        == "tr"
    )
    assert (
        should_offer_switch(current="nl", source="chosen", detection=short, already_offered=False)
        is None
    )
    long = detector.detect("de politie komt pas na een uur als je ze belt")
    assert (
        should_offer_switch(current="en", source="chosen", detection=long, already_offered=False)
        == "nl"
    )


def test_no_switch_to_arabic_script_for_arabic_in_latin_letters(
    detector: LanguageDetector,
) -> None:
    latin = detector.detect("wallah lbolis makaynach bzaf dyal zbel f zanqa")
    assert latin.language == "ar"
    assert (
        should_offer_switch(current="nl", source="telegram", detection=latin, already_offered=False)
        is None
    )
    script = detector.detect("الشباب يبيعون المخدرات هنا كل ليلة")
    assert (
        should_offer_switch(
            current="nl", source="telegram", detection=script, already_offered=False
        )
        == "ar"
    )


def test_a_new_language_needs_only_a_word_list() -> None:
    # Papiamento has no langdetect profile: its own words decide, other letters count against.
    detector = LanguageDetector(
        ["nl", "pap"], word_lists={"pap": {"strong": "bon dia mi ta bo nos danki", "weak": "aki"}}
    )
    assert detector.detect("Bon dia, mi ta biba aki").language == "pap"
    assert detector.detect("de straat is vies").language == "nl"
    with pytest.raises(KeyError):
        LanguageDetector(["nl", "pap"], word_lists={"pap": {"sterk": "danki"}})


def test_text_beyond_telegrams_4096_characters_is_not_read(detector: LanguageDetector) -> None:
    # A Telegram message holds at most 4,096 characters; more is not a resident's message.
    from locales.detection import MAX_TEXT

    assert MAX_TEXT == 4096
    dutch = "de buurt is vies en onveilig, er is veel overlast van jongeren. " * 70
    assert len(dutch) > MAX_TEXT
    long_text = dutch + "mahallede çok gürültü var ve sokaklar karanlık " * 5000
    assert detector.detect(long_text).language == "nl"
    assert detector.detect(long_text) == detector.detect(long_text[:MAX_TEXT])


@pytest.mark.parametrize(
    "unit",
    ["a", "a@", "a@a.", "ab ", "www.", "@a", "#a", "1234 ", "ب", "x'", "Overvecht'te ", "3afak "],
)
def test_huge_and_odd_input_gets_the_answer_of_its_first_4096_characters(
    detector: LanguageDetector, unit: str
) -> None:
    # 400,000 characters of shapes that made the old URL and e-mail patterns backtrack
    # (quadratic or worse: 145 s for one message). Speed: benchmarks/language.py --long.
    huge = unit * (400_000 // len(unit))
    assert detector.detect(huge) == detector.detect(huge[:4096])
