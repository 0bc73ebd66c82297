"""The import contract: buurtstem's layers import one way (docs/architecture.md).

Bottom to top; a module may import its own layer and the layers below it, never above:

  1 pure       surveys, digests, locales, journey     no Telegram, no SQLAlchemy
  2 storage    storage                                every SQL statement; no Telegram
  3 use cases  usecases                               own their transactions; no Telegram
  4 adapters   handlers                               thin PTB handlers
  5 wiring     bot (but its CLI)                      app, jobs, outbox sender, runtime
  6 sandbox    sandbox                                emulator and the browser sandbox
  7 CLI        bot.cli, bot.commands                  every command, the sandbox's too

Leaves: bot.settings (the one settings object) and bot.clock import nothing of buurtstem, and
every layer may import them. SQL statements (select, text, insert, ...) are built in storage/
only. There are no import cycles between modules, and no imports inside functions to dodge one:
an import of buurtstem's own code is always at module level; an import of another library
inside a function (a heavy optional one, like openpyxl for xlsx) carries a comment saying why.

The checker reads the source (ast), imports nothing, and is itself tested on small examples.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("surveys", "digests", "locales", "journey", "storage", "usecases", "handlers", "bot")
PACKAGES += ("sandbox",)
LEAVES = frozenset({"bot.settings", "bot.clock"})
LAYER_NAMES = {
    1: "pure",
    2: "storage",
    3: "usecases",
    4: "handlers",
    5: "bot",
    6: "sandbox",
    7: "CLI",
}
PURE = ("surveys", "digests", "locales", "journey")
# Libraries a layer must not import.
FORBIDDEN_LIBRARIES = {
    1: ("telegram", "sqlalchemy", "alembic"),
    2: ("telegram",),
    3: ("telegram", "alembic"),
}
# What builds SQL: only storage/ may import these from SQLAlchemy.
SQL_BUILDERS = frozenset(
    {
        "select",
        "insert",
        "update",
        "delete",
        "text",
        "func",
        "and_",
        "or_",
        "not_",
        "exists",
        "case",
        "literal",
        "column",
        "table",
        "create_engine",
        "inspect",
    }
)
SQL_MODULES = ("sqlalchemy.sql", "sqlalchemy.dialects", "sqlalchemy.pool")


def layer(module: str) -> int:
    """The layer of a buurtstem module (dotted name)."""
    top = module.split(".", 1)[0]
    if top in PURE:
        return 1
    if top == "storage":
        return 2
    if top == "usecases":
        return 3
    if top == "handlers":
        return 4
    if top == "sandbox":
        return 6
    if module == "bot.cli" or module == "bot.commands" or module.startswith("bot.commands."):
        return 7
    if top == "bot":
        return 5
    raise ValueError(f"{module} is in no layer")


@dataclass(frozen=True)
class Import:
    """One import statement's target as written, where it stands, and how."""

    module: str  # the importing module
    target: str  # the imported module (dotted); for `from a import b` this is `a` or `a.b`
    names: tuple[str, ...]  # names imported with `from ... import`
    line: int
    in_function: bool
    commented: bool  # a comment on the line or the line above


