"""Terminal output helpers: tables and progress lines (plain text, no extra dependency)."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import TextIO

__all__ = ["EpochProgress", "format_table", "format_value"]


def format_value(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned text table with a rule under the header."""
    cells = [[format_value(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, rule, *body])


class EpochProgress:
    """``on_epoch`` callback: a self-updating line on a TTY, a line per tenth otherwise."""

    def __init__(self, epochs: int, *, label: str = "", stream: TextIO | None = None) -> None:
        self.epochs, self.label = epochs, label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = max(1, epochs // 10)

    def __call__(self, epoch: int, record) -> None:
        finite = [v for v in record.best_val_metric if math.isfinite(v)]
        mean = sum(finite) / len(finite) if finite else math.nan
        text = (
            f"{self.label}epoch {epoch + 1}/{self.epochs}  best val {record.metric} {mean:.4f}"
            f"  members training {sum(record.active)}/{len(record.active)}"
            # every member of one run trains with one configuration: member 0 speaks for all
            f"  T={record.temperature[0]:.3g}  lr={record.lr[0]:.2e}"
        )
        if self.tty:
            end = "\n" if epoch + 1 == self.epochs or not any(record.active) else ""
            self.stream.write("\r" + text.ljust(100) + end)
            self.stream.flush()
        elif (epoch + 1) % self.every == 0 or not any(record.active):
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
