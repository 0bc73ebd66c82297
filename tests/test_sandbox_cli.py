"""`buurtstem sandbox` checks the survey first; each survey content gets its own database."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bot.cli import cli
from sandbox.runner import survey_database
from surveys.loader import DEFAULT_SURVEY_PATH, load_survey


def test_broken_survey_stops_the_sandbox_with_the_validator_lines(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        DEFAULT_SURVEY_PATH.read_text(encoding="utf-8").replace("type: grade", "type: grad", 1),
        encoding="utf-8",
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["sandbox", "--survey", str(broken)])
    assert result.exit_code == 1
    validate = runner.invoke(cli, ["survey", "validate", str(broken)])
    assert validate.exit_code == 1
    assert validate.stdout.strip() and validate.stdout.strip() in result.stdout
    assert "did not start" in result.stderr


def test_each_survey_content_gets_its_own_database(tmp_path: Path) -> None:
    survey = load_survey(DEFAULT_SURVEY_PATH)
    first = survey_database(tmp_path, survey)
    assert "New sandbox database" in first.notes[0]
    first.path.write_bytes(b"")
    assert survey_database(tmp_path, survey).path == first.path
    changed_file = tmp_path / "changed.yaml"
    changed_file.write_text(
        DEFAULT_SURVEY_PATH.read_text(encoding="utf-8").replace(
            "  nl: Buurtpeiling leefbaarheid", "  nl: Proef buurtpeiling leefbaarheid", 1
        ),
        encoding="utf-8",
    )
    changed = load_survey(changed_file)
    assert changed.version == survey.version and changed.content_hash != survey.content_hash
    other = survey_database(tmp_path, changed)
    assert other.path != first.path
    assert "changed since an earlier sandbox run" in other.notes[0]
    fresh = survey_database(tmp_path, survey, fresh=True)
    assert not fresh.path.exists() and "emptied" in fresh.notes[0]
