"""Focus areas data, postcode lookup, deep links, data file checks and the `areas` CLI."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli import cli
from surveys.areas import (
    AREA_CODE_MAX,
    DEFAULT_PATH,
    NEIGHBOURHOOD_CODE_MAX,
    Ambiguous,
    Areas,
    AreasFileError,
    Found,
    InFocusMunicipality,
    Invalid,
    NotInFocusArea,
    check_areas_file,
    default_areas,
    format_pc4s,
    load_areas,
    parse_pc4,
)
from surveys.yamlfile import Problem


@pytest.fixture(scope="module")
def areas() -> Areas:
    """The shipped areas."""
    return load_areas()


# --- the shipped data -----------------------------------------------------------------------


def test_shipped_file_is_clean() -> None:
    found, problems = check_areas_file(DEFAULT_PATH)
    assert problems == []
    assert len(found) == 20


def test_shipped_areas_match_the_programme_table(areas: Areas) -> None:
    expected = {
        "leeuwarden-oost": "GM0080",
        "groningen-noord": "GM0014",
        "arnhem-oost": "GM0202",
        "heerlen-noord": "GM0917",
        "breda-noord": "GM0758",
        "eindhoven-woensel-zuid": "GM0772",
        "tilburg-noordwest": "GM0855",
        "schiedam-nieuwland-oost": "GM0606",
        "rotterdam-zuid": "GM0599",
        "den-haag-zuidwest": "GM0518",
        "amsterdam-zuidoost": "GM0363",
        "amsterdam-nieuw-west": "GM0363",
        "zaandam-oost": "GM0479",
        "lelystad-oost": "GM0995",
        "utrecht-overvecht": "GM0344",
        "nieuwegein-centrale-as": "GM0356",
        "vlaardingen-west": "GM0622",
        "delft-west": "GM0503",
        "dordrecht-west": "GM0505",
        "roosendaal-stad": "GM1674",
    }
    assert {area.code: area.municipality_code for area in areas} == expected
    assert len({area.municipality for area in areas}) == 19


def test_codes_fit_deep_links_and_callback_data(areas: Areas) -> None:
    codes = [area.code for area in areas]
    codes += [hood.code for area in areas for hood in area.neighbourhoods]
    assert len(codes) == len(set(codes))
    assert all(len(area.code) <= AREA_CODE_MAX for area in areas)
    for area in areas:
        assert area.neighbourhoods
        assert all(len(hood.code) <= NEIGHBOURHOOD_CODE_MAX for hood in area.neighbourhoods)


def test_known_postcodes_from_the_domain_brief(areas: Areas) -> None:
    overvecht = areas.get("utrecht-overvecht")
    assert overvecht is not None
    assert overvecht.all_postcodes == tuple(range(3561, 3567))
    leeuwarden = {hood.name: hood for hood in areas.get("leeuwarden-oost").neighbourhoods}  # type: ignore[union-attr]
    assert leeuwarden["Oud-Oost"].postcodes == (8921, 8922)
    assert leeuwarden["Heechterp-Schieringen"].postcodes == (8924,)
    assert leeuwarden["Camminghaburen"].postcodes == (8925, 8926)
    assert leeuwarden["Vrijheidswijk"].postcodes == (8923,)
    assert leeuwarden["Bilgaard"].postcodes_partly == (8918, 8919)


def test_default_areas_is_loaded_once() -> None:
    assert default_areas() is default_areas()
    assert len(default_areas()) == 20


# --- postcode lookup ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "3563",
        "3563 AB",
        "3563AB",
        " 3563ab ",
        "3563 ab 12",
        "3563AB12",
        "3563, 12",
        "３５６３",
        "٣٥٦٣",
    ],
)
def test_postcode_shapes_find_the_neighbourhood(areas: Areas, text: str) -> None:
    result = areas.lookup_postcode(text)
    assert isinstance(result, Found)
    assert result.pc4 == "3563"
    assert result.area.code == "utrecht-overvecht"
    assert result.neighbourhood.code == "overvecht-noord"
    # The letters and house number are dropped: the result holds nothing but these.
    assert [field.name for field in dataclasses.fields(result)] == ["area", "neighbourhood", "pc4"]


def test_shared_pc4_within_an_area_is_ambiguous(areas: Areas) -> None:
    result = areas.lookup_postcode("3564 XY")
    assert isinstance(result, Ambiguous)
    assert result.pc4 == "3564"
    assert [hood.code for hood in result.neighbourhoods] == [
        "overvecht-noord",
        "overvecht-vechtzoom",
    ]
    assert result.area is not None and result.area.code == "utrecht-overvecht"
    assert not result.partly_outside


def test_pc4_only_partly_in_a_neighbourhood_asks_with_elsewhere(areas: Areas) -> None:
    result = areas.lookup_postcode("8918")
    assert isinstance(result, Ambiguous)
    assert [hood.code for hood in result.neighbourhoods] == ["leeuwarden-bilgaard"]
    assert result.partly_outside


def test_area_wide_pc4_offers_every_neighbourhood_of_the_area(areas: Areas) -> None:
    result = areas.lookup_postcode("3072")
    assert isinstance(result, Ambiguous)
    rotterdam = areas.get("rotterdam-zuid")
    assert rotterdam is not None
    assert result.neighbourhoods == rotterdam.neighbourhoods
    assert result.partly_outside


def test_pc4_in_both_area_wide_and_neighbourhood_lists_is_found_once(areas: Areas) -> None:
    found = areas.lookup_postcode("8923")
    assert isinstance(found, Found)
    assert found.neighbourhood.name == "Vrijheidswijk"


@pytest.mark.parametrize("text", ["9999", "5050 AB", "2000", "8920"])
def test_not_in_a_focus_area(areas: Areas, text: str) -> None:
    result = areas.lookup_postcode(text)
    assert result == NotInFocusArea(text[:4])


def test_every_area_has_postcodes_that_resolve_or_ask_within_it(areas: Areas) -> None:
    for area in areas:
        assert area.all_postcodes, area.code
        for pc4 in area.all_postcodes:
            result = areas.lookup_pc4(pc4)
            if isinstance(result, Found):
                assert result.area == area, (area.code, pc4)
            else:
                assert isinstance(result, Ambiguous), (area.code, pc4, result)
                assert area in result.areas, (area.code, pc4)
                assert set(result.neighbourhoods) <= {
                    hood for a in result.areas for hood in a.neighbourhoods
                }


def test_pc4_in_a_focus_municipality_outside_the_area_data_asks(areas: Areas) -> None:
    claimed = {pc4 for area in areas for pc4 in area.all_postcodes}
    municipalities = areas.municipality_list()
    assert {m.code for m in municipalities} == {area.municipality_code for area in areas}
    for municipality in municipalities:
        unclaimed = [pc4 for pc4 in municipality.all_postcodes if pc4 not in claimed]
        assert unclaimed, municipality.code
        for pc4 in unclaimed:
            result = areas.lookup_pc4(pc4)
            assert isinstance(result, InFocusMunicipality), (pc4, result)
            assert result.municipality == municipality
            assert result.areas == tuple(
                a for a in areas if a.municipality_code == municipality.code
            )
            assert result.neighbourhoods == tuple(
                hood for a in result.areas for hood in a.neighbourhoods
            )
    # The resident of Tilburg from the issue is asked about Tilburg Noordwest, never refused.
    tilburg = areas.lookup_postcode("5011")
    assert isinstance(tilburg, InFocusMunicipality)
    assert [a.code for a in tilburg.areas] == ["tilburg-noordwest"]
    amsterdam = areas.lookup_postcode("1012 AB")
    assert isinstance(amsterdam, InFocusMunicipality)
    assert [a.code for a in amsterdam.areas] == ["amsterdam-zuidoost", "amsterdam-nieuw-west"]


def test_only_pc4s_outside_the_19_municipalities_are_refused(areas: Areas) -> None:
    in_municipality = {pc4 for m in areas.municipality_list() for pc4 in m.all_postcodes}
    assert len(areas.municipality_list()) == 19
    for pc4 in range(1000, 10_000):
        refused = isinstance(areas.lookup_pc4(pc4), NotInFocusArea)
        assert refused == (pc4 not in in_municipality), pc4


def test_municipality_lists_name_their_source(areas: Areas) -> None:
    for municipality in areas.municipality_list():
        assert municipality.verified and "CBS" in municipality.source, municipality.code


def test_area_postcodes_lie_in_their_municipality(areas: Areas) -> None:
    for area in areas:
        municipality = areas.municipality(area.municipality_code)
        assert municipality is not None
        assert set(area.all_postcodes) <= set(municipality.all_postcodes), area.code


def test_estimates_are_labelled_and_never_wholly_placed(areas: Areas) -> None:
    # An estimate (a PC4 from general knowledge) must say so and must let the resident say
    # "none of these": it is never a whole (Found) postcode.
    for area in areas:
        if "ESTIMATE" not in area.source:
            continue
        assert not area.verified or area.code == "tilburg-noordwest", area.code
        assert "ESTIMATE" in area.note, area.code
        if area.code != "eindhoven-woensel-zuid":
            assert not area.postcodes, area.code
            assert not any(hood.postcodes for hood in area.neighbourhoods), area.code


def test_the_name_residents_know_is_shown_the_cbs_name_kept(areas: Areas) -> None:
    den_haag = areas.get("den-haag-zuidwest")
    assert den_haag is not None
    assert den_haag.municipality == "Den Haag"
    assert den_haag.municipality_cbs_name == "'s-Gravenhage"
    assert den_haag.municipality_code == "GM0518"
    municipality = areas.municipality("GM0518")
    assert municipality is not None and municipality.cbs_name == "'s-Gravenhage"
    assert "Den Haag" in areas.municipalities()
    assert "'s-Gravenhage" not in areas.municipalities()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("abcd", "format"),
        ("Utrecht", "format"),
        ("356", "format"),
        ("35 63", "format"),
        ("35631", "format"),
        ("3563abc", "format"),
        ("3563-AB", "format"),
        ("😀", "format"),
        ("3563😀", "format"),
        ("0123", "range"),
        ("0999 AB", "range"),
        ("3563 SA", "letters"),
        ("3563sd", "letters"),
        ("3563 ss 4", "letters"),
        ("3" * 65, "too_long"),
        ("3563 AB " + "x" * 10_000, "too_long"),
    ],
)
def test_invalid_input(areas: Areas, text: str, reason: str) -> None:
    assert areas.lookup_postcode(text) == Invalid(reason)  # type: ignore[arg-type]


@given(
    pc4=st.integers(1000, 9999),
    letters=st.one_of(
        st.none(),
        st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=2, max_size=2),
    ),
    space=st.sampled_from(["", " ", "  "]),
    number=st.one_of(st.none(), st.integers(1, 999)),
)
@settings(max_examples=300, deadline=None)
def test_any_real_postcode_shape_keeps_just_the_pc4(
    pc4: int, letters: str | None, space: str, number: int | None
) -> None:
    text = str(pc4)
    if letters is not None:
        text += space + letters
    if number is not None:
        text += f" {number}"
    expected: int | str = pc4
    if letters is not None and letters.upper() in {"SA", "SD", "SS"}:
        expected = "letters"
    assert parse_pc4(text) == expected


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_lookup_never_raises(text: str) -> None:
    result = default_areas().lookup_postcode(text)
    assert isinstance(result, Found | Ambiguous | NotInFocusArea | Invalid)


def test_format_pc4s() -> None:
    assert format_pc4s([3566, 3561, 3562, 3563, 3564, 3565, 8923, 8923]) == "3561-3566, 8923"
    assert format_pc4s([]) == ""


# --- deep links and pickers -----------------------------------------------------------------


def test_deeplink_to_an_area(areas: Areas) -> None:
    resolved = areas.resolve_deeplink("utrecht-overvecht")
    assert resolved is not None
    assert resolved[0].code == "utrecht-overvecht" and resolved[1] is None


@pytest.mark.parametrize("code", ["overvecht-noord", "Overvecht_Noord", " overvecht-noord "])
def test_deeplink_to_a_neighbourhood(areas: Areas, code: str) -> None:
    resolved = areas.resolve_deeplink(code)
    assert resolved is not None
    area, hood = resolved
    assert area.code == "utrecht-overvecht"
    assert hood is not None and hood.code == "overvecht-noord"
    assert areas.neighbourhood("overvecht-noord") == resolved


@pytest.mark.parametrize(
    "code", ["", "nowhere", "utrecht overvecht", "überall", "a" * 65, "utrecht-overvecht/../x"]
)
def test_deeplink_to_nothing(areas: Areas, code: str) -> None:
    assert areas.resolve_deeplink(code) is None


def test_get_and_neighbourhood_misses(areas: Areas) -> None:
    assert areas.get("overvecht-noord") is None  # a neighbourhood is not an area
    assert areas.neighbourhood("utrecht-overvecht") is None
    assert "rotterdam-zuid" in areas


def test_municipalities_for_picker_buttons(areas: Areas) -> None:
    municipalities = areas.municipalities()
    assert len(municipalities) == 19
    assert [area.code for area in municipalities["Amsterdam"]] == [
        "amsterdam-zuidoost",
        "amsterdam-nieuw-west",
    ]
    names = list(municipalities)
    assert names.index("Delft") < names.index("Den Haag") < names.index("Dordrecht")


# --- checking edited files ------------------------------------------------------------------

VALID = """\
version: 1
areas:
  - code: stad-oost
    name: Stad Oost
    municipality: Stad
    municipality_code: GM0001
    neighbourhoods:
      - code: stad-oost-a
        name: Buurt A
        postcodes: [1234, "1235-1236"]
      - code: stad-oost-b
        name: Buurt B
        postcodes: [1236]
  - code: dorp-west
    name: Dorp West
    municipality: Dorp
    municipality_code: GM0002
    postcodes_partly: 2000-2001
    neighbourhoods:
      - code: dorp-west-c
        name: Buurt C
