"""Reference figure files: what a programme team writes, what is wrong with it, what is used."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from digests.references import load_references, read_file
from surveys.yamlfile import ProblemsError

TEMPLATE = Path(__file__).resolve().parents[1] / "docs" / "reference-template.yaml"
AREAS = {"utrecht-overvecht", "delft-west"}

GOOD = """\
area: utrecht-overvecht
year: 2023
source: "CBS Veiligheidsmonitor 2023 (StatLine)"
city: Utrecht
figures:
  VM.leefbaarheid_cijfer:
    mean: {city: 7.1, country: 7.6}
  VM.overlast_rommel:
    share:vaak+soms: {city: 71}
  VM.onveilig_weleens:
    share:ja: {city: null, country: null}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_gives_grades_and_shares(tmp_path: Path) -> None:
    refs, problems = read_file(write(tmp_path, "a.yaml", GOOD), AREAS)
    assert problems == [] and refs is not None
    assert (refs.area, refs.year, refs.city_name) == ("utrecht-overvecht", 2023, "Utrecht")
    assert refs.source == "CBS Veiligheidsmonitor 2023 (StatLine)"
    grade, litter = refs.figures  # the empty line of the template kind is left out
    assert (grade.item, grade.measure, grade.city, grade.country) == (
        "VM.leefbaarheid_cijfer",
        "mean",
        7.1,
        7.6,
    )
    assert litter.options == ["vaak", "soms"] and litter.city == pytest.approx(0.71)
    assert litter.country is None
    assert refs.for_question("nuisance_litter", "VM.overlast_rommel") == [litter]


def test_every_problem_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.yaml",
        """\
area: atlantis
year: 23
source: ""
colour: blue
figures:
  VM.leefbaarheid_cijfer:
    mean: {city: 11}
    median: {city: 7}
  VM.overlast_rommel:
    share:vaak: {city: "veel"}
""",
    )
    refs, problems = read_file(path, AREAS)
    assert refs is None
    text = [str(p) for p in problems]
    assert any(":1: unknown area 'atlantis'" in t for t in text)
    assert any(":2: 'year' must be a year" in t for t in text)
    assert any(":3: 'source' must say where the figures come from" in t for t in text)
    assert any(":4: unknown key 'colour'" in t for t in text)
    assert any(":7: " in t and "must be a grade from 1 to 10, got 11" in t for t in text)
    assert any(":8: " in t and "unknown measure 'median'" in t for t in text)
    assert any(":10: " in t and "must be a number" in t for t in text)


def test_a_folder_gives_each_area_its_newest_year(tmp_path: Path) -> None:
    write(tmp_path, "utrecht-overvecht-2021.yaml", GOOD.replace("2023", "2021"))
    write(tmp_path, "utrecht-overvecht-2023.yaml", GOOD)
    found = load_references(tmp_path, AREAS)
    assert set(found) == {"utrecht-overvecht"} and found["utrecht-overvecht"].year == 2023
    write(tmp_path, "again.yaml", GOOD)
    with pytest.raises(ProblemsError, match="utrecht-overvecht 2023 is also in"):
        load_references(tmp_path, AREAS)
    with pytest.raises(ProblemsError, match="does not exist"):
        load_references(tmp_path / "nowhere", AREAS)
    assert load_references(None) == {}


def test_the_shipped_template_is_valid_and_holds_no_figures() -> None:
    refs, problems = read_file(TEMPLATE, AREAS)
    assert problems == [] and refs is not None
    assert refs.figures == ()  # never a made-up figure presented as real


def test_cli_checks_the_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    write(tmp_path, "utrecht-overvecht-2023.yaml", GOOD)
    result = runner.invoke(cli, ["digest", "references", "--references-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (
        "utrecht-overvecht 2023: 2 figure(s); source: CBS Veiligheidsmonitor 2023" in result.output
    )
    write(tmp_path, "wrong.yaml", "area: delft-west\nyear: 2023\n")
    result = runner.invoke(cli, ["digest", "references", "--references-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "wrong.yaml:1: 'source' must say where the figures come from" in result.output
    result = runner.invoke(cli, ["digest", "references"], env={"BUURTSTEM_REFERENCES_DIR": ""})
    assert result.exit_code != 0 and "no references folder" in result.output
