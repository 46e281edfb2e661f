"""Generated blocks of Markdown files (the text between a begin and an end marker), and
the committed measurements they are made from (``benchmarks/measured/*.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["MEASURED", "block", "measured_runs", "replace_block"]

MEASURED = Path(__file__).resolve().parent / "measured"


def measured_runs(pattern: str) -> list[tuple[str, dict[str, Any]]]:
    """Every committed run whose file name matches ``pattern``, by file name."""
    return [(path.name, json.loads(path.read_text())) for path in sorted(MEASURED.glob(pattern))]


def block(text: str, begin: str, end: str) -> str:
    """The generated part of ``text`` (between the markers)."""
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"no block between {begin!r} and {end!r}")
    return text[start + len(begin) : stop]


def replace_block(text: str, begin: str, end: str, content: str) -> str:
    """``text`` with the block between the markers replaced by ``content``."""
    old = block(text, begin, end)
    return text.replace(begin + old + end, begin + "\n" + content + end)
