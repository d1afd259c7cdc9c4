"""Horizontal bar charts written as SVG by hand (no plotting library is installed): panels,
each with a bold title and its own linear scale, one labelled bar per figure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

WIDTH = 760
LABEL_WIDTH = 250
BAR_HEIGHT = 16
BAR_GAP = 4
PANEL_GAP = 34

Bar = tuple[str, float, str]
"""(label, value, fill colour)."""


def panels_svg(
    panels: Sequence[tuple[str, Sequence[Bar]]], value_text: Callable[[float], str]
) -> str:
    """An SVG document of ``panels`` (title, bars); ``value_text`` writes a bar's figure."""
    parts: list[str] = []
    y = 10
    for title, bars in panels:
        parts.append(f'<text x="10" y="{y + 14}" font-weight="bold">{escape(title)}</text>')
        y += 24
        top = max((value for _, value, _ in bars), default=0.0) or 1.0
        for label, value, colour in bars:
            width = (WIDTH - LABEL_WIDTH - 90) * value / top
            parts.append(
                f'<text x="{LABEL_WIDTH - 8}" y="{y + 12}" text-anchor="end">{escape(label)}</text>'
            )
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}" '
                f'fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 12}">'
                f"{escape(value_text(value))}</text>"
            )
            y += BAR_HEIGHT + BAR_GAP
        y += PANEL_GAP - BAR_GAP
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" '
        f'font-family="sans-serif" font-size="12">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(parts) + "\n</svg>\n"
    )