"""


def write(tmp_path: Path, text: str, name: str = "areas.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[Problem]:
    return check_areas_file(write(tmp_path, text))[1]


def only(problems: list[Problem], level: str = "error") -> Problem:
    matching = [problem for problem in problems if problem.level == level]
    assert len(matching) == 1, [str(problem) for problem in problems]
    return matching[0]


def test_a_valid_custom_file_loads(tmp_path: Path) -> None:
    areas = load_areas(write(tmp_path, VALID))
    assert [area.code for area in areas] == ["stad-oost", "dorp-west"]
    assert areas.warnings == ()
    assert isinstance(areas.lookup_postcode("1236"), Ambiguous)
    found = areas.lookup_postcode("1235 AA")
    assert isinstance(found, Found) and found.neighbourhood.code == "stad-oost-a"
    # An area-wide "partly" PC4 with a single neighbourhood still asks (it may be elsewhere).
    assert isinstance(areas.lookup_postcode("2001"), Ambiguous)


def test_duplicate_code_names_both_lines(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, VALID.replace("code: stad-oost-b", "code: stad-oost-a")))
    assert problem.line == 11
    assert "duplicate code 'stad-oost-a' (first on line 8)" in problem.message
    assert str(problem).startswith(f"{tmp_path / 'areas.yaml'}:11: error: ")


def test_neighbourhood_code_may_not_repeat_an_area_code(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, VALID.replace("code: dorp-west-c", "code: stad-oost")))
    assert "duplicate code 'stad-oost'" in problem.message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("code: stad-oost-a", "code: Stad_Oost", "is not a slug"),
        ("code: stad-oost-a", "code: stad--oost", "is not a slug"),
        ("code: dorp-west\n", "code: dorp-west-met-een-veel-te-lange-code\n", "longer than 24"),
        ("postcodes: [1236]", "postcodes: [12AB]", "bad postcode"),
        ("postcodes: [1236]", "postcodes: [0123]", "not a PC4"),
        ("postcodes: [1236]", "postcodes: [123]", "bad postcode"),
        ("postcodes: [1236]", "postcodes: [1240-1236]", "runs backwards"),
        ("postcodes: [1236]", "postcodes: [[1236]]", "bad postcode"),
        ("postcodes: [1236]", "postcodes: {a: 1}", "must be a list"),
        ("municipality_code: GM0002", "municipality_code: 0002", "not a CBS code"),
        ("name: Buurt C", "name: ''", "must be non-empty text"),
        ("name: Buurt C", "name: Buurt C\n        verified: ja", "true or false"),
        ("        name: Buurt C\n", "", "missing field 'name'"),
        ("    municipality: Dorp\n", "", "missing field 'municipality'"),
        (
            "postcodes: [1236]",
            "postcode: [1236]",
            "unknown field 'postcode' (did you mean 'postcodes'?)",
        ),
        (
            "    neighbourhoods:\n      - code: dorp-west-c\n        name: Buurt C\n",
            "    neighbourhoods: []\n",
            "at least one neighbourhood",
        ),
        ("name: Stad Oost", "name: Stad Oost\n    name: Stad", "is given twice"),
    ],
)
def test_broken_files_give_one_clear_error(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in VALID
    problem = only(problems_of(tmp_path, VALID.replace(old, new, 1)))
    assert expected in problem.message
    assert problem.line is not None
    assert "\n" not in str(problem)


def test_error_line_points_at_the_bad_postcode(tmp_path: Path) -> None:
    text = VALID.replace(
        'postcodes: [1234, "1235-1236"]', "postcodes:\n          - 1234\n          - 99999"
    )
    problem = only(problems_of(tmp_path, text))
    assert problem.line == 12


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    problem = only(problems_of(tmp_path, VALID.replace("name: Buurt B", "name: [Buurt B")))
    assert problem.message.startswith("YAML syntax error")
    assert problem.line is not None and problem.line >= 12


@pytest.mark.parametrize("text", ["", "- just a list\n", "areas: {}\n", "areas: []\n"])
def test_files_without_areas(tmp_path: Path, text: str) -> None:
    assert only(problems_of(tmp_path, text)).level == "error"


def test_missing_file(tmp_path: Path) -> None:
    problem = only(check_areas_file(tmp_path / "nope.yaml")[1])
    assert "file not found" in problem.message


def test_overlap_between_areas_is_a_warning(tmp_path: Path) -> None:
    text = VALID.replace("postcodes_partly: 2000-2001", "postcodes_partly: [2000-2001, 1234]")
    problems = problems_of(tmp_path, text)
    warning = only(problems, "warning")
    assert "'dorp-west' and 'stad-oost' both list 1234" in warning.message
    assert not [problem for problem in problems if problem.level == "error"]
    areas = load_areas(write(tmp_path, text))
    assert areas.warnings == (warning,)
    result = areas.lookup_postcode("1234")
    assert isinstance(result, Ambiguous) and result.area is None
    assert {area.code for area in result.areas} == {"stad-oost", "dorp-west"}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("postcodes: [1236]", "postcodes: [1236, 1236]", "listed twice"),
        ("postcodes: [1236]", "postcodes: [1236]\n        postcodes_partly: [1236]", "in both"),
        ("postcodes: [1236]", "postcodes: [1000-1200]", "covers 201 PC4s"),
        ("name: Buurt C", "name: " + "Heel lange naam " * 4, "long for a button"),
    ],
)
def test_suspicious_data_warns(tmp_path: Path, old: str, new: str, expected: str) -> None:
    warning = only(problems_of(tmp_path, VALID.replace(old, new, 1)), "warning")
    assert expected in warning.message


def test_load_areas_refuses_a_broken_file(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("code: stad-oost-b", "code: BAD"))
    with pytest.raises(AreasFileError) as caught:
        load_areas(path)
    assert len(caught.value.problems) == 1
    assert "BAD" in str(caught.value)


# --- the CLI --------------------------------------------------------------------------------


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["areas", *args])
    return result.exit_code, result.output


def test_cli_list_shows_every_area(areas: Areas) -> None:
    code, output = run("list")
    assert code == 0
    for area in areas:
        assert area.code in output
    assert "Utrecht (GM0344)" in output
    assert "3561-3566" in output
    assert "20 areas, 74 neighbourhoods" in output


def test_cli_list_one_area() -> None:
    code, output = run("list", "--area", "leeuwarden-oost")
    assert code == 0
    assert "Leeuwarden (GM0080)" in output
    assert "leeuwarden-bilgaard" in output and "partly 8918-8919" in output
    assert "8923" in output
    # A neighbourhood code shows its area.
    assert run("list", "--area", "overvecht-noord")[1].startswith("Utrecht Overvecht")


def test_cli_list_unknown_area_fails() -> None:
    code, output = run("list", "--area", "atlantis")
    assert code == 1
    assert "no area or neighbourhood with code 'atlantis'" in output


def test_cli_list_custom_file(tmp_path: Path) -> None:
    code, output = run("list", "--file", str(write(tmp_path, VALID)))
    assert code == 0
    assert "stad-oost" in output and "utrecht-overvecht" not in output


def test_cli_list_broken_file_fails(tmp_path: Path) -> None:
    code, output = run("list", "--file", str(write(tmp_path, "areas: []\n")))
    assert code == 1
    assert "'areas' must be a non-empty list" in output


def test_cli_validate_shipped_file() -> None:
    code, output = run("validate")
    assert code == 0
    assert "OK: 20 areas" in output


def test_cli_validate_broken_file(tmp_path: Path) -> None:
    broken = VALID.replace("code: stad-oost-b", "code: stad-oost-a").replace(
        "municipality_code: GM0002", "municipality_code: X"
    )
    path = write(tmp_path, broken)
    code, output = run("validate", str(path))
    assert code == 1
    lines = output.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{path}:") and ": error: " in line for line in lines)


def test_cli_validate_warnings_pass_unless_strict(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("postcodes: [1236]", "postcodes: [1236, 1236]"))
    code, output = run("validate", str(path))
    assert code == 0
    assert ": warning: " in output and "1 warning(s)" in output
    assert run("validate", "--strict", str(path))[0] == 1


def test_cli_lookup() -> None:
    assert run("lookup", "3563 AB")[1].strip() == (
        "3563: in focus area Utrecht Overvecht (utrecht-overvecht): Overvecht-Noord "
        "(overvecht-noord)"
    )
    assert run("lookup", "3564")[1].startswith(
        "3564: in focus area Utrecht Overvecht (utrecht-overvecht): the bot asks: "
    )
    assert run("lookup", "5011")[1].strip() == (
        "5011: in focus municipality Tilburg (GM0855), not in the area data: the bot asks "
        'about Tilburg Noordwest (tilburg-noordwest), with "none of these"'
    )
    assert run("lookup", "9999")[1].strip() == (
        "9999: not in a focus municipality: the bot says the survey is not for this neighbourhood"
    )
    assert run("lookup", "hallo") == (1, "not a Dutch postcode (format)\n")


def test_cli_lookup_tells_the_three_cases_for_every_area() -> None:
    areas = load_areas()
    for area in areas:
        output = run("lookup", str(area.all_postcodes[0]))[1]
        assert output.startswith(f"{area.all_postcodes[0]:04d}: in focus area "), output
        assert f"({area.code})" in output


def test_cli_validate_fails_on_an_area_without_postcodes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        VALID.replace("        postcodes: [1236]\n", "").replace(
            '        postcodes: [1234, "1235-1236"]\n', ""
        ),
    )
    code, output = run("validate", str(path))
    assert code == 1
    assert "area 'stad-oost': no postcodes" in output
    assert ": error: " in output
