"""The console's SVG charts: well-formed XML, one shape per value, escaped text, titles."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from fines import charts
from fines.charts import Segment, Series

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{NS}rect") if r.get("class") == "bar"]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text")]


def test_stacked_bars_draw_one_segment_per_nonzero_value() -> None:
    svg = charts.stacked_bars(
        chart_id="c",
        title="Passages per hour",
        labels=["08:00\n02/05", "09:00\n02/05", "10:00\n03/05"],
        series=[Series("compliant", (2, 0, 1), "#4c9a5f"), Series("violation", (1, 3, 0), "#c00")],
    )
    root = parse(svg)
    drawn = bars(root)
    assert len(drawn) == 4  # zeros draw nothing
    assert [b.get("data-series") for b in drawn] == [
        "compliant",
        "violation",
        "violation",
        "compliant",
    ]
    # stacked: the first hour's violation sits right on top of its compliant segment
    low, high = drawn[0], drawn[1]
    assert float(high.get("y", 0)) + float(high.get("height", 0)) == pytest.approx(
        float(low.get("y", 0)), abs=0.11
    )
    # the legend gives each series' total
    assert "compliant (3)" in texts(root) and "violation (4)" in texts(root)


def test_accessible_title_and_description() -> None:
    root = parse(
        charts.bar_chart(chart_id="dead letters!", title="Dead letters", labels=["a"], values=[2])
    )
    assert root.get("role") == "img"
    assert root.get("id") == "dead-letters"
    title, desc = root.find(f"{NS}title"), root.find(f"{NS}desc")
    assert title is not None and title.text == "Dead letters"
    assert desc is not None and "total 2" in (desc.text or "")
    assert root.get("aria-labelledby") == "dead-letters-t dead-letters-d"
    assert title.get("id") == "dead-letters-t" and desc.get("id") == "dead-letters-d"


def test_every_text_is_escaped() -> None:
    evil = '<script>alert("x")</script>&'
    svg = charts.stacked_bars(
        chart_id='x" onload="alert(1)',
        title=evil,
        labels=[evil],
        series=[Series(evil, (1,), "#123")],
    )
    assert "<script>" not in svg and 'onload="' not in svg
    root = parse(svg)
    title = root.find(f"{NS}title")
    assert title is not None and title.text == evil  # the reader gets the text back intact
    assert evil in texts(root)
    assert bars(root)[0].get("data-series") == evil
    share = parse(charts.share_bar(chart_id="s", title=evil, segments=[Segment(evil, 1, "#123")]))
    assert any(evil in t for t in texts(share))


def test_colours_must_be_hex() -> None:
    with pytest.raises(ValueError, match="colour"):
        Series("a", (1,), 'red" onclick="x')
    with pytest.raises(ValueError, match="colour"):
        charts.sparkline([1.0], chart_id="s", title="t", colour="url(javascript:x)")


def test_series_must_match_the_labels() -> None:
    with pytest.raises(ValueError, match="2 values for 3"):
        charts.stacked_bars(
            chart_id="c", title="t", labels=["a", "b", "c"], series=[Series("s", (1, 2), "#000")]
        )


def test_gaps_are_marked_between_bars() -> None:
    root = parse(
        charts.stacked_bars(
            chart_id="c",
            title="t",
            labels=["a", "b", "c", "d"],
            series=[Series("s", (1, 1, 1, 1), "#000")],
            breaks=[0, 2, 3, 9],
        )
    )
    gaps = [g for g in root.iter(f"{NS}line") if g.get("class") == "gap"]
    assert len(gaps) == 2  # before "c" and "d"; 0 and out-of-range indices are ignored


def test_second_label_line_only_where_it_changes() -> None:
    labels = ["22:00\n01/05", "23:00\n01/05", "00:00\n02/05", "01:00\n02/05"]
    root = parse(
        charts.stacked_bars(
            chart_id="c", title="t", labels=labels, series=[Series("s", (1, 1, 1, 1), "#000")]
        )
    )
    shown = texts(root)
    assert shown.count("01/05") == 1 and shown.count("02/05") == 1
    assert {"22:00", "23:00", "00:00", "01:00"} <= set(shown)


def test_dense_axes_show_every_nth_label() -> None:
    labels = [f"{h:02d}:00" for h in range(24)]
    root = parse(
        charts.stacked_bars(
            chart_id="c",
            title="t",
            labels=labels,
            series=[Series("s", (1.0,) * 24, "#000")],
            width=400,
        )
    )
    shown = [t for t in texts(root) if t in labels]
    assert 3 <= len(shown) < 24 and shown[0] == "00:00"
    assert len(bars(root)) == 24  # every bar is still drawn


def test_line_chart_has_a_point_per_value_and_a_step_path() -> None:
    root = parse(
        charts.line_chart(chart_id="b", title="Backlog", labels=["a", "b", "c"], values=[0, 2, 1])
    )
    points = [c for c in root.iter(f"{NS}circle") if c.get("class") == "point"]
    assert len(points) == 3
    assert [p.findtext(f"{NS}title") for p in points] == ["a: 0", "b: 2", "c: 1"]
    path = next(p for p in root.iter(f"{NS}path") if p.get("class") == "series")
    assert len(path.get("d", "").split("L")) == 5  # M + (step + point) for each later value
    # higher values are drawn higher up (smaller y)
    ys = [float(p.get("cy", 0)) for p in points]
    assert ys[1] < ys[2] < ys[0]


def test_sparkline_scales_to_the_highest_value() -> None:
    root = parse(charts.sparkline([0, 2, 4], chart_id="s", title="Frames per hour"))
    drawn = bars(root)
    assert len(drawn) == 2  # the zero draws nothing
    assert float(drawn[1].get("height", 0)) == pytest.approx(2 * float(drawn[0].get("height", 0)))


def test_share_bar_splits_the_width_by_share() -> None:
    root = parse(
        charts.share_bar(
            chart_id="r",
            title="Registry",
            width=400,
            segments=[
                Segment("answered", 3, "#0a0"),
                Segment("unavailable", 1, "#a00"),
                Segment("error", 0, "#00a"),
            ],
        )
    )
    widths = [float(b.get("width", 0)) for b in bars(root)]
    assert widths == pytest.approx([300.0, 100.0])
    assert "error 0%" in texts(root) and "unavailable 25%" in texts(root)


@pytest.mark.parametrize(
    ("svg"),
    [
        charts.stacked_bars(chart_id="a", title="t", labels=[], series=[]),
        charts.line_chart(chart_id="b", title="t", labels=[], values=[]),
        charts.sparkline([], chart_id="c", title="t"),
        charts.share_bar(chart_id="d", title="t", segments=[]),
    ],
)
def test_empty_data_still_draws_a_valid_chart(svg: str) -> None:
    root = parse(svg)
    assert root.findtext(f"{NS}desc") == "No data."
    assert bars(root) == []


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (2.2, 2.5), (7, 10), (11, 20), (240, 250)]
)
def test_axes_end_on_round_numbers(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == ceiling
