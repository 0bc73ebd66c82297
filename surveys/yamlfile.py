"""The files people write (surveys, areas, rounds): one YAML reader, one problem type.

Every file a programme team edits is read here: the same checks of the file (there, a file,
text, UTF-8), the same YAML rules (only true/false are booleans, so `no`, `on` and `yes` stay
text; a tab in an indentation is one clear line per tab, not a parser message), the same words
for a syntax error, and one `Problem` that says where (file and line) and what. Readers then
walk the composed node tree (every node knows its line) or take plain values with their lines
attached (`with_lines`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

TAB_MESSAGE = "use spaces, not tabs (YAML does not allow tabs for indentation)"
NULL_TAG = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, printed `file:line: [level: ][question 'q': ]message`.

    `file` is where the value was written: a file, or an option (`--opens`); empty when
    unknown. `level` is given by checks that also warn (areas files), and then printed.
    """

    file: str
    line: int | None
    message: str
    question: str | None = None
    level: Literal["error", "warning"] | None = None

    @property
    def is_error(self) -> bool:
        """Everything but a warning stops the file from being used."""
        return self.level != "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else self.file
        level = f"{self.level}: " if self.level else ""
        about = f"question '{self.question}': " if self.question else ""
        text = f"{level}{about}{self.message}"
        return f"{where}: {text}" if where else text


class ProblemsError(ValueError):
    """A file that cannot be used; `problems` lists everything found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def given_twice(key: object, first_line: int, within: str = "") -> str:
    """The message for a key written twice in one mapping."""
    where = f" in {within}" if within else ""
    return f"'{key}' is given twice{where} (also on line {first_line})"


class Loader(yaml.SafeLoader):
    """SafeLoader where only true/false are booleans: 'no', 'yes', 'on' stay text."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


# ---- reading -------------------------------------------------------------------------------


def read_text(path: str | Path) -> tuple[str, str]:
    """The display name and text of a file; ProblemsError when it is not readable UTF-8 text."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ProblemsError([Problem(name, None, "file not found")]) from None
    except IsADirectoryError:
        raise ProblemsError([Problem(name, None, "this is a folder, not a file")]) from None
    except OSError as exc:
        raise ProblemsError(
            [Problem(name, None, f"cannot read the file: {exc.strerror or exc}")]
        ) from None
    if b"\x00" in data:
        raise ProblemsError([Problem(name, None, "this is not a text file (binary data)")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ProblemsError(
            [Problem(name, line, "the file is not UTF-8 text; save it as UTF-8")]
        ) from None
    return name, text


def tab_problems(name: str, text: str) -> list[Problem]:
    """One problem per line indented with a tab: YAML stops at the first, editors show none."""
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            problems.append(Problem(name, number, TAB_MESSAGE))
    return problems


def compose(name: str, text: str) -> Node | None:
    """The YAML node tree of a text (None when it holds no document); ProblemsError otherwise.

    Tabs are reported one per line; a syntax error names its line, with the usual cause for
    people who do not write YAML every day.
    """
    if "\x00" in text:
        raise ProblemsError([Problem(name, None, "this is not a text file (binary data)")])
    tabs = tab_problems(name, text)
    if tabs:
        raise ProblemsError(tabs)
    try:
        return yaml.compose(text, Loader=Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = " ".join(part for part in (exc.context, exc.problem) if part)
        if "'\\t'" in detail:
            message = TAB_MESSAGE
        else:
            message = (
                f"YAML syntax error: {detail or 'not valid YAML'} (tip: put texts that contain "
                ": , ? # [ ] { } or quotes between double quotes)"
            )
        raise ProblemsError([Problem(name, line, message)]) from None
    except yaml.YAMLError as exc:
        raise ProblemsError([Problem(name, None, f"YAML syntax error: {exc}")]) from None
    except RecursionError:
        raise ProblemsError([Problem(name, None, "the file is nested too deeply")]) from None


def read_yaml(path: str | Path) -> tuple[str, Node | None]:
    """read_text, then compose: a file's name and node tree; ProblemsError for what is wrong."""
    name, text = read_text(path)
    return name, compose(name, text)


# ---- nodes ---------------------------------------------------------------------------------


def line_of(node: Node) -> int:
    """The 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


def kind_of(node: Node) -> str:
    """What a node is, in words for a problem: a mapping, a list, empty, or its value."""
    if isinstance(node, MappingNode):
        return "a list of 'key: value' lines"
    if isinstance(node, SequenceNode):
        return "a list ('- ' lines)"
    if node.tag == NULL_TAG:
        return "empty"
    return f"'{node.value}'"


def as_written(node: Node) -> Any:
    """A value exactly as written: text for scalars (dates stay as typed), lists, mappings."""
    if isinstance(node, ScalarNode):
        return None if node.tag == NULL_TAG else str(node.value)
    if isinstance(node, SequenceNode):
        return [as_written(item) for item in node.value]
    if isinstance(node, MappingNode):
        return {str(as_written(key)): as_written(value) for key, value in node.value}
    return None  # pragma: no cover - composed YAML has only these three kinds


# ---- plain values with their lines ---------------------------------------------------------


class LineMap(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys are."""

    line: int
    key_lines: dict[Any, int]
    raw: dict[Any, str | None]


class LineSeq(list[Any]):
    """A YAML sequence that remembers its items' lines and raw scalar text."""

    line: int
    item_lines: list[int]
    raw: list[str | None]


class _LineConstructor(Loader):
    """Builds LineMap/LineSeq and collects repeated keys instead of dropping them."""

    def __init__(self) -> None:
        super().__init__("")
        self.repeated: list[tuple[int, Any, int]] = []


def _scalar_text(node: Node) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def _construct_map(loader: _LineConstructor, node: MappingNode) -> LineMap:
    loader.flatten_mapping(node)
    result = LineMap()
    result.line = line_of(node)
    result.key_lines = {}
    result.raw = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool):
            key = str(key)
        line = line_of(key_node)
        if key in result:
            loader.repeated.append((line, key, result.key_lines[key]))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
        result.raw[key] = _scalar_text(value_node)
    return result


def _construct_seq(loader: _LineConstructor, node: SequenceNode) -> LineSeq:
    result = LineSeq(loader.construct_object(child, deep=True) for child in node.value)
    result.line = line_of(node)
    result.item_lines = [line_of(child) for child in node.value]
    result.raw = [_scalar_text(child) for child in node.value]
    return result


_LineConstructor.add_constructor("tag:yaml.org,2002:map", _construct_map)  # type: ignore[arg-type]
_LineConstructor.add_constructor("tag:yaml.org,2002:seq", _construct_seq)  # type: ignore[arg-type]


def with_lines(
    name: str, node: Node | None, level: Literal["error", "warning"] | None = None
) -> tuple[Any, list[Problem]]:
    """Plain values (LineMap, LineSeq, scalars) of a node tree, and a problem per repeated key."""
    if node is None:
        return None, []
    constructor = _LineConstructor()
    try:
        data = constructor.construct_document(node)
    except yaml.YAMLError as exc:  # e.g. `!!int abc` or a `!!python/...` tag
        problem = getattr(exc, "problem", None) or str(exc)
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(name, line, f"YAML syntax error: {problem}", level=level)]
    finally:
        constructor.dispose()
    return data, [
        Problem(name, line, given_twice(key, first), level=level)
        for line, key, first in constructor.repeated
    ]
