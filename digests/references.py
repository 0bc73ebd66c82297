"""Reference figures: the city's and the country's Veiligheidsmonitor figures beside an area's own.

The programme team writes one YAML file per area and year in a folder
(`BUURTSTEM_REFERENCES_DIR`); buurtstem ships only a template (docs/reference-template.yaml) and
never invents a figure. A digest shows, under each headline figure with a reference, the city's
and the national figure and names the file's source. The format is in docs/digests.md,
"Reference figures".
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surveys.yamlfile import LineMap, Problem, ProblemsError, read_yaml, with_lines

MEASURE_RE = re.compile(r"^(mean|share:agree|share:[a-z0-9_]+(\+[a-z0-9_]+)*)$")
YEARS = range(1990, 2101)


@dataclass(frozen=True)
class Figure:
    """One reference figure: a question's measure in the city and in the country."""

    item: str  # the question's `item` code (VM.leefbaarheid_cijfer) or its id
    measure: str  # mean | share:agree | share:<option>[+<option>...]
    city: float | None
    country: float | None

    @property
    def options(self) -> list[str]:
        """The options whose shares add up to the figure (empty for mean and share:agree)."""
        if self.measure in ("mean", "share:agree"):
            return []
        return self.measure.removeprefix("share:").split("+")

    @property
    def is_share(self) -> bool:
        """Shares are written as percentages (0-100), means as grades (1-10)."""
        return self.measure != "mean"


@dataclass(frozen=True)
class References:
    """An area's reference figures of one year, with their source."""

    area: str
    year: int
    source: str
    city_name: str
    figures: tuple[Figure, ...]

    def for_question(self, question_id: str, item: str | None) -> list[Figure]:
        """The figures about one question (by item code, or by question id)."""
        keys = {question_id} | ({item} if item else set())
        return [f for f in self.figures if f.item in keys]


def _number(
    name: str, line: int, value: Any, figure: str, field: str, share: bool
) -> tuple[float | None, list[Problem]]:
    if value is None:
        return None, []
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, [Problem(name, line, f"{figure}: '{field}' must be a number, got {value!r}")]
    low, high = (0.0, 100.0) if share else (1.0, 10.0)
    if not low <= float(value) <= high:
        what = "a percentage from 0 to 100" if share else "a grade from 1 to 10"
        return None, [Problem(name, line, f"{figure}: '{field}' must be {what}, got {value}")]
    return float(value), []


def read_file(
    path: Path, areas: Collection[str] | None = None
) -> tuple[References | None, list[Problem]]:
    """One reference file and everything wrong with it (nothing used when anything is)."""
    try:
        name, node = read_yaml(path)
    except ProblemsError as exc:
        return None, exc.problems
    data, problems = with_lines(name, node)
    if not isinstance(data, LineMap):
        return None, [
            *problems,
            Problem(name, 1, "expected 'area:', 'year:', 'source:' and 'figures:'"),
        ]
    line = data.line

    def at(key: str) -> int:
        return int(data.key_lines.get(key, line))

    for key in data:
        if key not in ("area", "year", "source", "city", "figures"):
            problems.append(Problem(name, at(key), f"unknown key '{key}'"))
    area = data.get("area")
    if not isinstance(area, str) or not area:
        problems.append(Problem(name, at("area"), "'area' must be a focus area code"))
    elif areas is not None and area not in areas:
        problems.append(
            Problem(name, at("area"), f"unknown area '{area}' (see buurtstem areas list)")
        )
    year = data.get("year")
    if isinstance(year, bool) or not isinstance(year, int) or year not in YEARS:
        problems.append(Problem(name, at("year"), "'year' must be a year such as 2023"))
    source = data.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(
            Problem(name, at("source"), "'source' must say where the figures come from")
        )
    city = data.get("city")
    if city is not None and not isinstance(city, str):
        problems.append(Problem(name, at("city"), "'city' must be a name"))
    figures: list[Figure] = []
    items = data.get("figures")
    if not isinstance(items, LineMap) or not items:
        problems.append(
            Problem(name, at("figures"), "'figures' must list items, each with measures")
        )
        items = LineMap()
        items.key_lines = {}
    for item, measures in items.items():
        item_line = int(items.key_lines.get(item, line))
        if not isinstance(measures, LineMap):
            problems.append(Problem(name, item_line, f"'{item}' must list measures (e.g. 'mean:')"))
            continue
        for measure, values in measures.items():
            m_line = int(measures.key_lines.get(measure, item_line))
            label = f"'{item}' {measure}"
            if not isinstance(measure, str) or not MEASURE_RE.match(measure):
                problems.append(
                    Problem(
                        name,
                        m_line,
                        f"'{item}': unknown measure '{measure}' (use mean, share:agree, "
                        "share:OPTION or share:OPTION+OPTION)",
                    )
                )
                continue
            if not isinstance(values, Mapping) or set(values) - {"city", "country"}:
                problems.append(
                    Problem(name, m_line, f"{label}: give 'city:' and/or 'country:' numbers")
                )
                continue
            share = measure != "mean"
            city_value, p1 = _number(name, m_line, values.get("city"), label, "city", share)
            country_value, p2 = _number(
                name, m_line, values.get("country"), label, "country", share
            )
            problems += p1 + p2
            if not p1 and not p2:
                if city_value is None and country_value is None:
                    continue  # a template line not filled in
                if share:
                    city_value = None if city_value is None else city_value / 100
                    country_value = None if country_value is None else country_value / 100
                figures.append(Figure(str(item), measure, city_value, country_value))
    if problems:
        return None, problems
    assert isinstance(area, str) and isinstance(year, int) and isinstance(source, str)
    return References(area, year, " ".join(source.split()), city or "", tuple(figures)), []


def load_references(
    folder: str | Path | None, areas: Collection[str] | None = None
) -> dict[str, References]:
    """Each area's newest reference file in `folder` (*.yaml); ProblemsError listing every
    problem of every file. No folder: no references."""
    if folder is None:
        return {}
    path = Path(folder)
    if not path.is_dir():
        raise ProblemsError([Problem(str(path), None, "the references folder does not exist")])
    found: dict[str, References] = {}
    problems: list[Problem] = []
    seen: dict[tuple[str, int], str] = {}
    for file in sorted(path.glob("*.yaml")):
        refs, wrong = read_file(file, areas)
        problems += wrong
        if refs is None:
            continue
        key = (refs.area, refs.year)
        if key in seen:
            problems.append(
                Problem(str(file), None, f"{refs.area} {refs.year} is also in {seen[key]}")
            )
            continue
        seen[key] = str(file)
        if refs.area not in found or found[refs.area].year < refs.year:
            found[refs.area] = refs
    if problems:
        raise ProblemsError(problems)
    return found


def describe(references: Iterable[References]) -> list[str]:
    """One line per area: area, year, number of figures, source (for the CLI)."""
    return [
        f"{r.area} {r.year}: {len(r.figures)} figure(s); source: {r.source}" for r in references
    ]
