"""Server-rendered charts of a patient's treatment summary (``services.courses.summary``):
the CBC series against the hold thresholds and the M-protein trend.

Plain SVG text built here: no script, no external reference, every label
escaped, so the portal can inline it or serve it as ``image/svg+xml`` under a
strict Content-Security-Policy. The portal and the API call the same functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 36
COLORS = ("#1f5fa8", "#b5471b", "#2e7d32", "#6a1b9a")


def _when(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()


def _label(value: Any) -> str:
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return instant.date().isoformat()


def _chart(
    title: str,
    series: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
    thresholds: Sequence[tuple[str, float]],
    unit: str,
) -> str:
    """One line chart: each series a polyline with dots, each threshold a dashed line."""
    points = [p for _name, s in series for p in s]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label={quoteattr(title)}>',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="18" font-family="sans-serif" font-size="13" fill="#222">'
        f"{escape(title)} ({escape(unit)})</text>",
    ]
    if not points:
        parts.append(
            f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" font-family="sans-serif" '
            'font-size="12" fill="#555">No results recorded.</text></svg>'
        )
        return "".join(parts)
    times = [_when(p["collected_at"]) for p in points]
    t0, t1 = min(times), max(times)
    if t1 == t0:
        t0, t1 = t0 - 86400, t1 + 86400
    values = [float(p["value"]) for p in points] + [v for _n, v in thresholds]
    top = max(values) * 1.1 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return round(LEFT + (t - t0) / (t1 - t0) * plot_w, 1)

    def y(v: float) -> float:
        return round(TOP + plot_h - (v / top) * plot_h, 1)

    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#888"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#888"/>'
    )
    for frac in (0.0, 0.5, 1.0):
        v = top * frac
        parts.append(
            f'<text x="{LEFT - 6}" y="{y(v) + 4}" text-anchor="end" font-family="sans-serif" font-size="10" '
            f'fill="#555">{v:.3g}</text>'
        )
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 10}" font-family="sans-serif" font-size="10" fill="#555">'
        f"{escape(_label(min(points, key=lambda p: _when(p['collected_at']))['collected_at']))}</text>"
        f'<text x="{LEFT + plot_w}" y="{HEIGHT - 10}" text-anchor="end" font-family="sans-serif" font-size="10" '
        f'fill="#555">{escape(_label(max(points, key=lambda p: _when(p["collected_at"]))["collected_at"]))}</text>'
    )
    for name, value in thresholds:
        parts.append(
            f'<line x1="{LEFT}" y1="{y(value)}" x2="{LEFT + plot_w}" y2="{y(value)}" stroke="#c62828" '
            f'stroke-dasharray="6 4"><title>{escape(name)}: {value:g}</title></line>'
            f'<text x="{LEFT + plot_w}" y="{y(value) - 3}" text-anchor="end" font-family="sans-serif" '
            f'font-size="10" fill="#c62828">{escape(name)} {value:g}</text>'
        )
    for i, (name, s) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        ordered = sorted(s, key=lambda p: _when(p["collected_at"]))
        if not ordered:
            continue
        coords = " ".join(f"{x(_when(p['collected_at']))},{y(float(p['value']))}" for p in ordered)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        for p in ordered:
            parts.append(
                f'<circle cx="{x(_when(p["collected_at"]))}" cy="{y(float(p["value"]))}" r="3" fill="{color}">'
                f"<title>{escape(name)} {float(p['value']):g} on {escape(_label(p['collected_at']))}</title></circle>"
            )
        parts.append(
            f'<text x="{LEFT + 8 + 110 * i}" y="{TOP + 10}" font-family="sans-serif" font-size="11" '
            f'fill="{color}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def cbc_svg(summary: Mapping[str, Any]) -> str:
    """Platelets and ANC over time against their hold thresholds (R-CBC-2, R-CBC-3), ×10³/µL."""
    cbc = summary["cbc"]
    series = cbc["series"]
    thresholds = cbc["thresholds"]
    return _chart(
        "Platelets and ANC",
        [("Platelets", series.get("platelets", [])), ("ANC", series.get("anc", []))],
        [
            ("Platelet hold", float(thresholds["platelets_hold_below"])),
            ("ANC hold", float(thresholds["anc_hold_below"])),
        ],
        "x10^3/uL",
    )


def m_protein_svg(summary: Mapping[str, Any]) -> str:
    """Serum M-protein over time with the baseline and the response category (R-RESP-1/2)."""
    m = summary["m_protein"]
    trend = m.get("serum_trend")
    title = "Serum M-protein"
    thresholds: list[tuple[str, float]] = []
    if trend:
        title += f" — response {trend['response_category']}" + ("" if trend["response_confirmed"] else " (unconfirmed)")
        if trend["possible_progression"]:
            title += " — possible progression"
        thresholds.append(("Baseline", float(trend["baseline"]["value"])))
    return _chart(title, [("Serum", m.get("serum", []))], thresholds, "g/dL")
