"""`buurtstem settings` and the generated settings table in docs/deploy.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import Field

from bot.cli import cli
from bot.commands.settings import (
    DOC_END,
    DOC_START,
    markdown_table,
    plain_text,
    replace_section,
    setting_docs,
)
from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy.md"


class MoreSettings(Settings):
    """Settings with one field added, as a developer would add it."""

    brand_new: int = Field(default=3, description="A setting nobody documented yet.")


def test_deploy_doc_settings_table_is_current() -> None:
    document = DEPLOY.read_text(encoding="utf-8")
    assert replace_section(document, markdown_table()) == document, (
        "docs/deploy.md is out of date: run scripts/gen-deploy-doc"
    )
    for doc in setting_docs():
        assert f"`{doc.env_var}`" in document


def test_a_new_setting_makes_the_doc_stale() -> None:
    document = DEPLOY.read_text(encoding="utf-8")
    regenerated = replace_section(document, markdown_table(MoreSettings))
    assert regenerated != document
    assert "`BUURTSTEM_BRAND_NEW` | int | `3` | A setting nobody documented yet. |" in regenerated
    # Only the marked section changes.
    before, after = document.split(DOC_START)[0], document.split(DOC_END)[1]
    assert regenerated.startswith(before) and regenerated.endswith(after)


def test_replace_section_needs_markers() -> None:
    with pytest.raises(ValueError):
        replace_section("# no markers here\n", markdown_table())


def test_setting_docs_cover_every_field() -> None:
    docs = {doc.name: doc for doc in setting_docs()}
    assert list(docs) == list(Settings.model_fields)
    assert docs["database_url"].env_var == "BUURTSTEM_DATABASE_URL"
    assert docs["token"].default == "(unset)"
    assert docs["admin_ids"].default == "(empty)"
    assert docs["log_format"].type == "'text' | 'json'"
    assert "at least 5" in docs["min_cell_size"].description
    assert all(doc.description for doc in docs.values())


def test_settings_command_plain_and_markdown() -> None:
    runner = CliRunner()
    plain = runner.invoke(cli, ["settings"])
    assert plain.exit_code == 0, plain.output
    assert plain.output == plain_text()
    assert "BUURTSTEM_WEBHOOK_SECRET  (str | None, default: (unset))" in plain.output
    markdown = runner.invoke(cli, ["settings", "--markdown"])
    assert markdown.exit_code == 0
    rows = [line for line in markdown.output.splitlines() if line.startswith("| `BUURTSTEM_")]
    assert len(rows) == len(Settings.model_fields)


def test_settings_command_never_prints_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUURTSTEM_TOKEN", "999999:do-not-print-this-token-value-anywhere")
    result = CliRunner().invoke(cli, ["settings", "--markdown"])
    assert "do-not-print" not in result.output


def test_gen_deploy_doc_script_fixes_a_stale_copy(tmp_path: Path) -> None:
    stale = tmp_path / "deploy.md"
    stale.write_text(f"# Deploy\n\n{DOC_START}\n| old |\n{DOC_END}\n\nafter\n", encoding="utf-8")
    script = ROOT / "scripts" / "gen-deploy-doc"
    env = {"PYTHON": sys.executable, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    check = subprocess.run(
        [script, "--check", stale], env=env, capture_output=True, text=True, check=False
    )
    assert check.returncode == 1
    subprocess.run([script, stale], env=env, check=True, capture_output=True)
    text = stale.read_text(encoding="utf-8")
    assert text == f"# Deploy\n\n{DOC_START}\n{markdown_table()}{DOC_END}\n\nafter\n"
    again = subprocess.run([script, "--check", stale], env=env, capture_output=True, check=False)
    assert again.returncode == 0
