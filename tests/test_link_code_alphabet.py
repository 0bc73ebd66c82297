"""The link-code alphabet that docs/digests.md describes is the one storage/alliances.py uses."""

from __future__ import annotations

import re
from pathlib import Path

from storage import alliances as store

DOCS = Path(__file__).resolve().parent.parent / "docs" / "digests.md"


def test_the_documented_code_alphabet_is_the_one_in_use() -> None:
    text = " ".join(DOCS.read_text(encoding="utf-8").split())
    found = re.search(r"(\d+)-character alphabet, A-Z and 0-9 without (.+?) \(", text)
    assert found, "docs/digests.md no longer describes the link-code alphabet"
    left_out = set(re.findall(r"[A-Z0-9]", found.group(2)))
    everything = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    assert set(store.CODE_ALPHABET) == everything - left_out
    assert int(found.group(1)) == len(store.CODE_ALPHABET)
