"""Where results go and how they are shown: the JSON, its markdown, a PNG chart, the README's sections.

A benchmark writes ``<name>.json`` (``<name>_loaded.json`` for a run beside a load), the markdown table
beside it (``.md``) and a chart (``.png``, when matplotlib is installed); with ``--update-readme`` the
README's section between ``<!-- marker:start -->`` and ``<!-- marker:end -->`` is rewritten from the files,
so the README never shows a figure that no results file holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # a checkout: the folder holding ember/, benchmarks/ and README.md
BENCHMARKS = REPO / "benchmarks"
RESULTS = BENCHMARKS / "results"
README = REPO / "README.md"
LOADED_SUFFIX = "_loaded"
QUICK_SUFFIX = "_quick"


# -- paths ------------------------------------------------------------------------------------------------------
def results_path(name: str, busy_processes: int = 0, folder: Path | None = None, quick: bool = False) -> Path:
    """``<folder>/<name>.json`` for an idle run, ``<name>_loaded.json`` beside a load and ``<name>_quick.json``
    for a dry run (``folder``: the checkout's benchmarks/results by default)."""
    suffix = QUICK_SUFFIX if quick else ""
    return Path(folder or RESULTS) / f"{name}{suffix}{LOADED_SUFFIX if busy_processes else ''}.json"


def loaded_companion(idle_out: Path) -> Path:
    """Where the loaded run belonging to the idle results file ``idle_out`` is written by default."""
    return idle_out.with_name(f"{idle_out.stem}{LOADED_SUFFIX}{idle_out.suffix}")


def idle_companion(loaded_out: Path) -> Path:
    """The idle results file a loaded results file ``loaded_out`` belongs to (its name without the suffix)."""
    stem = loaded_out.stem.removesuffix(LOADED_SUFFIX)
    return loaded_out.with_name(f"{stem}{loaded_out.suffix}")


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def shown(path: Path) -> str:
    """``path`` as the README names it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


# -- the README ----------------------------------------------------------------------------------------------
def write_readme_section(marker: str, table: str, meta: str, readme: Path | None = None) -> None:
    """Replace everything between <!-- {marker}:start --> and <!-- {marker}:end --> with meta and table."""
    readme = Path(readme or README)
    text = readme.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"{readme} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{meta}\n\n{table}\n{end}{tail}")


def readme_section(marker: str, readme: Path | None = None) -> str | None:
    """The text between a marker's start and end lines (None when the README has no such section)."""
    text = Path(readme or README).read_text()
    start, end = f"<!-- {marker}:start -->\n", f"\n<!-- {marker}:end -->"
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0]


# -- charts -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bars:
    """One panel of a chart: for each group (a model, a corpus, a load level) one bar per series (ember,
    PyTorch, ...), in ``unit``. A group shows only the series it has; a series keeps its colour across groups
    and panels. A chart is one ``Bars`` or a list of them (one panel per unit: ms, tokens/s)."""

    title: str
    unit: str
    groups: dict[str, dict[str, float]]
    note: str = ""


BAR_HEIGHT_IN = 0.28  # inches of figure per bar: a panel grows with what it shows


def write_chart(chart: Bars | Sequence[Bars], path: Path) -> Path | None:
    """Draw ``chart`` (one or more panels of horizontal grouped bars) into the PNG ``path``; without matplotlib,
    say so in one line and draw nothing (it is an optional extra: ``pip install 'ember[plot]'``)."""
    try:
        from matplotlib import rcParams
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print(f"no chart for {Path(path).name}: matplotlib is not installed (pip install 'ember[plot]')")
        return None
    panels = [chart] if isinstance(chart, Bars) else list(chart)
    names = list(dict.fromkeys(n for bars in panels for values in bars.groups.values() for n in values))
    cycle = rcParams["axes.prop_cycle"].by_key()["color"]
    colours = {name: cycle[k % len(cycle)] for k, name in enumerate(names)}
    heights = [0.9 + BAR_HEIGHT_IN * sum(len(v) for v in bars.groups.values()) for bars in panels]
    fig = Figure(figsize=(8, sum(heights) + 0.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, bars in zip(axes, panels):
        draw_panel(ax, bars, colours)
    note = next((bars.note for bars in panels if bars.note), "")
    if note:
        fig.text(0.01, 0.005, note, fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.02 if note else 0, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def draw_panel(ax, bars: Bars, colours: dict[str, str]) -> None:
    """Each group's bars packed around its tick, labelled with their values; one legend entry per series."""
    labelled = set()
    for g, values in enumerate(bars.groups.values()):
        height = 0.8 / max(len(values), 1)
        for k, (name, value) in enumerate(values.items()):
            drawn = ax.barh(g - 0.4 + height * (k + 0.5), value, height=height * 0.9, color=colours[name],
                            label=None if name in labelled else name)
            ax.bar_label(drawn, labels=[bar_value(value)], padding=2, fontsize=7)
            labelled.add(name)
    ax.set_yticks(range(len(bars.groups)), list(bars.groups), fontsize=8)
    ax.invert_yaxis()  # the first group on top, as in the tables
    ax.set_xlabel(bars.unit, fontsize=9)
    ax.set_title(bars.title, fontsize=10)
    ax.margins(x=0.15)
    ax.legend(fontsize=7, loc="best")


def bar_value(value: float) -> str:
    """1,713 / 70.5 / 0.652: whole numbers from 100 on, three significant digits below."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


# -- publishing a run ------------------------------------------------------------------------------------------
def publish(marker: str | None, report: dict, out: Path, busy: int, render_idle, render_loaded,
            update_readme: bool, chart: Callable[[dict], Bars | Sequence[Bars] | None] | None = None,
            readme: Path | None = None) -> list[Path]:
    """Write ``report`` to ``out``, its markdown beside it (``.md``) and its chart (``.png``); with
    ``update_readme``, the README's ``marker`` section: the idle run's table and, when a loaded run is on file
    next to it, that one's below. Returns the files written.

    ``render_idle(idle, path)`` gives (meta line, table), or None for a run without its accuracy part;
    ``render_loaded(loaded, path)`` gives the loaded run's paragraph and table; ``chart(report)`` gives the
    ``Bars`` panel or panels to draw (or None: nothing worth drawing)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    written = [out]
    idle_out, loaded_out = (idle_companion(out), out) if busy else (out, loaded_companion(out))
    idle, loaded = (read_json(idle_out), report) if busy else (report, read_json(loaded_out))
    idle_md = render_idle(idle, shown(idle_out)) if idle is not None else None
    loaded_md = render_loaded(loaded, shown(loaded_out)) if loaded is not None else None
    if busy:
        text = loaded_md
    else:
        text = None if idle_md is None else "\n\n".join([*idle_md, *([loaded_md] if loaded_md else [])])
    if text:
        out.with_suffix(".md").write_text(text + "\n")
        written.append(out.with_suffix(".md"))
        print(text)
    bars = chart(report) if chart is not None else None
    if bars is not None and (png := write_chart(bars, out.with_suffix(".png"))):
        written.append(png)
    if update_readme:
        if marker is None:
            raise SystemExit(f"--update-readme: {out.stem} has no README section")
        if idle_md is None:
            raise SystemExit(f"--update-readme: {idle_out} holds no complete idle run (run without --load, "
                             "with the accuracy part, first)")
        meta, table = idle_md
        write_readme_section(marker, "\n\n".join([table, *([loaded_md] if loaded_md else [])]), meta, readme)
    return written
