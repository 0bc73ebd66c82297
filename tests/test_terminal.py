"""Terminal output of the CLI: tables, Telegram HTML as styles (TTY) or plain text (piped)."""

from __future__ import annotations

import io

import click
from click.testing import CliRunner

from bot.terminal import confirm, console, print_table, print_telegram_html, telegram_html

DIGEST = (
    "<b>Delft West</b> &amp; omgeving: <i>indicatief</i>\n"
    '<a href="https://example.org/x">meer</a> · <code>n = 12</code>'
)


class FakeTerminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_telegram_html_becomes_styled_text_without_tags() -> None:
    text = telegram_html(DIGEST)
    assert text.plain == (
        "Delft West & omgeving: indicatief\nmeer (https://example.org/x) · n = 12"
    )
    bold = [span for span in text.spans if span.style and span.style.bold]  # type: ignore[union-attr]
    assert [text.plain[s.start : s.end] for s in bold] == ["Delft West"]
    italic = [span for span in text.spans if span.style and span.style.italic]  # type: ignore[union-attr]
    assert [text.plain[s.start : s.end] for s in italic] == ["indicatief"]


def test_on_a_terminal_bold_and_italic_are_terminal_styles() -> None:
    screen = FakeTerminal()
    console(screen).print(telegram_html(DIGEST))
    shown = screen.getvalue()
    assert "\x1b[1m" in shown and "\x1b[3m" in shown  # bold, italic
    assert "<b>" not in shown and "&amp;" not in shown


def test_piped_output_is_plain() -> None:
    @click.command()
    def show() -> None:
        print_telegram_html(DIGEST)
        print_table(("id", "name"), [("1", "Alliantie Delft"), ("12", "X")], right=("id",))

    result = CliRunner().invoke(show)
    assert result.exit_code == 0
    assert "\x1b[" not in result.output and "<" not in result.output
    lines = result.output.splitlines()
    assert lines[0] == "Delft West & omgeving: indicatief"
    assert lines[2:] == ["id   name", "-" * 20, " 1   Alliantie Delft", "12   X"]
    assert all(line == line.rstrip() for line in lines)


def test_confirm_asks_and_yes_skips() -> None:
    @click.command()
    @click.option("--yes", is_flag=True)
    def wipe(yes: bool) -> None:
        confirm("Wipe it?", yes, "Not wiped.")
        click.echo("wiped")

    runner = CliRunner()
    assert runner.invoke(wipe, ["--yes"]).output == "wiped\n"
    said_no = runner.invoke(wipe, input="n\n")
    assert said_no.exit_code == 1 and "Wipe it? [y/N]" in said_no.output
    assert "Not wiped. (add --yes to skip the question)" in said_no.output
    assert runner.invoke(wipe, input="").exit_code == 1  # no answer: nothing happens
    assert runner.invoke(wipe, input="y\n").output.endswith("wiped\n")
