"""Server-side SVG charts for the console: small pure functions from series to an SVG string.

No JavaScript and nothing loaded from elsewhere: the console's Content-Security-Policy allows
neither inline styles nor foreign scripts, so every chart is inline SVG with presentation
attributes (``fill``, ``stroke``) and classes styled by ``static/console.css``. Each chart is an
image with a title and a description for screen readers (``role="img"``,
``aria-labelledby``), and each bar or point carries a ``<title>`` that browsers show on hover.
All text is escaped; colours are checked to be ``#rgb``/``#rrggbb``. The words a chart writes
itself (its description, "No data.") go through ``_`` (the console's catalog; English when
none is given).

Labels may have two lines separated by ``\\n`` (e.g. ``"08:00\\n02/05"``): the first line is
always shown, the second only where it changes, so a date appears once per day.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from fines.i18n import Gettext

__all__ = ["Segment", "Series", "bar_chart", "line_chart", "share_bar", "sparkline", "stacked_bars"]

_COLOUR = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?")
_ID = re.compile(r"[^a-zA-Z0-9_-]+")
GRID = "#dde3ea"
AXIS = "#5b6775"
LABEL_PX = 46
"""Horizontal room one x label needs; denser axes show every n-th label."""


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class Series:
    """One stacked series: a name for the legend, one value per label, a colour."""

    name: str
    values: tuple[float, ...]
    colour: str

    def __post_init__(self) -> None:
        _check_colour(self.colour)


@dataclass(frozen=True)
class Segment:
    """One part of a :func:`share_bar`."""

    name: str
    value: float
    colour: str

    def __post_init__(self) -> None:
        _check_colour(self.colour)


@dataclass(frozen=True)
class _Plot:
    """Geometry of a chart: the whole image and the plotting area inside its margins."""

    width: int
    height: int
    left: int = 40
    right: int = 12
    top: int = 30
    bottom: int = 38

    @property
    def w(self) -> float:
        return float(self.width - self.left - self.right)

    @property
    def h(self) -> float:
        return float(self.height - self.top - self.bottom)

    def y(self, value: float, ceiling: float) -> float:
        return self.top + self.h - (value / ceiling) * self.h if ceiling > 0 else self.top + self.h


def _check_colour(colour: str) -> None:
    if not _COLOUR.fullmatch(colour):
        raise ValueError(f"not a #rgb or #rrggbb colour: {colour!r}")


def _attr(value: str) -> str:
    return quoteattr(value)


def fmt(value: float) -> str:
    """A count as an integer, anything else with at most two decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``value`` (1 for
    nothing), so that the axis ends on a round number."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power + 1e-9:
            return step * power
    return 10.0 * power  # pragma: no cover - the loop always returns


def _ticks(ceiling: float) -> list[float]:
    """Four gridline values from 0 to ``ceiling``; whole numbers for small counts."""
    if ceiling <= 4 and float(ceiling).is_integer():
        return [float(v) for v in range(int(ceiling) + 1)]
    return [ceiling * i / 4 for i in range(5)]


def _open(chart_id: str, title: str, desc: str, width: int, height: int, kind: str) -> str:
    cid = _ID.sub("-", chart_id).strip("-") or "chart"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" id={_attr(cid)} '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{cid}-t {cid}-d">'
        f'<title id="{cid}-t">{escape(title)}</title><desc id="{cid}-d">{escape(desc)}</desc>'
    )


def _text(x: float, y: float, text: str, *, anchor: str = "middle", cls: str = "lbl") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}">{escape(text)}</text>'
    )