def module_name(path: Path, root: Path) -> str:
    """`storage/rounds.py` -> `storage.rounds`; a package's __init__ is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str, is_package: bool = False) -> Iterator[Import]:
    """Every import of a module's source, with whether it stands inside a function."""
    lines = source.splitlines()
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]

    def commented(line: int) -> bool:
        """A comment on the line, or above it (over a run of imports: one comment for all)."""
        if "#" in lines[line - 1]:
            return True
        for above in reversed(lines[: line - 1]):
            text = above.strip()
            if text.startswith("#"):
                return True
            if not text.startswith(("import ", "from ")):
                return False
        return False

    def visit(node: ast.AST, in_function: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(
                        module, alias.name, (), child.lineno, in_function, commented(child.lineno)
                    )
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                names = tuple(alias.name for alias in child.names)
                yield Import(
                    module, base, names, child.lineno, in_function, commented(child.lineno)
                )
            yield from visit(child, inside)

    yield from visit(tree, False)


def ours(target: str) -> bool:
    """Whether a dotted name is buurtstem's own code."""
    return target.split(".", 1)[0] in PACKAGES


def resolve(imp: Import, modules: Iterable[str]) -> list[str]:
    """The buurtstem modules an import loads: `from storage import rounds` is storage.rounds."""
    known = set(modules)
    if not imp.names:
        return [imp.target] if imp.target in known else []
    found = [f"{imp.target}.{name}" for name in imp.names if f"{imp.target}.{name}" in known]
    plain = [name for name in imp.names if f"{imp.target}.{name}" not in known]
    if plain and imp.target in known:
        found.append(imp.target)
    return found


def violations(sources: Mapping[str, str], packages: Iterable[str] = ()) -> list[str]:
    """Every breach of the contract in `sources` (module name -> source text)."""
    package_names = set(packages)
    found: list[str] = []
    edges: dict[str, set[str]] = {name: set() for name in sources}
    for module, source in sorted(sources.items()):
        own = layer(module)
        for imp in imports_of(module, source, module in package_names):
            where = f"{module}:{imp.line}"
            if imp.in_function:
                if ours(imp.target):
                    found.append(f"{where}: imports {imp.target} inside a function")
                elif not imp.commented:
                    found.append(
                        f"{where}: imports {imp.target} inside a function without a comment "
                        "saying why (only heavy optional libraries belong there)"
                    )
            top = imp.target.split(".", 1)[0]
            if top in FORBIDDEN_LIBRARIES.get(own, ()):
                found.append(f"{where}: {LAYER_NAMES[own]} imports {imp.target}")
            if top == "sqlalchemy" and own != 2:
                builders = sorted(SQL_BUILDERS & set(imp.names))
                if builders or imp.target.startswith(SQL_MODULES):
                    what = ", ".join(builders) or imp.target
                    found.append(f"{where}: builds SQL outside storage/ ({what})")
            loaded = resolve(imp, sources)
            for target in loaded or ([imp.target] if ours(imp.target) else []):
                if target == module:
                    continue
                if not imp.in_function and target in sources:
                    edges[module].add(target)
                if module in LEAVES:
                    found.append(f"{where}: {module} is a leaf and imports {target}")
                elif target not in LEAVES and layer(target) > own:
                    found.append(
                        f"{where}: {LAYER_NAMES[own]} imports {target} "
                        f"({LAYER_NAMES[layer(target)]}, a layer above)"
                    )
    found.extend(f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(edges))
    return found


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return [_path(group, edges) for group in groups]


def _path(group: list[str], edges: Mapping[str, set[str]]) -> list[str]:
    """A readable cycle through a group: a -> b -> ... -> a."""
    members = set(group)
    path = [group[0]]
    while True:
        nxt = sorted(edges[path[-1]] & members)
        step = next((n for n in nxt if n not in path), None)
        if step is None:
            closing = next(n for n in nxt if n in path)
            return [*path[path.index(closing) :], closing]
        path.append(step)


def project_sources(root: Path = ROOT) -> tuple[dict[str, str], set[str]]:
    """Every module of buurtstem's packages, by dotted name; and which of them are packages."""
    sources: dict[str, str] = {}
    packages: set[str] = set()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(path, root)
            sources[name] = path.read_text(encoding="utf-8")
            if path.name == "__init__.py":
                packages.add(name)
    return sources, packages


# ---- the contract on buurtstem -------------------------------------------------------------


def test_buurtstem_keeps_the_import_contract() -> None:
    sources, packages = project_sources()
    assert len(sources) > 50  # the packages were found
    found = violations(sources, packages)
    assert found == [], "\n".join(found)


# ---- the checker itself --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({"handlers.x": "from bot.app import build_application\n"}, "a layer above"),
        ({"handlers.x": "import bot.jobs\n"}, "a layer above"),
        ({"storage.x": "from usecases import round_tick\n"}, "a layer above"),
        ({"surveys.x": "from storage.models import Round\n"}, "a layer above"),
        ({"usecases.x": "from telegram import Bot\n"}, "usecases imports telegram"),
        ({"digests.x": "from sqlalchemy.orm import Session\n"}, "pure imports sqlalchemy"),
        ({"bot.x": "from sqlalchemy import select\n"}, "builds SQL outside storage/ (select)"),
        ({"bot.x": "from sandbox.runner import Sandbox\n"}, "a layer above"),
        ({"sandbox.x": "from bot.commands import run\n"}, "a layer above"),
        ({"bot.settings": "from storage.db import Database\n"}, "is a leaf"),
        (
            {"bot.x": "def f():\n    from storage.db import Database\n"},
            "imports storage.db inside a function",
        ),
        (
            {"storage.x": "def f():\n    import openpyxl\n"},
            "inside a function without a comment",
        ),
        (
            {"storage.a": "from storage import b\n", "storage.b": "import storage.a\n"},
            "import cycle: storage.a -> storage.b -> storage.a",
        ),
        (
            {"storage.a": "from . import b\n", "storage.b": "from .a import thing\n"},
            "import cycle: storage.a -> storage.b -> storage.a",
        ),
    ],
)
def test_the_checker_finds_each_kind_of_breach(sources: dict[str, str], expected: str) -> None:
    found = violations(sources)
    assert any(expected in line for line in found), found


def test_the_checker_allows_what_the_contract_allows() -> None:
    sources = {
        "digests.x": "from bot.settings import MIN_CELL_SIZE\nfrom surveys.schema import Survey\n",
        "storage.x": "from sqlalchemy import select\nfrom digests.x import y\n",
        "handlers.x": "from usecases.y import z\nfrom bot.clock import Clock\n",
        "bot.x": "from handlers import x\nfrom sqlalchemy.orm import Session\n",
        "storage.y": "def f():\n    # xlsx only: openpyxl is heavy and optional\n    import openpyxl\n",
        "bot.commands.x": "from sandbox.runner import Sandbox\n",
        "usecases.y": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from storage import x\n",
    }
    assert violations(sources) == []
