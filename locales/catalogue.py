"""Message catalogues: every text a resident or alliance sees, per language, from YAML files.

Layout: `locales/<lang>/*.yaml`, each a flat or nested mapping of keys to texts; nested keys are
joined with dots (`consent.button`). Adding a language is adding a folder: no code changes.
Texts use `{name}` placeholders (str.format_map).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

LOCALES_DIR = Path(__file__).parent
MASTER = "nl"
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})


class MissingText(KeyError):
    """A key that is not in the catalogue of the master language either."""


def _flatten(prefix: str, data: Mapping[str, Any], out: dict[str, str]) -> None:
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            _flatten(full, value, out)
        else:
            out[full] = str(value)


class Catalogue:
    """All message catalogues found under one folder."""

    def __init__(self, texts: dict[str, dict[str, str]]) -> None:
        self.texts = texts

    @classmethod
    def load(cls, folder: Path = LOCALES_DIR) -> Catalogue:
        """Read every `<lang>/*.yaml` under `folder`."""
        texts: dict[str, dict[str, str]] = {}
        for lang_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            files = sorted(lang_dir.glob("*.yaml"))
            if not files:
                continue
            merged: dict[str, str] = {}
            for file in files:
                data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
                _flatten("", data, merged)
            texts[lang_dir.name] = merged
        return cls(texts)

    @property
    def languages(self) -> list[str]:
        """Languages that have a catalogue, master first."""
        return sorted(self.texts, key=lambda lang: (lang != MASTER, lang))

    def has(self, lang: str, key: str) -> bool:
        """Whether `lang` has its own text for `key`."""
        return key in self.texts.get(lang, {})

    def get(self, lang: str | None, key: str, **params: Any) -> str:
        """The text for `key` in `lang` (falling back to Dutch), with placeholders filled."""
        table = self.texts.get(lang or MASTER, {})
        template = table.get(key)
        if template is None:
            template = self.texts.get(MASTER, {}).get(key)
        if template is None:
            raise MissingText(key)
        return template.format_map(params) if params else template

    def missing(self, lang: str) -> list[str]:
        """Keys the master language has and `lang` lacks."""
        master = self.texts.get(MASTER, {})
        own = self.texts.get(lang, {})
        return sorted(key for key in master if key not in own)


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    """The shipped catalogues (read once)."""
    return Catalogue.load()
