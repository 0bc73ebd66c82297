"""Digest text (nl, en), chart PNG and CSV, all rendered from the published table."""

from __future__ import annotations

import re
import struct

from digests import build_digest
from digests.chart import chart_data
from digests.model import Comment, QuestionInfo
from digests.render import TELEGRAM_LIMIT, pack, telegram_length
from digests.suppression import publish
from digests.table import COLUMNS, parse_csv, render_csv
from tests.test_digest_data import QUESTIONS, make_input

RAW = ["06-12345678", "Jan de Vries", "Gagelweg 12", "<b>speeding</b>"]


def _tags_balanced(message: str) -> bool:
    for tag in ("b", "i"):
        if message.count(f"<{tag}>") != message.count(f"</{tag}>"):
            return False
    # No stray "<" that is not one of our tags.
    return not re.search(r"<(?!/?[bi]>)", message)


def test_dutch_digest_content() -> None:
    digest = build_digest(make_input(), chart=False)
    text = "\n".join(digest.messages)
    assert all(telegram_length(m) <= TELEGRAM_LIMIT for m in digest.messages)
    assert "geen aselecte steekproef" in text
    assert "Groningen Noord" in text and "Najaar 2026" in text
    assert "Gemiddeld" in text and "95%-interval" in text
    assert "Sinds de vorige digest" in text and "Sinds de vorige ronde (Ronde 1)" in text
    assert "toeval" in text
    assert "Alle focusgebieden samen" in text
    assert "Meest genoemd" in text and "1. " in text
    assert "negatief gestelde uitspraak" in text
    assert "Per buurt" in text and "De Hoogte: te weinig antwoorden" in text
    assert "andere talen 5" in text  # tr 3 + ar 2 pooled: below min_n each
    # Every figure line carries its n.
    for line in text.splitlines():
        if line.startswith(("Gemiddeld", "(Helemaal)", "Alle focusgebieden")):
            assert "n=" in line
    assert all(_tags_balanced(m) for m in digest.messages)


def test_english_digest() -> None:
    digest = build_digest(make_input(), lang="en", chart=False)
    text = "\n".join(digest.messages)
    assert "not a random sample" in text and "Mean 6." in text
    assert "(Strongly) agree" in text and "By neighbourhood" in text
    assert "geen aselecte" not in text


def test_free_text_is_scrubbed_and_escaped_everywhere() -> None:
    digest = build_digest(make_input(), chart=False)
    published = "\n".join(digest.messages) + digest.csv.decode("utf-8-sig")
    for raw in RAW:
        assert raw not in published
    text = "\n".join(digest.messages)
    assert "[telefoon]" in text and "[naam]" in text and "[adres]" in text
    assert "&lt;b&gt;speeding&lt;/b&gt; &amp; no police" in text


def test_long_digest_is_split_into_valid_messages() -> None:
    many = [QuestionInfo(f"g{i}", "grade", {"nl": f"Vraag {i} " + "lang " * 40}) for i in range(40)]
    data = make_input(comments=[Comment("x" * 2000, "nl")] * 3)
    data.questions = QUESTIONS + many
    for q in many:
        for sample in data.current.neighbourhoods.values():
            sample.questions[q.id] = sample.questions["leefbaarheid"]
    messages = build_digest(data, chart=False).messages
    assert len(messages) > 1
    for i, m in enumerate(messages, start=1):
        assert telegram_length(m) <= TELEGRAM_LIMIT
        assert m.endswith(f"({i}/{len(messages)})")
        assert _tags_balanced(m)


def test_pack_splits_even_one_huge_line() -> None:
    parts = pack(["<b>kop</b>\n" + "a" * 9000, "slot"], limit=4096)
    assert len(parts) >= 3
    assert all(telegram_length(p) <= 4096 for p in parts)
    assert "".join(parts).count("a") == 9000


def test_emoji_count_double() -> None:
    assert telegram_length("😀") == 2


def test_chart_is_a_phone_sized_png_of_the_published_table() -> None:
    digest = build_digest(make_input())
    png = digest.chart_png
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert width == 1080 and height > width
    data = chart_data(digest.table)
    assert data.kind == "neighbourhoods"
    labels = [p.label for p in data.panels[0].points]
    assert "De Hoogte: te weinig antwoorden" in labels
    assert any(label.startswith("Vinkhuizen (n=") for label in labels)
    # Same input, same picture.
    assert build_digest(make_input()).chart_png == png


def test_chart_over_rounds_when_there_are_several() -> None:
    table = publish(make_input(rounds=3))
    data = chart_data(table)
    assert data.kind == "rounds"
    assert [p.label.split(" (")[0] for p in data.panels[0].points] == [
        "Ronde 1",
        "Ronde 2",
        "Ronde 3",
        "Najaar 2026",
    ]


def test_csv_excel_nl_and_plain() -> None:
    table = publish(make_input())
    data = render_csv(table)
    assert data.startswith(b"\xef\xbb\xbf")
    header = data.decode("utf-8-sig").splitlines()[0]
    assert header == ";".join(COLUMNS)
    rows = parse_csv(data)
    assert len(rows) == len(table.cells)
    hidden = [r for r in rows if r["neighbourhood"] == "de_hoogte"]
    assert hidden and all(r["suppressed"] == "min_n" and r["value"] == r["n"] == "" for r in hidden)
    total = next(
        r
        for r in rows
        if (r["scope"], r["neighbourhood"], r["question"], r["measure"])
        == ("current", "totaal", "leefbaarheid", "mean")
    )
    assert "," in total["value"] and total["indicative"] == "0"
    plain = parse_csv(render_csv(table, excel_nl=False))
    assert not render_csv(table, excel_nl=False).startswith(b"\xef\xbb\xbf")
    assert plain[0].keys() == rows[0].keys()
    assert float(plain[rows.index(total)]["value"]) == float(total["value"].replace(",", "."))


def test_numbers_as_each_language_writes_them() -> None:
    lines = {
        lang: "\n".join(build_digest(make_input(), lang=lang, chart=False).messages)
        for lang in ("nl", "en", "tr", "pl", "ar")
    }
    # All focus areas together: a mean with one decimal and 1045 respondents.
    assert "Alle focusgebieden samen: 6,6 (n=1.045)" in lines["nl"]
    assert "All focus areas together: 6.6 (n=1,045)" in lines["en"]
    assert "Tüm odak bölgeleri birlikte: 6,6 (n=1.045)" in lines["tr"]
    assert "(n=1\u00a0045)" in lines["pl"] and ": 6,6 (n=" in lines["pl"]
    assert "\u20686.6\u2069 (\u2068n=1,045\u2069)" in lines["ar"]  # Latin digits, as typed
    # Percentages: the sign before the number in Turkish only.
    assert re.search(r"(?<![%\d])%\d+\b", lines["tr"]) and not re.search(r"\d%", lines["tr"])
    for lang in ("nl", "en", "pl", "ar"):
        assert re.search(r"\b\d+%", lines[lang]) and not re.search(r"%\d", lines[lang]), lang
    assert "6.6" not in lines["nl"] + lines["tr"] + lines["pl"]
