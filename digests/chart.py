"""The digest chart: grade means with 95% intervals per neighbourhood or per round, as a PNG."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from digests.model import TOTAL, PublishedTable
from digests.render import _Fmt, neighbourhood_name
from locales.catalogue import Catalogue, default_catalogue

WIDTH_PX = 1080
HEIGHT_PX = 1440
DPI = 100
MAX_PANELS = 3
# Labels longer than this are wrapped (a hidden cell's reason on a line of its own).
LABEL_CHARS = 34
# matplotlib's font and text caches are shared by all figures: one chart at a time, whichever
# thread draws it (the chart uses no pyplot global state, but stays on the safe side).
_DRAWING = threading.Lock()


@dataclass(frozen=True)
class Point:
    """One bar or point: a published mean, or a hole labelled as too few responses."""

    label: str
    value: float | None
    low: float | None
    high: float | None
    n: int | None
    text: str = ""  # the value as the digest's language writes it ("6,5")

    @property
    def suppressed(self) -> bool:
        """True when there is no published figure to draw."""
        return self.value is None


@dataclass(frozen=True)
class Panel:
    """One grade question."""

    title: str
    points: list[Point]


@dataclass(frozen=True)
class ChartData:
    """Exactly what the chart draws, taken from the published table only."""

    kind: str  # neighbourhoods | rounds
    title: str
    panels: list[Panel]


def _plain(text: str) -> str:
    # Catalogue texts come HTML-escaped for Telegram; the chart wants them plain.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def chart_data(
    table: PublishedTable,
    lang: str = "nl",
    kind: str | None = None,
    catalogue: Catalogue | None = None,
) -> ChartData:
    """What to draw: per neighbourhood, or per round when there are three rounds or more."""
    fmt = _Fmt(lang, catalogue or default_catalogue())
    grades = [q for q in table.questions if q.type == "grade"][:MAX_PANELS]
    if kind is None:
        kind = "rounds" if len(table.earlier_round_labels) >= 2 else "neighbourhoods"
    panels = []
    for q in grades:
        points = []
        if kind == "rounds":
            scopes = [(f"round:{lb}", lb) for lb in table.earlier_round_labels]
            scopes.append(("current", table.round_name))
            keys = [(scope, TOTAL, label) for scope, label in scopes]
        else:
            keys = [("current", code, "") for code, _ in table.neighbourhoods]
            keys.append(("current", TOTAL, ""))
        for scope, code, label in keys:
            name = label or _plain(neighbourhood_name(table, code, fmt))
            c = table.cell(scope, code, q.id, "mean")
            if c is None or not c.shown or c.value is None:
                why = _plain(fmt.hidden(c.suppressed if c is not None else None))
                # A long reason goes on its own line, so the bars keep their width.
                sep = "\n" if len(name) + len(why) > LABEL_CHARS else " "
                points.append(Point(f"{name}:{sep}{why}", None, None, None, None))
            else:
                points.append(
                    Point(
                        f"{name} (n={c.n})", c.value, c.ci_low, c.ci_high, c.n, fmt.number(c.value)
                    )
                )
        panels.append(Panel(q.label_in(lang), points))
    title_key = "chart_rounds_title" if kind == "rounds" else "chart_title"
    title = f"{_plain(fmt.t(title_key))}: {table.area_name}"
    return ChartData(kind, title, panels)


def draw(data: ChartData, footer: str = "") -> bytes:
    """Draw chart data as a phone-friendly portrait PNG (1080 px wide); one at a time."""
    with _DRAWING:
        return _draw(data, footer)


def _draw(data: ChartData, footer: str) -> bytes:
    rows = max(1, len(data.panels))
    # A Figure on its own Agg canvas, not pyplot: no global figure registry to keep or close,
    # and about a quarter faster for the same pixels.
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1)
    axes_list = list(axes) if rows > 1 else [axes]
    fig.suptitle(data.title, fontsize=26, fontweight="bold")
    for ax, panel in zip(axes_list, data.panels, strict=False):
        _draw_panel(ax, panel, data.kind)
    if footer:
        fig.text(0.5, 0.01, footer, ha="center", fontsize=16, color="#555555")
    # tight_layout is a third of the time, but the layout depends on the labels' widths.
    fig.tight_layout(rect=(0, 0.03, 1, 0.96))
    out = io.BytesIO()
    # No software/date metadata: the same data gives the same bytes.
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _draw_panel(ax: Axes, panel: Panel, kind: str) -> None:
    ax.set_title(panel.title, fontsize=22, loc="left")
    ax.set_xlim(1, 10) if kind != "rounds" else ax.set_ylim(1, 10)
    ax.tick_params(labelsize=16)
    if kind == "rounds":
        xs = list(range(len(panel.points)))
        for x, p in zip(xs, panel.points, strict=True):
            if p.value is None:
                ax.text(x, 1.5, "–", ha="center", fontsize=18, color="#777777")
                continue
            err = [[p.value - (p.low or p.value)], [(p.high or p.value) - p.value]]
            ax.errorbar([x], [p.value], yerr=err, fmt="o", color="#1f5fa8", capsize=8, ms=10)
            ax.annotate(
                p.text or f"{p.value:.1f}",
                (x, p.value),
                xytext=(12, 0),
                textcoords="offset points",
                fontsize=16,
                va="center",
            )
        ax.set_xticks(xs, [p.label for p in panel.points], rotation=20, ha="right")
        ax.grid(axis="y", alpha=0.3)
        return
    ys = list(range(len(panel.points)))[::-1]
    for y, p in zip(ys, panel.points, strict=True):
        if p.value is None:
            continue
        err = [[p.value - (p.low or p.value)], [(p.high or p.value) - p.value]]
        ax.barh([y], [p.value - 1], left=1, color="#1f5fa8", height=0.6)
        ax.errorbar([p.value], [y], xerr=err, fmt="none", ecolor="#222222", capsize=6, lw=2)
        ax.text(1.1, y, p.text or f"{p.value:.1f}", va="center", fontsize=16, color="white")
    ax.set_yticks(ys, [p.label for p in panel.points])
    for label, p in zip(ax.get_yticklabels(), panel.points, strict=True):
        if p.value is None:
            label.set_color("#888888")
            label.set_fontstyle("italic")
    ax.grid(axis="x", alpha=0.3)


def chart_job(
    table: PublishedTable,
    lang: str = "nl",
    kind: str | None = None,
    catalogue: Catalogue | None = None,
) -> tuple[ChartData, str] | None:
    """What to draw and its footer (plain data, for a worker process), or None: no grades."""
    cat = catalogue or default_catalogue()
    data = chart_data(table, lang, kind, cat)
    if not data.panels:
        return None
    return data, _plain(_Fmt(lang, cat).t("chart_footer"))


def draw_job(job: tuple[ChartData, str]) -> bytes:
    """draw() of a chart_job (a top-level function, so a process pool can run it)."""
    return draw(*job)


def render_chart(
    table: PublishedTable,
    lang: str = "nl",
    kind: str | None = None,
    catalogue: Catalogue | None = None,
) -> bytes | None:
    """The digest chart as PNG bytes, or None when there is no grade question to draw."""
    job = chart_job(table, lang, kind, catalogue)
    return draw_job(job) if job is not None else None
