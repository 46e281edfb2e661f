"""What every report renders the same way: numbers, p-values, durations, HTML tables.

One place, so a study's report and a suite's HTML and Markdown print a value alike.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

__all__ = ["escape", "fixed", "hours", "html_table", "number", "p_value", "plural"]

MISSING = "-"


def escape(value: object) -> str:
    """``value`` as text safe inside HTML."""
    return html.escape(str(value))


def number(value: Any, digits: int = 4) -> str:
    """A float at ``digits`` decimals (significant digits below 1e-3, never 0.0000), an
    int as is, ``-`` for a missing or non-finite value, anything else as text."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:.{digits}g}" if 0 < abs(value) < 1e-3 else f"{value:.{digits}f}"
    return str(value)


def fixed(value: Any, digits: int = 4) -> str:
    """A difference or bound at the metric's precision, never in e-notation."""
    if value is None or not math.isfinite(float(value)):
        return MISSING
    return f"{float(value):.{digits}f}"


def p_value(value: Any, *, significant: bool = False, floor: bool = False) -> str:
    """A p-value at 3 digits; `` *`` when significant, `` (floor)`` at a resampling floor."""
    if value is None:
        return MISSING
    return f"{number(value, 3)}{' *' if significant else ''}{' (floor)' if floor else ''}"


def plural(count: int, word: str) -> str:
    """``1 dataset``, ``3 datasets``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def html_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: AbstractSet[int] = frozenset()
) -> str:
    """An HTML table of already escaped (or rendered) cells; ``numeric`` columns align right."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