def _y_axis(p: _Plot, ceiling: float) -> list[str]:
    out = []
    for v in _ticks(ceiling):
        y = p.y(v, ceiling)
        out.append(
            f'<line x1="{p.left}" x2="{p.width - p.right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        out.append(_text(p.left - 5, y + 4, fmt(v), anchor="end", cls="tick"))
    return out


def _x_labels(p: _Plot, labels: Sequence[str], slot: float) -> list[str]:
    """Every n-th label under its slot (as many as fit); a label's second line only where it
    differs from the previous shown label's second line."""
    if not labels:
        return []
    step = max(1, math.ceil(len(labels) / max(1.0, p.w / LABEL_PX)))
    out: list[str] = []
    shown_second = ""
    for i in range(0, len(labels), step):
        first, _, second = labels[i].partition("\n")
        x = p.left + slot * (i + 0.5)
        base = p.top + p.h + 14
        out.append(_text(x, base, first, cls="tick"))
        if second and second != shown_second:
            out.append(_text(x, base + 13, second, cls="tick sub"))
            shown_second = second
    return out


def _legend(p: _Plot, items: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    x = float(p.left)
    for name, colour in items:
        out.append(f'<rect x="{x:.1f}" y="8" width="11" height="11" rx="2" fill="{colour}"/>')
        out.append(_text(x + 15, 18, name, anchor="start", cls="legend"))
        x += 26 + 6.6 * len(name)
    return out


def stacked_bars(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    width: int = 720,
    height: int = 240,
    breaks: Sequence[int] = (),
    unit: str = "",
    _: Gettext = _same,
) -> str:
    """Vertical bars, one per label, each stacked from the series in order (bottom first).

    ``breaks`` are indices of bars that follow a gap in the axis (e.g. hours without data
    left out): a dashed line marks each. The legend shows each series with its total."""
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(labels)}")
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    ceiling = nice_ceiling(max(totals, default=0.0))
    p = _Plot(width, height)
    slot = p.w / max(1, len(labels))
    bar_w = max(2.0, min(slot * 0.7, 48.0))
    desc = _bars_desc(labels, totals, unit, _)
    parts = [_open(chart_id, title, desc, width, height, "bars"), *_y_axis(p, ceiling)]
    parts += _legend(p, [(f"{s.name} ({fmt(sum(s.values))})", s.colour) for s in series])
    for i, label in enumerate(labels):
        x = p.left + slot * i + (slot - bar_w) / 2
        base = 0.0
        for s in series:
            v = s.values[i]
            if v <= 0:
                continue
            y0, y1 = p.y(base + v, ceiling), p.y(base, ceiling)
            tip = f"{label.replace(chr(10), ' ')}: {s.name} {fmt(v)}{unit}"
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y0:.1f}" width="{bar_w:.1f}" '
                f'height="{max(0.5, y1 - y0):.1f}" fill="{s.colour}" data-series={_attr(s.name)}>'
                f"<title>{escape(tip)}</title></rect>"
            )
            base += v
    gap = escape(_("hours without data left out"))
    for i in breaks:
        if 0 < i < len(labels):
            x = p.left + slot * i
            parts.append(
                f'<line class="gap" x1="{x:.1f}" x2="{x:.1f}" y1="{p.top}" '
                f'y2="{p.top + p.h:.1f}" stroke="{AXIS}" stroke-dasharray="3 3">'
                f"<title>{gap}</title></line>"
            )
    parts += _x_labels(p, labels, slot)
    parts.append("</svg>")
    return "".join(parts)


def _bars_desc(labels: Sequence[str], totals: Sequence[float], unit: str, _: Gettext) -> str:
    if not labels or not any(totals):
        return _("No data.")
    peak = max(range(len(totals)), key=lambda i: totals[i])
    return _("{n} bars from {first} to {last}; total {total}; highest {peak} at {at}.").format(
        n=len(labels),
        first=labels[0].replace("\n", " "),
        last=labels[-1].replace("\n", " "),
        total=f"{fmt(sum(totals))}{unit}",
        peak=f"{fmt(totals[peak])}{unit}",
        at=labels[peak].replace("\n", " "),
    )


def bar_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    colour: str = "#3f6fa8",
    name: str = "count",
    width: int = 360,
    height: int = 200,
    _: Gettext = _same,
) -> str:
    """Plain vertical bars: :func:`stacked_bars` with one series."""
    return stacked_bars(
        chart_id=chart_id,
        title=title,
        labels=labels,
        series=[Series(name, tuple(float(v) for v in values), colour)],
        width=width,
        height=height,
        _=_,
    )


