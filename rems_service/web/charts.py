"""The auditor's charts as SVG drawn on the server (UI.md, Auditor: "no third-party host").

pygal renders plain SVG in pure Python. Its optional JavaScript (tooltips, loaded
from pygal's own web site by default) is switched off with ``js=[]``, and an XML
filter (pygal's ``add_xml_filter`` hook) removes the inline config script pygal
writes even then and its comments, so a chart names no other host and holds no
script; its styles stay inside the SVG. A chart is served as an image (``<img>``,
where an SVG can load and run nothing), always with a text alternative and the
same numbers as a table on the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pygal
from pygal.style import Style

from rems_service.services.audit_log import Charts
from workflows.audit import OUTCOME_APPROVED, OUTCOME_DENIED

#: The SVG's media type.
SVG_MIMETYPE = "image/svg+xml"
#: The policy an SVG chart is served under: its own inline styles, nothing else (no script,
#: no fetch, no frame). Stricter than the pages' policy on everything but inline style.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

#: Outcomes in the order the per-day chart stacks them, each with its colour: a blue and an
#: orange that colour-blind readers tell apart, both 4.5:1 or more against white.
OUTCOME_COLOURS: dict[str, str] = {OUTCOME_APPROVED: "#1f5fa8", OUTCOME_DENIED: "#b34700"}
OTHER_COLOUR = "#5f6b7a"

_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Liberation Sans', Arial, sans-serif"


def _style(colours: Sequence[str]) -> Style:
    return Style(
        background="#ffffff",
        plot_background="#ffffff",
        foreground="#1a1a1a",
        foreground_strong="#1a1a1a",
        foreground_subtle="#4a4a4a",
        opacity="1",
        opacity_hover="1",
        transition="0ms",
        colors=tuple(colours),
        font_family=_FONT,
        label_font_family=_FONT,
        major_label_font_family=_FONT,
        value_font_family=_FONT,
        title_font_family=_FONT,
        legend_font_family=_FONT,
        tooltip_font_family=_FONT,
        no_data_font_family=_FONT,
        label_font_size=12,
        major_label_font_size=12,
        legend_font_size=13,
        title_font_size=15,
        no_data_font_size=18,
    )


def _without_script(root: Any) -> Any:
    """pygal XML filter: drop every ``<script>`` and comment (pygal names its web site in them)."""
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag.rpartition("}")[2] == "script" or not isinstance(child.tag, str):
                parent.remove(child)
    return root


def _chart(kind: Any, **options: Any) -> Any:
    chart = kind(**options)
    chart.add_xml_filter(_without_script)
    return chart


def _common(colours: Sequence[str], title: str) -> dict[str, object]:
    """pygal options shared by both charts: no script, no XML declaration, a fixed size."""
    return {
        "js": [],
        "disable_xml_declaration": True,
        "style": _style(colours),
        "title": title,
        "width": 760,
        "height": 340,
        "legend_at_bottom": True,
        "no_data_text": "No decisions in this range",
        "print_zeroes": False,
        "min_scale": 2,
        "max_scale": 6,
        "margin": 12,
        "truncate_label": -1,
        "truncate_legend": -1,
    }


def integer_ticks(largest: int, most: int = 6) -> list[int]:
    """Whole-number axis ticks from 0 past ``largest`` (counts have no fractions), at most ``most``+1."""
    step = max(1, -(-largest // most))
    return list(range(0, largest + step + 1, step)) if largest else [0, 1]


def outcomes_of(charts: Charts) -> list[str]:
    """The outcomes the per-day chart shows: approved and denied always, then any other seen."""
    seen = {outcome for day in charts.days for outcome in day.counts}
    return [*OUTCOME_COLOURS, *sorted(seen - set(OUTCOME_COLOURS))]


def _day_labels(charts: Charts) -> tuple[list[str], list[str]]:
    """Every day's label (``Jun 15``), and the ones written under the axis (about 10)."""
    labels = [day.day.strftime("%b %d") for day in charts.days]
    every = max(1, len(labels) // 10 + (1 if len(labels) % 10 else 0))
    return labels, labels[::every]


def decisions_per_day_svg(charts: Charts) -> str:
    """A stacked bar per calendar day: its decisions by outcome."""
    outcomes = outcomes_of(charts)
    colours = [OUTCOME_COLOURS.get(o, OTHER_COLOUR) for o in outcomes]
    chart = _chart(
        pygal.StackedBar,
        **_common(colours, "Decisions per day by outcome"),
        x_label_rotation=0,
        show_minor_x_labels=False,
        y_title="Decisions",
    )
    labels, major = _day_labels(charts)
    chart.x_labels = labels
    chart.x_labels_major = major
    if any(day.total for day in charts.days):
        chart.y_labels = integer_ticks(max(day.total for day in charts.days))
        for outcome in outcomes:
            chart.add(outcome.capitalize(), [day.counts.get(outcome, 0) for day in charts.days])
    svg: str = chart.render(is_unicode=True)
    return svg


def denial_reasons_svg(charts: Charts) -> str:
    """A horizontal bar per reason code, the most frequent on top."""
    chart = _chart(
        pygal.HorizontalBar,
        **_common([OUTCOME_COLOURS[OUTCOME_DENIED]], "Most frequent denial reasons"),
        show_legend=False,
        print_values=True,
        x_title="Denied decisions naming the reason",
    )
    chart.no_data_text = "No denials in this range"
    if charts.denial_reasons:
        # pygal draws the first value at the bottom: reversed, the most frequent is on top.
        ranked = list(reversed(charts.denial_reasons))
        chart.y_labels = integer_ticks(max(count for _code, count in ranked))
        chart.x_labels = [code for code, _count in ranked]
        chart.add("Denials", [count for _code, count in ranked])
    svg: str = chart.render(is_unicode=True)
    return svg


def decisions_per_day_text(charts: Charts) -> str:
    """The per-day chart in one sentence (its image's text alternative)."""
    totals = {o: sum(day.counts.get(o, 0) for day in charts.days) for o in outcomes_of(charts)}
    if not charts.days:
        return "Decisions per day by outcome: the range is empty."
    span = f"{charts.days[0].day.isoformat()} to {charts.days[-1].day.isoformat()}"
    counted = ", ".join(f"{n} {o}" for o, n in totals.items())
    busiest = max(charts.days, key=lambda d: (d.total, d.day))
    peak = f"; busiest day {busiest.day.isoformat()} with {busiest.total}" if busiest.total else ""
    return f"Decisions per day by outcome, {span}: {counted}{peak}. The table below lists every day."


def denial_reasons_text(charts: Charts) -> str:
    """The denial-reasons chart in one sentence (its image's text alternative)."""
    if not charts.denial_reasons:
        return "Most frequent denial reasons: no denials in this range."
    ranked = ", ".join(f"{code} {count}" for code, count in charts.denial_reasons)
    return f"Most frequent denial reasons, most frequent first: {ranked}."
