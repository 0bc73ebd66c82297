"""Terminal output for the CLI: tables, Telegram HTML as terminal styles, confirmations.

On a terminal, rich draws tables to the screen's width and shows bold and italic as styles;
piped or redirected (not a TTY), output is plain text without colour codes, and tables never
wrap or cut cells, so `grep` and spreadsheets get whole values.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from typing import Any, NoReturn, TextIO

import click
from rich import box
from rich.console import Console
from rich.style import Style
from rich.table import Table
from rich.text import Text

# Wide enough that piped tables never wrap; a terminal uses its own width.
PIPE_WIDTH = 1000
# rich's SIMPLE_HEAD with '-' under the header: piped output stays plain ASCII.
ASCII_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def console(file: TextIO | None = None) -> Console:
    """A rich console on stdout (looked up now: click's test runner swaps it per call)."""
    stream = file or sys.stdout
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    return Console(
        file=stream,
        width=None if is_tty else PIPE_WIDTH,
        no_color=not is_tty,
        highlight=False,
        emoji=False,
        markup=False,
        soft_wrap=not is_tty,
    )


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    right: Sequence[str] = (),
    plain: bool = False,
) -> Table:
    """A table: bold header, a rule under it, no frame; `right` aligns numbers; `plain` ASCII."""
    grid = Table(
        box=ASCII_HEAD if plain else box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
    )
    for name in columns:
        grid.add_column(name, justify="right" if name in right else "left", overflow="fold")
    for row in rows:
        grid.add_row(*[cell if isinstance(cell, Text) else Text(str(cell)) for cell in row])
    return grid


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Sequence[str] = ()
) -> None:
    """Print a table to stdout (see `table`)."""
    out = console()
    if out.is_terminal:
        out.print(table(columns, rows, right=right))
        return
    with out.capture() as captured:
        out.print(table(columns, rows, right=right, plain=True))
    # Piped: no padding after the last column (rich fills cells to the column width).
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


# ---- Telegram HTML ---------------------------------------------------------------------------

_STYLES = {
    "b": Style(bold=True),
    "strong": Style(bold=True),
    "i": Style(italic=True),
    "em": Style(italic=True),
    "u": Style(underline=True),
    "ins": Style(underline=True),
    "s": Style(strike=True),
    "strike": Style(strike=True),
    "del": Style(strike=True),
    "code": Style(color="cyan"),
    "pre": Style(color="cyan"),
    "tg-spoiler": Style(reverse=True),
    "blockquote": Style(italic=True, dim=True),
    "a": Style(underline=True, color="blue"),
}


class _TelegramHTML(HTMLParser):
    """Telegram's small HTML subset to a rich Text: tags become styles, entities characters."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = Text()
        self._open: list[tuple[str, Style | None, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        style = _STYLES.get(tag)
        if tag == "span" and values.get("class") == "tg-spoiler":
            style = _STYLES["tg-spoiler"]
        self._open.append((tag, style, values.get("href") if tag == "a" else None))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                _, _, href = self._open.pop(index)
                if href:
                    self.text.append(f" ({href})", style=Style(dim=True))
                return

    def handle_data(self, data: str) -> None:
        styles = [style for _, style, _ in self._open if style is not None]
        self.text.append(data, style=Style.combine(styles) if styles else None)


def telegram_html(html_text: str) -> Text:
    """Telegram HTML (what the bot sends with parse_mode HTML) as styled terminal text."""
    parser = _TelegramHTML()
    parser.feed(html_text)
    parser.close()
    return parser.text


def print_telegram_html(html_text: str) -> None:
    """Print a Telegram HTML message: styles on a terminal, plain text when piped."""
    console().print(telegram_html(html_text))


# ---- confirmations -------------------------------------------------------------------------


def confirm(question: str, yes: bool, refused: str) -> None:
    """Ask before a destructive step unless --yes was given; `refused` is said on no."""
    if yes:
        return
    try:
        agreed = click.confirm(question, default=False)
    except click.Abort:  # end of input (a script without --yes) or Ctrl-C
        click.echo("", err=True)
        agreed = False
    if not agreed:
        _refuse(refused)


def _refuse(message: str) -> NoReturn:
    click.echo(f"{message} (add --yes to skip the question)", err=True)
    sys.exit(1)


YES_OPTION = click.option(
    "--yes", "-y", "yes", is_flag=True, help="Do it without asking for confirmation."
)
