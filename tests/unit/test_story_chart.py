"""The story spread chart's layout: periods, bars, the outlets step line, axis ticks."""

from datetime import UTC, date, datetime, timedelta

from tracker.storage.browse import Outlet, SpreadDay
from tracker.web.story_chart import HEIGHT, MAX_BARS, spread_chart


def outlet(n: int, first: date) -> Outlet:
    seen = datetime(first.year, first.month, first.day, 23, 30, tzinfo=UTC)
    return Outlet(n, f"Outlet {n}", "media", 1, seen)


def test_a_story_without_items_has_no_chart() -> None:
    assert spread_chart([], []) is None


def test_days_without_items_get_an_empty_bar_so_the_time_axis_is_even() -> None:
    start = date(2026, 11, 1)
    spread = [SpreadDay(start, 2, 2), SpreadDay(start + timedelta(days=3), 1, 1)]
    chart = spread_chart(spread, [outlet(1, start), outlet(2, start), outlet(3, spread[1].day)])
    assert chart is not None
    assert [b.label for b in chart.bars] == [
        "2026-11-01: 2 items",
        "2026-11-02: 0 items",
        "2026-11-03: 0 items",
        "2026-11-04: 1 item",
    ]
    assert chart.bars[1].height == 0 and chart.bars[0].height == 2 * chart.bars[3].height
    assert chart.summary == "3 items in 3 outlets, 2026-11-01 to 2026-11-04 (UTC)."
    assert [t.label for t in chart.y_ticks] == ["0", "1", "2", "3", "4"]


def test_a_long_story_is_grouped_into_periods_of_several_days() -> None:
    start = date(2026, 1, 1)
    spread = [SpreadDay(start + timedelta(days=n), 1, 1) for n in range(0, 200, 2)]
    chart = spread_chart(spread, [outlet(1, start)])
    assert chart is not None
    assert chart.period_days == 4 and len(chart.bars) <= MAX_BARS
    assert chart.bars[0].label == "2026-01-01 to 2026-01-04: 2 items"
    assert sum(int(b.label.rsplit(": ", 1)[1].split()[0]) for b in chart.bars) == 100
    assert len(chart.x_ticks) <= 7


def test_the_outlets_line_never_falls_and_ends_at_the_number_of_outlets() -> None:
    start = date(2026, 11, 1)
    spread = [SpreadDay(start + timedelta(days=n), 1, 1) for n in range(5)]
    outlets = [outlet(n, start + timedelta(days=n)) for n in (0, 0, 2, 4)]
    chart = spread_chart(spread, outlets)
    assert chart is not None
    ys = [float(p.split(",")[1]) for p in chart.outlet_line.split()]
    assert ys == sorted(ys, reverse=True), "SVG y shrinks as the count grows"
    top = {t.label: t.at for t in chart.y_ticks}
    assert ys[-1] == top["4"] and ys[0] == top["2"] and max(ys) < HEIGHT