def line_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    colour: str = "#b46b00",
    width: int = 720,
    height: int = 220,
    step: bool = True,
    _: Gettext = _same,
) -> str:
    """A line through one value per label (a step line when ``step``: the value holds until
    the next point), with the area below lightly filled and a dot per point."""
    if len(values) != len(labels):
        raise ValueError(f"{len(values)} values for {len(labels)} labels")
    _check_colour(colour)
    p = _Plot(width, height, top=16)
    ceiling = nice_ceiling(max(values, default=0.0))
    slot = p.w / max(1, len(labels))
    pts = [(p.left + slot * (i + 0.5), p.y(v, ceiling)) for i, v in enumerate(values)]
    desc = (
        _("{n} points from {first} to {last}; now {now}, highest {peak}.")
        .format(
            n=len(values),
            first=labels[0],
            last=labels[-1],
            now=fmt(values[-1]),
            peak=fmt(max(values)),
        )
        .replace("\n", " ")
        if values
        else _("No data.")
    )
    parts = [_open(chart_id, title, desc, width, height, "line"), *_y_axis(p, ceiling)]
    if pts:
        path = _line_path(pts, step)
        floor = p.top + p.h
        parts.append(
            f'<path d="{path} L{pts[-1][0]:.1f},{floor:.1f} L{pts[0][0]:.1f},{floor:.1f} Z" '
            f'fill="{colour}" fill-opacity="0.12" stroke="none"/>'
        )
        parts.append(
            f'<path class="series" d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
    for (x, y), label, v in zip(pts, labels, values, strict=True):
        tip = f"{label.replace(chr(10), ' ')}: {fmt(v)}"
        parts.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}">'
            f"<title>{escape(tip)}</title></circle>"
        )
    parts += _x_labels(p, labels, slot)
    parts.append("</svg>")
    return "".join(parts)


def _line_path(pts: Sequence[tuple[float, float]], step: bool) -> str:
    d = [f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"]
    for (_x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if step:
            d.append(f"L{x1:.1f},{y0:.1f}")
        d.append(f"L{x1:.1f},{y1:.1f}")
    return " ".join(d)


def sparkline(
    values: Sequence[float],
    *,
    chart_id: str,
    title: str,
    colour: str = "#3f6fa8",
    width: int = 140,
    height: int = 30,
    _: Gettext = _same,
) -> str:
    """A tiny bar strip (one bar per value, no axes) for a table cell; the title says what
    it shows, the description gives the total and the highest value."""
    _check_colour(colour)
    desc = (
        _("{n} values, total {total}, highest {peak}.").format(
            n=len(values), total=fmt(sum(values)), peak=fmt(max(values))
        )
        if values
        else _("No data.")
    )
    parts = [_open(chart_id, title, desc, width, height, "spark")]
    parts.append(
        f'<line x1="0" x2="{width}" y1="{height - 0.5}" y2="{height - 0.5}" stroke="{GRID}"/>'
    )
    top = max(values, default=0.0)
    slot = width / max(1, len(values))
    for i, v in enumerate(values):
        if v <= 0:
            continue
        h = max(1.5, (v / top) * (height - 3))
        parts.append(
            f'<rect class="bar" x="{slot * i + slot * 0.1:.1f}" y="{height - 1 - h:.1f}" '
            f'width="{max(1.0, slot * 0.8):.1f}" height="{h:.1f}" fill="{colour}">'
            f"<title>{fmt(v)}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)


def share_bar(
    *,
    chart_id: str,
    title: str,
    segments: Sequence[Segment],
    width: int = 360,
    height: int = 44,
    _: Gettext = _same,
) -> str:
    """One horizontal 100 % bar split into the segments' shares, a legend with percentages
    below (segments of zero are left out of the bar but kept in the legend)."""
    total = sum(max(0.0, s.value) for s in segments)
    shares = [(s, (max(0.0, s.value) / total) if total else 0.0) for s in segments]
    desc = "; ".join(f"{s.name} {share:.0%}" for s, share in shares) if total else _("No data.")
    parts = [_open(chart_id, title, desc, width, height, "share")]
    bar_h = 14
    if not total:
        parts.append(f'<rect x="0" y="0" width="{width}" height="{bar_h}" fill="{GRID}"/>')
    x = 0.0
    for s, share in shares:
        if share <= 0:
            continue
        w = share * width
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="0" width="{w:.1f}" height="{bar_h}" '
            f'fill="{s.colour}" data-series={_attr(s.name)}>'
            f"<title>{escape(f'{s.name}: {fmt(s.value)} ({share:.0%})')}</title></rect>"
        )
        x += w
    lx = 0.0
    for s, share in shares:
        parts.append(
            f'<rect x="{lx:.1f}" y="{bar_h + 12}" width="10" height="10" rx="2" fill="{s.colour}"/>'
        )
        label = f"{s.name} {share:.0%}"
        parts.append(_text(lx + 14, bar_h + 21, label, anchor="start", cls="legend"))
        lx += 26 + 7 * len(label)
    parts.append("</svg>")
    return "".join(parts)
