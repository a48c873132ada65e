"""The auditor's charts (rems_service.web.charts): SVG drawn on the server, naming no
other host and running no script, whose bars are the counts they are given."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest

from rems_service.services.audit_log import Charts, DayOutcomes
from rems_service.web import charts

SVG = "{http://www.w3.org/2000/svg}"


def sample(days: list[dict[str, int]] | None = None, reasons: list[tuple[str, int]] | None = None) -> Charts:
    counts = days if days is not None else [{"approved": 3, "denied": 1}, {}, {"denied": 2}]
    start = date(2026, 6, 1)
    return Charts(
        since=datetime(2026, 6, 1, tzinfo=UTC),
        until=datetime(2026, 6, 1, tzinfo=UTC) + timedelta(days=len(counts)),
        days=[DayOutcomes(start + timedelta(days=i), c) for i, c in enumerate(counts)],
        truncated=False,
        denial_reasons=reasons
        if reasons is not None
        else [("PREGNANCY_TEST_MISSING", 3), ("AUTHORIZATION_EXPIRED", 1)],
    )


def series_heights(svg: str, size: str = "height") -> list[list[float]]:
    """The bar heights (``width`` for horizontal bars) of each series, in the order added."""
    root = ET.fromstring(svg)
    found = []
    plot = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "plot")
    for group in plot.iter(f"{SVG}g"):
        if "series" in (group.get("class") or "").split():
            found.append([float(r.get(size, 0)) for r in group.iter(f"{SVG}rect") if "rect" in r.get("class", "")])
    return found


@pytest.mark.parametrize("render", [charts.decisions_per_day_svg, charts.denial_reasons_svg])
def test_a_chart_is_svg_with_no_script_and_no_other_host(render):
    svg = render(sample())
    root = ET.fromstring(svg)  # well-formed, no XML declaration (it can be inlined)
    assert root.tag == f"{SVG}svg"
    assert not svg.startswith("<?xml")
    assert "<script" not in svg and "xml-stylesheet" not in svg and "<!--" not in svg
    for element in root.iter():
        for name, value in element.attrib.items():
            if name.endswith("href") or name == "src":
                assert not value.startswith(("http:", "https:", "//")), (name, value)
            assert not name.startswith("on"), name  # no event handler attribute


def test_decisions_per_day_stacks_each_outcome_in_proportion():
    heights = series_heights(charts.decisions_per_day_svg(sample()))
    approved, denied = heights
    assert len(approved) == len(denied) == 3  # one bar per day, empty days included
    assert approved[1] == approved[2] == denied[1] == 0
    unit = approved[0] / 3
    assert denied[0] == pytest.approx(unit * 1)
    assert denied[2] == pytest.approx(unit * 2)


def test_every_outcome_seen_is_drawn_after_approved_and_denied():
    c = sample(days=[{"approved": 1, "denied": 1, "error": 1}])
    assert charts.outcomes_of(c) == ["approved", "denied", "error"]
    assert len(series_heights(charts.decisions_per_day_svg(c))) == 3


def test_denial_reasons_are_ranked_with_their_counts_printed():
    svg = charts.denial_reasons_svg(sample())
    (bars,) = series_heights(svg, "width")
    assert bars[0] == pytest.approx(bars[1] / 3)  # drawn bottom-up: AUTHORIZATION_EXPIRED (1) first
    root = ET.fromstring(svg)
    values = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "value"]
    assert sorted(values) == ["1", "3"]
    labels = [t.text for t in root.iter(f"{SVG}text") if t.text in ("PREGNANCY_TEST_MISSING", "AUTHORIZATION_EXPIRED")]
    # Drawn bottom-up: the most frequent reason is the last label, at the top.
    assert labels == ["AUTHORIZATION_EXPIRED", "PREGNANCY_TEST_MISSING"]


def test_empty_ranges_say_so():
    empty = sample(days=[{}, {}], reasons=[])
    assert "No decisions in this range" in charts.decisions_per_day_svg(empty)
    assert "No denials in this range" in charts.denial_reasons_svg(empty)
    assert charts.denial_reasons_text(empty) == "Most frequent denial reasons: no denials in this range."


def test_text_alternatives_carry_the_numbers():
    c = sample()
    text = charts.decisions_per_day_text(c)
    assert "2026-06-01 to 2026-06-03" in text
    assert "3 approved, 3 denied" in text
    assert "busiest day 2026-06-01 with 4" in text
    assert charts.denial_reasons_text(c) == (
        "Most frequent denial reasons, most frequent first: PREGNANCY_TEST_MISSING 3, AUTHORIZATION_EXPIRED 1."
    )


def test_counts_are_labelled_in_whole_numbers():
    assert charts.integer_ticks(1) == [0, 1, 2]
    assert charts.integer_ticks(5) == [0, 1, 2, 3, 4, 5, 6]
    assert charts.integer_ticks(40) == [0, 7, 14, 21, 28, 35, 42]
    assert charts.integer_ticks(0) == [0, 1]
    root = ET.fromstring(charts.decisions_per_day_svg(sample()))
    axis = next(g for g in root.iter(f"{SVG}g") if (g.get("class") or "").startswith("axis y"))
    labels = [t.text for t in axis.iter(f"{SVG}text") if t.text]
    assert labels and all(label.isdigit() for label in labels)
