"""Formatting the bench's figures: the side-by-side table and the ratios against targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """``figure`` of ``ours`` divided by ``figure`` of ``theirs`` should be at least ``minimum``."""

    label: str
    ours: str
    theirs: str
    minimum: float


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (pastes straight into docs/performance.md)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(header), sep, *[line(r) for r in rows]])


def verdicts(figures: Mapping[str, float | None], targets: Sequence[Target]) -> list[list[str]]:
    """One row per target: the ratio, the floor, and whether this run met it."""
    out = []
    for t in targets:
        r = ratio(figures.get(t.ours), figures.get(t.theirs))
        met = "n/a" if r is None else ("met" if r >= t.minimum else "NOT met")
        out.append([t.label, "-" if r is None else f"{r:.2f}x", f">= {t.minimum:g}x", met])
    return out
