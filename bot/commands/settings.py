"""`buurtstem settings`: every setting with its environment variable, default and help."""

from __future__ import annotations

import re
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any

import click
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from bot.settings import Settings

DOC_START = "<!-- settings:start -->"
DOC_END = "<!-- settings:end -->"


@dataclass(frozen=True, slots=True)
class SettingDoc:
    """One setting as documented: name, env var, type, default and help."""

    name: str
    env_var: str
    type: str
    default: str
    description: str


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "(unset)"
    if value in ([], {}, ""):
        return "(empty)"
    return str(value)


def _limits(field: FieldInfo) -> str:
    """Constraints such as ge=5 as a short note ("at least 5")."""
    words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
    notes = [
        f"{word} {getattr(item, attr)}"
        for item in field.metadata
        for attr, word in words.items()
        if getattr(item, attr, None) is not None
    ]
    return "; ".join(notes)


def setting_docs(settings_cls: type[BaseSettings] = Settings) -> list[SettingDoc]:
    """Every field of `settings_cls`, in declaration order."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    docs = []
    for name, field in settings_cls.model_fields.items():
        description = " ".join((field.description or "").split())
        limits = _limits(field)
        if limits:
            description = f"{description} ({limits})" if description else limits
        docs.append(
            SettingDoc(
                name=name,
                env_var=(prefix + name).upper(),
                type=_type_name(field.annotation),
                default=_default(field),
                description=description,
            )
        )
    return docs


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(settings_cls: type[BaseSettings] = Settings) -> str:
    """The settings as a Markdown table (the section between the markers in docs/deploy.md)."""
    lines = [
        "| environment variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for doc in setting_docs(settings_cls):
        # Placeholders such as "(unset)" are words, not values to type: no code format.
        default = doc.default if doc.default.startswith("(") else f"`{doc.default}`"
        lines.append(
            f"| `{doc.env_var}` | {_cell(doc.type)} | {_cell(default)} | {_cell(doc.description)} |"
        )
    return "\n".join(lines) + "\n"


def plain_text(settings_cls: type[BaseSettings] = Settings, width: int = 80) -> str:
    """The settings as readable text for a terminal."""
    blocks = []
    for doc in setting_docs(settings_cls):
        body = textwrap.fill(
            doc.description, width=width, initial_indent="    ", subsequent_indent="    "
        )
        blocks.append(f"{doc.env_var}  ({doc.type}, default: {doc.default})\n{body}")
    return "\n\n".join(blocks) + "\n"


_SECTION = re.compile(re.escape(DOC_START) + r".*?" + re.escape(DOC_END), re.DOTALL)


def replace_section(document: str, table: str) -> str:
    """`document` with the text between the settings markers replaced by `table`."""
    if not _SECTION.search(document):
        raise ValueError(f"the document has no {DOC_START} ... {DOC_END} section")
    block = f"{DOC_START}\n{table}{DOC_END}"
    return _SECTION.sub(lambda _match: block, document, count=1)


@click.command("settings")
@click.option("--markdown", is_flag=True, help="Print a Markdown table instead of plain text.")
def command(markdown: bool) -> None:
    """Show every setting: its environment variable, default and meaning (never its value)."""
    click.echo(markdown_table() if markdown else plain_text(), nl=False)
