"""The story page's spread chart, laid out on the server: bars of items per period and a step
line of outlets carrying the story so far. Geometry only; story.html draws it as SVG."""

import math
from dataclasses import dataclass
from datetime import UTC, date, timedelta

from tracker.storage.browse import Outlet, SpreadDay

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 44
MAX_BARS = 60  # more days than this are grouped into periods of several days
Y_TICKS = 4


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the bar's tooltip, e.g. "2026-11-30: 3 items"


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    bars: list[Bar]
    outlet_line: str  # SVG polyline points
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    period_days: int
    summary: str  # the chart in words, for its <desc>


def spread_chart(spread: list[SpreadDay], outlets: list[Outlet]) -> Chart | None:
    """None when the story has no items to chart."""
    if not spread:
        return None
    first, last = spread[0].day, spread[-1].day
    days = (last - first).days + 1
    period = math.ceil(days / MAX_BARS)
    starts = [first + timedelta(days=n) for n in range(0, days, period)]
    counts = [0] * len(starts)
    for day in spread:
        counts[(day.day - first).days // period] += day.items
    firsts = [o.first_seen_at.astimezone(UTC).date() for o in outlets]
    carried = [sum(1 for d in firsts if d < start + timedelta(days=period)) for start in starts]
    top = max(max(counts), max(carried, default=0), 1)
    scale = _Scale(len(starts), _nice_ceiling(top))
    bars = [
        _bar(scale, n, count, _label(start, count, period))
        for n, (start, count) in enumerate(zip(starts, counts, strict=True))
    ]
    return Chart(
        WIDTH,
        HEIGHT,
        LEFT,
        WIDTH - RIGHT,
        TOP,
        HEIGHT - BOTTOM,
        bars,
        _step_line(scale, carried),
        _x_ticks(scale, starts),
        [Tick(scale.y(v), str(v)) for v in _y_values(scale.top)],
        period,
        _summary(first, last, sum(counts), len(outlets)),
    )


@dataclass(frozen=True)
class _Scale:
    slots: int
    top: int

    @property
    def slot(self) -> float:
        return (WIDTH - LEFT - RIGHT) / self.slots

    def x(self, n: float) -> float:
        return round(LEFT + n * self.slot, 1)

    def y(self, value: float) -> float:
        return round(HEIGHT - BOTTOM - value / self.top * (HEIGHT - BOTTOM - TOP), 1)


def _bar(scale: _Scale, n: int, count: int, label: str) -> Bar:
    # A pixel of gap either side, so neighbouring days stay apart.
    return Bar(scale.x(n) + 1, scale.y(count), scale.slot - 2, scale.y(0) - scale.y(count), label)


def _nice_ceiling(value: int) -> int:
    # A top the ticks divide evenly: 4, 8, 12, 20, 40, ... so tick labels are whole numbers.
    step = max(1, math.ceil(value / Y_TICKS))
    return step * Y_TICKS


def _y_values(top: int) -> list[int]:
    return [top * n // Y_TICKS for n in range(Y_TICKS + 1)]


def _step_line(scale: _Scale, carried: list[int]) -> str:
    points: list[str] = []
    for n, count in enumerate(carried):
        y = scale.y(count)
        points += [f"{scale.x(n)},{y}", f"{scale.x(n + 1)},{y}"]
    return " ".join(points)


def _x_ticks(scale: _Scale, starts: list[date]) -> list[Tick]:
    # At most about six labels, so ISO dates never overlap.
    every = max(1, math.ceil(len(starts) / 6))
    return [
        Tick(round(scale.x(n) + scale.slot / 2, 1), start.isoformat())
        for n, start in enumerate(starts)
        if n % every == 0
    ]


def _label(start: date, count: int, period: int) -> str:
    noun = "item" if count == 1 else "items"
    if period == 1:
        return f"{start.isoformat()}: {count} {noun}"
    end = start + timedelta(days=period - 1)
    return f"{start.isoformat()} to {end.isoformat()}: {count} {noun}"


def _summary(first: date, last: date, total: int, outlets: int) -> str:
    span = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    return (
        f"{total} item{'s' if total != 1 else ''} in {outlets} "
        f"outlet{'s' if outlets != 1 else ''}, {span} (UTC)."
    )
