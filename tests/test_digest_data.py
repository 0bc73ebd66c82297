"""Test data for the digest tests (a realistic Buurtpeiling), and tests of the input shapes."""

from __future__ import annotations

import random

from digests.model import (
    TOTAL,
    UNKNOWN,
    AreaCounts,
    Comment,
    DigestInput,
    QuestionCounts,
    QuestionInfo,
    Sample,
)


def _opts(*pairs: tuple[str, str, str]) -> list[tuple[str, dict[str, str]]]:
    return [(oid, {"nl": nl, "en": en}) for oid, nl, en in pairs]


AGREE = _opts(
    ("helemaal_eens", "helemaal mee eens", "strongly agree"),
    ("eens", "mee eens", "agree"),
    ("neutraal", "niet eens, niet oneens", "neither"),
    ("oneens", "mee oneens", "disagree"),
    ("helemaal_oneens", "helemaal mee oneens", "strongly disagree"),
)
NUISANCE = _opts(
    ("zwerfvuil", "Rommel op straat", "Litter"),
    ("hondenpoep", "Hondenpoep", "Dog waste"),
    ("hardrijden", "Te hard rijden", "Speeding"),
    ("parkeren", "Parkeerproblemen", "Parking problems"),
    ("drugs", "Drugshandel", "Drug dealing"),
    ("jongeren", "Rondhangende jongeren", "Youths hanging around"),
    ("geluid", "Geluidsoverlast", "Noise"),
    ("none", "Geen van deze", "None of these"),
)

QUESTIONS = [
    QuestionInfo(
        "leefbaarheid",
        "grade",
        {"nl": "Welk cijfer geeft u voor de leefbaarheid in uw buurt?", "en": "Liveability grade"},
        label={"nl": "Leefbaarheid", "en": "Liveability"},
    ),
    QuestionInfo(
        "veiligheid",
        "grade",
        {"nl": "Welk cijfer geeft u voor de veiligheid in uw buurt?", "en": "Safety grade"},
        label={"nl": "Veiligheid", "en": "Safety"},
    ),
    QuestionInfo(
        "ontwikkeling",
        "single",
        {"nl": "Is uw buurt vooruit of achteruit gegaan?", "en": "Has it improved?"},
        _opts(
            ("vooruit", "vooruit", "improved"),
            ("gelijk", "gelijk gebleven", "same"),
            ("achteruit", "achteruit", "worse"),
            ("weet_niet", "weet niet", "don't know"),
        ),
    ),
    QuestionInfo(
        "onveilig",
        "yesno",
        {"nl": "Voelt u zich weleens onveilig in uw buurt?", "en": "Do you ever feel unsafe?"},
        _opts(("ja", "ja", "yes"), ("nee", "nee", "no"), ("weet_niet", "weet niet", "don't know")),
    ),
    QuestionInfo(
        "kennen",
        "agree5",
        {"nl": "De mensen kennen elkaar hier nauwelijks.", "en": "People hardly know each other."},
        AGREE,
        reverse=True,
        item="cohesie_1",
    ),
    QuestionInfo(
        "thuis",
        "agree5",
        {"nl": "Ik voel me thuis bij de mensen hier.", "en": "I feel at home here."},
        AGREE,
        item="cohesie_4",
    ),
    QuestionInfo(
        "overlast", "multi", {"nl": "Komt dit voor in uw buurt?", "en": "Nuisance"}, NUISANCE
    ),
    QuestionInfo(
        "beter", "text", {"nl": "Wat zou uw buurt beter maken?", "en": "What would help?"}
    ),
]

NAMES = {
    "vinkhuizen": "Vinkhuizen",
    "paddepoel": "Paddepoel",
    "selwerd": "Selwerd",
    "de_hoogte": "De Hoogte",
    "beijum": "Beijum",
}


