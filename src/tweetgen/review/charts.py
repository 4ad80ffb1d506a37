"""The dashboard's charts as inline SVG drawn on the server: no JavaScript, no chart library.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a description naming its figures, and
the page shows the same numbers in a table for screen readers and for copying. Every label is
XML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Series", "bars", "lines"]

WIDTH = 640
HEIGHT = 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 12, 40
_COLOURS = ("#1d4ed8", "#b45309", "#047857", "#7c3aed")


@dataclass(frozen=True)
class Series:
    """One line of a line chart: a name and a value per x label (None: no value)."""

    name: str
    values: Sequence[float | None]


def _nice(peak: float, integer: bool) -> float:
    """A round top for the y axis at or above ``peak`` (a multiple of 4 for counts, so the
    quarter lines fall on whole numbers)."""
    if peak <= 0:
        return 4.0 if integer else 1.0
    if integer:
        return float(max(4, math.ceil(peak / 4) * 4))
    magnitude = 10 ** math.floor(math.log10(peak))
    return float(next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= peak))


def _label(value: float, unit: str, integer: bool) -> str:
    text = f"{value:,.0f}" if integer else f"{value:g}"
    return unit + text if unit == "$" else text


def _frame(title: str, summary: str, body: list[str], top: float, unit: str, integer: bool) -> str:
    plot_h = HEIGHT - _TOP - _BOTTOM
    grid = []
    for k in range(5):
        value = top * k / 4
        y = _TOP + plot_h - plot_h * k / 4
        grid.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{WIDTH - _RIGHT}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
            f"{escape(_label(value, unit, integer))}</text>"
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="chart"><title>{escape(title)}</title><desc>{escape(summary)}</desc>'
        + "".join(grid)
        + "".join(body)
        + "</svg>"
    )


def _x_labels(labels: Sequence[str], step_x: float, offset: float) -> list[str]:
    every = max(1, len(labels) // 8)
    return [
        f'<text x="{_LEFT + offset + i * step_x:.1f}" y="{HEIGHT - _BOTTOM + 16}" '
        f'text-anchor="middle" class="axis">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def bars(title: str, counts: Mapping[str, float], *, unit: str = "") -> str:
    """A vertical bar per entry (``unit`` ``$`` for dollars)."""
    labels = list(counts)
    if not labels:
        return f'<p class="empty">{escape(title)}: nothing recorded yet.</p>'
    integer = unit != "$" and all(float(v).is_integer() for v in counts.values())
    top = _nice(max(counts.values()), integer)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    step = plot_w / len(labels)
    body = []
    for i, (label, value) in enumerate(counts.items()):
        h = plot_h * value / top
        shown = f"${value:,.6f}" if unit == "$" else f"{value:,.0f}"
        body.append(
            f'<rect x="{_LEFT + i * step + step * 0.15:.1f}" y="{_TOP + plot_h - h:.1f}" '
            f'width="{step * 0.7:.1f}" height="{h:.1f}" class="bar">'
            f"<title>{escape(label)}: {escape(shown)}</title></rect>"
        )
    body += _x_labels(labels, step, step / 2)
    summary = ", ".join(
        f"{label}: {f'${v:,.6f}' if unit == '$' else f'{v:,.0f}'}" for label, v in counts.items()
    )
    return _frame(title, summary, body, top, unit, integer)


def lines(title: str, labels: Sequence[str], series: Sequence[Series], *, unit: str = "") -> str:
    """A line per series over the x ``labels`` (a gap where a value is None)."""
    values = [v for s in series for v in s.values if v is not None]
    if not labels or not values:
        return f'<p class="empty">{escape(title)}: nothing recorded yet.</p>'
    top = _nice(max(values), False)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    step = plot_w / max(len(labels) - 1, 1)
    body = []
    for n, line in enumerate(series):
        colour = _COLOURS[n % len(_COLOURS)]
        points = [
            (_LEFT + i * step, _TOP + plot_h - plot_h * v / top)
            for i, v in enumerate(line.values)
            if v is not None
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
        body.append(
            f'<text x="{WIDTH - _RIGHT - 4}" y="{_TOP + 14 + 14 * n}" text-anchor="end" '
            f'fill="{colour}" class="legend">{escape(line.name)}</text>'
        )
    body += _x_labels(labels, step, 0)
    summary = "; ".join(
        f"{s.name}: "
        + ", ".join(
            f"{lab} {v:,.1f}" for lab, v in zip(labels, s.values, strict=False) if v is not None
        )
        for s in series
    )
    return _frame(title, summary, body, top, unit, False)
