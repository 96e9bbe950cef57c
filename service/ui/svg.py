"""Server-side SVG plots: a light curve and probability histories, drawn as plain SVG elements.

No JavaScript and no CDN: the page is complete when it arrives, and the browser only lays it out.
Every text that reaches the SVG (titles, tooltips, labels, version names) goes through
:func:`esc`; numbers are formatted by this module. Points carry classes the tests count
(``circle.det``, ``circle.prob``), colours come from the stylesheet by class index (``c0``, ``c1``,
...), never from a stored string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["Axis", "Plot", "esc", "nice_ticks"]


def esc(text: object) -> str:
    """Text for HTML or SVG content and quoted attributes (``& < > " '`` escaped).

    Examples
    --------
    >>> esc('<b a="1">x & y</b>')
    '&lt;b a=&quot;1&quot;&gt;x &amp; y&lt;/b&gt;'
    """
    return escape(str(text), quote=True)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering ``[lo, hi]`` at a 1, 2 or 5 times a power of ten step.

    Examples
    --------
    >>> nice_ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(58600.3, 58641.9)
    [58610.0, 58620.0, 58630.0, 58640.0]
    """
    span = hi - lo
    if not math.isfinite(span) or span <= 0:
        return [lo]
    raw = span / max(1, target)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(float(round(value, 10)))
        value += step
    return ticks


def _fmt(value: float) -> str:
    """Coordinates with two decimals: enough at screen resolution, short pages."""
    return f"{value:.2f}"


def _label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{value:.{decimals}f}"


@dataclass
class Axis:
    lo: float
    hi: float
    label: str
    #: Larger values drawn lower (magnitudes: brighter is up).
    inverted: bool = False

    @classmethod
    def around(cls, values: Sequence[float], label: str, pad: float = 0.05, inverted: bool = False,
               minimum_span: float = 1.0) -> Axis:
        """An axis covering ``values`` with ``pad`` of the span on each side (never a zero span)."""
        finite = [v for v in values if math.isfinite(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        if hi - lo < minimum_span:
            mid = (lo + hi) / 2
            lo, hi = mid - minimum_span / 2, mid + minimum_span / 2
        span = hi - lo
        return cls(lo - pad * span, hi + pad * span, label, inverted)


@dataclass
class Plot:
    """One SVG chart: a frame with ticks, then points, error bars, lines and markers added in order."""

    element_id: str
    title: str
    x: Axis
    y: Axis
    width: int = 720
    height: int = 300
    left: int = 58
    right: int = 16
    top: int = 28
    bottom: int = 44
    _parts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # pixel = offset + scale * value, per axis (a page draws ~500 coordinates: computed once)
        self._sx = (self.width - self.left - self.right) / (self.x.hi - self.x.lo)
        self._ox = self.left - self.x.lo * self._sx
        sy = (self.height - self.top - self.bottom) / (self.y.hi - self.y.lo)
        if self.y.inverted:
            self._sy, self._oy = sy, self.top - self.y.lo * sy
        else:
            self._sy, self._oy = -sy, self.height - self.bottom + self.y.lo * sy

    def px(self, x: float) -> float:
        return self._ox + self._sx * x

    def py(self, y: float) -> float:
        return self._oy + self._sy * y

    def _frame(self) -> list[str]:
        x0, x1 = self.left, self.width - self.right
        y0, y1 = self.top, self.height - self.bottom
        out = [f'<rect class="frame" x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}"/>']
        xt = nice_ticks(self.x.lo, self.x.hi, 6)
        xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
        for t in xt:
            x = _fmt(self.px(t))
            out.append(f'<line class="grid" x1="{x}" y1="{y0}" x2="{x}" y2="{y1}"/>')
            out.append(f'<text class="tick" x="{x}" y="{y1 + 16}" text-anchor="middle">'
                       f"{_label(t, xstep)}</text>")
        yt = nice_ticks(self.y.lo, self.y.hi, 5)
        ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
        for t in yt:
            y = _fmt(self.py(t))
            out.append(f'<line class="grid" x1="{x0}" y1="{y}" x2="{x1}" y2="{y}"/>')
            out.append(f'<text class="tick" x="{x0 - 6}" y="{y}" dy="0.32em" text-anchor="end">'
                       f"{_label(t, ystep)}</text>")
        out.append(f'<text class="axis-label" x="{(x0 + x1) / 2:.0f}" y="{self.height - 8}" '
                   f'text-anchor="middle">{esc(self.x.label)}</text>')
        out.append(f'<text class="axis-label" transform="translate(14 {(y0 + y1) / 2:.0f}) rotate(-90)" '
                   f'text-anchor="middle">{esc(self.y.label)}</text>')
        out.append(f'<text class="plot-title" x="{x0}" y="{self.top - 10}">{esc(self.title)}</text>')
        return out

    def point(self, x: float, y: float, css_class: str, tooltip: str, radius: float = 3.5) -> None:
        self._parts.append(
            f'<circle class="{css_class}" cx="{_fmt(self.px(x))}" cy="{_fmt(self.py(y))}" r="{radius}">'
            f"<title>{esc(tooltip)}</title></circle>"
        )

    def series(self, xs: Sequence[float], ys: Sequence[float], line_class: str, point_class: str,
               tooltips_html: Sequence[str], radius: float = 3.0) -> None:
        """A line through the points and a circle at each, coordinates computed once for both.
        ``tooltips_html`` are already escaped (the caller escapes each stored string once per series
        instead of every tooltip whole)."""
        ox, sx, oy, sy = self._ox, self._sx, self._oy, self._sy
        coords = [(f"{ox + sx * x:.2f}", f"{oy + sy * y:.2f}") for x, y in zip(xs, ys, strict=True)]
        if len(coords) >= 2:
            points = " ".join(f"{a},{b}" for a, b in coords)
            self._parts.append(f'<polyline class="{line_class}" points="{points}"/>')
        self._parts.extend(
            f'<circle class="{point_class}" cx="{a}" cy="{b}" r="{radius}"><title>{tip}</title></circle>'
            for (a, b), tip in zip(coords, tooltips_html, strict=True)
        )

    def error_bar(self, x: float, y: float, err: float) -> None:
        if not (math.isfinite(err) and err > 0):
            return
        px = _fmt(self.px(x))
        lo, hi = self.py(y - err), self.py(y + err)
        self._parts.append(f'<line class="err" x1="{px}" y1="{_fmt(lo)}" x2="{px}" y2="{_fmt(hi)}"/>')

    def polyline(self, xs: Sequence[float], ys: Sequence[float], css_class: str) -> None:
        if len(xs) < 2:
            return
        pts = " ".join(f"{_fmt(self.px(x))},{_fmt(self.py(y))}" for x, y in zip(xs, ys, strict=True))
        self._parts.append(f'<polyline class="{css_class}" points="{pts}"/>')

    def vertical_marker(self, x: float, css_class: str, label: str) -> None:
        """A dashed vertical line with a label at its top (e.g. where the model version changes)."""
        px = _fmt(self.px(x))
        y0, y1 = self.top, self.height - self.bottom
        self._parts.append(
            f'<g class="{css_class}"><line x1="{px}" y1="{y0}" x2="{px}" y2="{y1}"/>'
            f'<text x="{px}" y="{y0 + 12}" dx="4">{esc(label)}</text><title>{esc(label)}</title></g>'
        )

    def render(self, description: str = "") -> str:
        desc = f"<desc>{esc(description)}</desc>" if description else ""
        body = "".join([*self._frame(), *self._parts])
        return (
            f'<svg id="{esc(self.element_id)}" class="plot" viewBox="0 0 {self.width} {self.height}" '
            f'role="img" aria-label="{esc(self.title)}" xmlns="http://www.w3.org/2000/svg">'
            f"<title>{esc(self.title)}</title>{desc}{body}</svg>"
        )