def make_sample(rng: random.Random, n: int, shift: float = 0.0) -> Sample:
    """A random but reproducible sample of n responses to QUESTIONS (counts only)."""
    counts: dict[str, dict[str, int]] = {q.id: {} for q in QUESTIONS if q.type != "text"}
    answered: dict[str, int] = {}
    for _ in range(n):
        for q in QUESTIONS:
            if q.type == "text":
                continue
            if q.type == "grade":
                value = str(max(1, min(10, round(rng.gauss(6.5 + shift, 1.4)))))
                values = [value]
            elif q.type == "multi":
                values = [o for o in q.option_ids[:-1] if rng.random() < 0.3] or ["none"]
            else:
                values = [rng.choice(q.option_ids)]
            for v in values:
                counts[q.id][v] = counts[q.id].get(v, 0) + 1
            answered[q.id] = answered.get(q.id, 0) + 1
    return Sample.of(n, n - n // 10, counts, answered)


def make_input(
    sizes: dict[str, int] | None = None,
    seed: int = 7,
    *,
    previous: bool = True,
    rounds: int = 1,
    comments: list[Comment] | None = None,
) -> DigestInput:
    """A Groningen Noord digest input; `sizes` maps neighbourhood codes to respondents."""
    rng = random.Random(seed)
    sizes = (
        sizes
        if sizes is not None
        else {
            "vinkhuizen": 120,
            "paddepoel": 64,
            "selwerd": 35,
            "de_hoogte": 4,
            "beijum": 22,
        }
    )
    current = AreaCounts({code: make_sample(rng, n) for code, n in sizes.items()})
    total = current.total()
    prev = None
    if previous:
        # The previous digest: the same responses minus a batch of new ones.
        earlier = AreaCounts(
            {c: make_sample(random.Random(seed + 1), max(0, n - 15)) for c, n in sizes.items()}
        )
        prev = earlier.total()
        current = AreaCounts(
            {
                c: Sample.merge([earlier.neighbourhoods[c], make_sample(rng, min(n, 15))])
                for c, n in sizes.items()
            }
        )
        total = current.total()
    earlier_rounds = [
        (f"Ronde {i + 1}", make_sample(rng, 150 + 10 * i, shift=-0.3)) for i in range(rounds)
    ]
    return DigestInput(
        area_code="groningen-noord",
        area_name="Groningen Noord",
        round_name="Najaar 2026",
        period="2–8 november 2026",
        questions=QUESTIONS,
        current=current,
        neighbourhood_names={k: NAMES.get(k, k) for k in sizes},
        previous=prev,
        earlier_rounds=earlier_rounds,
        all_areas=Sample.merge([total, make_sample(rng, 800, shift=0.2)]),
        comments=comments
        if comments is not None
        else [
            Comment("Meer licht op de Gagelweg 12 graag, bel 06-12345678", "nl"),
            Comment("Too many cars <b>speeding</b> & no police", "en"),
            Comment("Mijn naam is Jan de Vries, de speeltuin is kapot", "nl"),
        ],
        comment_languages={"nl": 40, "en": 12, "tr": 3, "ar": 2},
    )


def test_from_rows_builds_samples_like_a_group_by() -> None:
    rows = [("vinkhuizen", 12, 10), (None, 3, 3), ("vinkhuizen", 1, 0)]
    answers: list[tuple[str | None, str, str | int, int]] = [
        ("vinkhuizen", "leefbaarheid", 7, 5),
        ("vinkhuizen", "leefbaarheid", "8", 6),
        ("vinkhuizen", "overlast", "drugs", 4),
        (None, "leefbaarheid", 5, 3),
    ]
    answered = [("vinkhuizen", "overlast", 9)]
    area = AreaCounts.from_rows(rows, answers, answered)
    v = area.neighbourhoods["vinkhuizen"]
    assert (v.started, v.completed) == (13, 10)
    assert v.questions["leefbaarheid"].counts == {"7": 5, "8": 6}
    assert v.questions["leefbaarheid"].n == 11
    assert v.questions["overlast"].n == 9  # answered, not the number of ticks
    assert area.neighbourhoods[UNKNOWN].started == 3
    assert area.total().questions["leefbaarheid"].n == 14


def test_minus_gives_the_new_responses_or_none_after_erasure() -> None:
    now = Sample.of(20, 18, {"q": {"1": 10, "2": 10}})
    before = Sample.of(12, 12, {"q": {"1": 8, "2": 4}})
    new = now.minus(before)
    assert new is not None and new.started == 8 and new.questions["q"].counts == {"1": 2, "2": 6}
    assert before.minus(now) is None


def test_question_counts_n_defaults_to_sum() -> None:
    assert QuestionCounts({"a": 2, "b": 3}).n == 5
    assert QuestionCounts({"a": 2, "b": 3}, answered=4).n == 4
    assert TOTAL == "totaal"
