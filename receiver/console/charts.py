"""Charts as inline SVG, drawn on the server: a few series over the incident window, with markers.

Rendered server-side so the console needs no charting script and its Content-Security-Policy can stay
strict: colours are SVG presentation attributes (not ``style``), so the same SVG also works stand-alone,
as a ``data:`` image in the Markdown review. Every label (series labels come from Prometheus and are
untrusted) is escaped here.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from markupsafe import Markup, escape

__all__ = ["Chart", "Marker", "Series", "render_chart", "svg_data_uri"]

WIDTH, HEIGHT = 720, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 26, 34
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c")
MARKER_COLOURS = {
    "opened": "#b91c1c",
    "action": "#7c3aed",
    "contained": "#15803d",
    "resolved": "#0369a1",
    "approval": "#a16207",
}
MAX_SERIES = len(COLOURS)
MAX_POINTS = 180


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Marker:
    ts: float
    kind: str  # opened | action | contained | resolved | approval
    label: str


@dataclass(frozen=True)
class Chart:
    title: str
    query: str
    start: float
    end: float
    series: Sequence[Series] = ()
    markers: Sequence[Marker] = ()
    threshold: float | None = None
    error: str | None = None
    more_series: int = 0  # series left out (only the first MAX_SERIES are drawn)
    svg: str = field(default="", compare=False)


def _thin(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    finite = [(t, v) for t, v in points if math.isfinite(v)]
    if len(finite) <= MAX_POINTS:
        return finite
    stride = len(finite) / MAX_POINTS
    return [finite[int(i * stride)] for i in range(MAX_POINTS)] + [finite[-1]]


def _tick(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e5 else f"{value:.2e}"


def _clock(ts: float, span: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S" if span < 600 else "%H:%M")


def render_chart(chart: Chart) -> Markup:
    """The chart as one ``<svg>`` element (escaped, presentation attributes only)."""
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    span = max(chart.end - chart.start, 1.0)
    drawn = [Series(s.label, _thin(s.points)) for s in chart.series[:MAX_SERIES]]
    values = [v for s in drawn for _, v in s.points]
    if chart.threshold is not None:
        values.append(chart.threshold)
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-12:  # a flat line: show it mid-height with a 20 % margin (or ±0.5 around zero)
        half = abs(high) * 0.2 or 0.5
        low, high = low - half, high + half
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad

    def x(ts: float) -> float:
        return _LEFT + (ts - chart.start) / span * plot_w

    def y(value: float) -> float:
        return _TOP + (high - value) / (high - low) * plot_h

    title = escape(chart.title)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{title}" font-family="sans-serif" font-size="11">',
        f"<title>{title}: {escape(chart.query)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{_LEFT}" y="16" font-size="13" font-weight="bold" fill="#111827">{title}</text>',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="#f9fafb" stroke="#d1d5db"/>',
    ]
    for i in range(5):
        value = low + (high - low) * i / 4
        yy = y(value)
        out.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{_LEFT - 4}" y="{yy + 4:.1f}" text-anchor="end" fill="#4b5563">{_tick(value)}</text>'
        )
    for i in range(5):
        ts = chart.start + span * i / 4
        out.append(
            f'<text x="{x(ts):.1f}" y="{HEIGHT - _BOTTOM + 14}" text-anchor="middle" '
            f'fill="#4b5563">{_clock(ts, span)}</text>'
        )
    if chart.threshold is not None:
        yy = y(chart.threshold)
        out.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#f59e0b" '
            f'stroke-dasharray="6 3"/><text x="{WIDTH - _RIGHT - 2}" y="{yy - 3:.1f}" text-anchor="end" '
            f'fill="#b45309">threshold {_tick(chart.threshold)}</text>'
        )
    for n, series in enumerate(drawn):
        colour = COLOURS[n % len(COLOURS)]
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in series.points)
        if len(series.points) == 1:
            px, py = x(series.points[0][0]), y(series.points[0][1])
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}"/>')
        elif path:
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
    for n, marker in enumerate(chart.markers):
        if not chart.start <= marker.ts <= chart.end:
            continue
        xx = x(marker.ts)
        colour = MARKER_COLOURS.get(marker.kind, "#374151")
        right = xx > WIDTH - _RIGHT - 70  # near the right edge: the label goes to the left of the line
        anchor, tx = ("end", xx - 2) if right else ("start", xx + 2)
        out.append(
            f'<g><title>{escape(marker.label)}</title><line x1="{xx:.1f}" x2="{xx:.1f}" y1="{_TOP}" '
            f'y2="{HEIGHT - _BOTTOM}" stroke="{colour}" stroke-width="1.2" stroke-dasharray="3 2"/>'
            f'<text x="{tx:.1f}" y="{_TOP + 10 + (n % 3) * 11}" text-anchor="{anchor}" fill="{colour}">'
            f"{escape(marker.kind)}</text></g>"
        )
    legend_y = HEIGHT - 6
    legend_x = float(_LEFT)
    for n, series in enumerate(drawn):
        colour = COLOURS[n % len(COLOURS)]
        label = series.label if len(series.label) <= 48 else series.label[:47] + "…"
        out.append(
            f'<rect x="{legend_x:.0f}" y="{legend_y - 8}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{legend_x + 13:.0f}" y="{legend_y}" fill="#374151">{escape(label)}</text>'
        )
        legend_x += 20 + 6.2 * len(label)
    if chart.more_series:
        out.append(
            f'<text x="{WIDTH - _RIGHT}" y="{legend_y}" text-anchor="end" fill="#6b7280">'
            f"+{chart.more_series} more series</text>"
        )
    if chart.error or not drawn:
        message = chart.error or "no data in this window"
        out.append(
            f'<text x="{_LEFT + plot_w / 2:.0f}" y="{_TOP + plot_h / 2:.0f}" text-anchor="middle" '
            f'fill="#6b7280">{escape(message[:120])}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def svg_data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")
