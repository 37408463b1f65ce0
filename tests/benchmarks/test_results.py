"""Where results go: the JSON, its markdown, the PNG chart, the README section; and the committed results
still render to the README's tables through the converted entries."""

from __future__ import annotations

import json
import sys

import pytest

from ember.benchmarking import (
    RESULTS,
    Bars,
    idle_companion,
    loaded_companion,
    publish,
    readme_section,
    results_path,
    write_chart,
    write_readme_section,
)
from ember.benchmarking.entries import BENCHMARKS, import_file
from ember.benchmarking.results import bar_value

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def render_idle(report, path):
    return f"Measured on {report['machine']} (results in `{path}`).", f"| x |\n|---:|\n| {report['x']} |"


def render_loaded(report, path):
    return f"Beside {report['busy_processes']} busy processes (`{path}`): x = {report['x']}"


def chart(report):
    return Bars("x", "seconds", {"case": {"ember": report["x"], "PyTorch": 2.0}})


def test_paths_of_idle_loaded_and_quick_runs(tmp_path):
    assert results_path("gpt", 0).name == "gpt.json" and results_path("gpt", 0).parent == RESULTS
    assert results_path("gpt", 2).name == "gpt_loaded.json"
    assert results_path("gpt", 0, tmp_path, quick=True) == tmp_path / "gpt_quick.json"
    idle = tmp_path / "mnist.json"
    loaded = loaded_companion(idle)
    assert loaded.name == "mnist_loaded.json" and idle_companion(loaded) == idle


def test_publish_writes_the_json_its_markdown_and_a_png_chart(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench.json"
    report = {"machine": "a test machine", "x": 1.5, "busy_processes": 0}
    files = publish(None, report, out, 0, render_idle, render_loaded, False, chart)
    assert files == [out, out.with_suffix(".md"), out.with_suffix(".png")]
    assert json.loads(out.read_text()) == report
    md = out.with_suffix(".md").read_text()
    assert md == f"Measured on a test machine (results in `{out}`).\n\n| x |\n|---:|\n| 1.5 |\n"
    assert md.strip() in capsys.readouterr().out
    assert out.with_suffix(".png").read_bytes()[:8] == PNG_SIGNATURE


def test_a_loaded_run_is_shown_below_its_idle_companion(tmp_path):
    idle_out = tmp_path / "bench.json"
    publish(None, {"machine": "m", "x": 1.0, "busy_processes": 0}, idle_out, 0, render_idle, render_loaded, False)
    loaded_out = loaded_companion(idle_out)
    files = publish(None, {"machine": "m", "x": 3.0, "busy_processes": 2}, loaded_out, 2, render_idle, render_loaded,
                    False)
    assert files == [loaded_out, loaded_out.with_suffix(".md")]  # no chart asked for
    assert loaded_out.with_suffix(".md").read_text() == f"Beside 2 busy processes (`{loaded_out}`): x = 3.0\n"
    publish(None, {"machine": "m", "x": 1.0, "busy_processes": 0}, idle_out, 0, render_idle, render_loaded, False)
    assert idle_out.with_suffix(".md").read_text().endswith(f"Beside 2 busy processes (`{loaded_out}`): x = 3.0\n")


def test_without_matplotlib_the_chart_is_skipped_with_a_note(tmp_path, monkeypatch, capsys):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    assert write_chart(Bars("t", "s", {"g": {"a": 1.0}}), tmp_path / "c.png") is None
    assert not (tmp_path / "c.png").exists()
    assert capsys.readouterr().out == "no chart for c.png: matplotlib is not installed (pip install 'ember[plot]')\n"
    out = tmp_path / "bench.json"
    files = publish(None, {"machine": "m", "x": 1.0, "busy_processes": 0}, out, 0, render_idle, render_loaded, False,
                    chart)
    assert files == [out, out.with_suffix(".md")]


def test_charts_of_uneven_groups_and_of_several_panels_are_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    bars = Bars("t", "ms", {"step": {"ember": 1.0, "PyTorch": 2.0}, "baked": {"ember": 0.5}}, note="machine")
    path = write_chart(bars, tmp_path / "sub" / "c.png")
    assert path == tmp_path / "sub" / "c.png" and path.read_bytes()[:8] == PNG_SIGNATURE
    panels = [bars, Bars("generation", "tokens/s", {"cached": {"ember": 1339.0}})]
    two = write_chart(panels, tmp_path / "two.png")
    assert two.read_bytes()[:8] == PNG_SIGNATURE
    width, height = (int.from_bytes(two.read_bytes()[16 + 4 * k:20 + 4 * k], "big") for k in range(2))  # IHDR
    assert width == 8 * 110 and height > int.from_bytes(path.read_bytes()[20:24], "big")  # a panel more: taller


def test_bar_values_are_written_readably():
    assert [bar_value(v) for v in (1713.4, 100.0, 70.53, 0.6521)] == ["1,713", "100", "70.5", "0.652"]


def test_the_readme_section_between_markers_is_replaced(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- b:start -->\nold\n<!-- b:end -->\noutro\n")
    write_readme_section("b", "| t |", "meta", readme)
    assert readme.read_text() == "intro\n<!-- b:start -->\nmeta\n\n| t |\n<!-- b:end -->\noutro\n"
    assert readme_section("b", readme) == "meta\n\n| t |" and readme_section("c", readme) is None
    with pytest.raises(SystemExit, match="has no <!-- c:start --> ... <!-- c:end --> markers"):
        write_readme_section("c", "t", "m", readme)


def test_publish_updates_the_readme_from_the_idle_run(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- b:start -->\n<!-- b:end -->\n")
    out = tmp_path / "bench.json"
    publish("b", {"machine": "m", "x": 2.0, "busy_processes": 0}, out, 0, render_idle, render_loaded, True,
            readme=readme)
    assert readme_section("b", readme) == out.with_suffix(".md").read_text().rstrip("\n")
    with pytest.raises(SystemExit, match="has no README section"):
        publish(None, {"machine": "m", "x": 2.0, "busy_processes": 0}, out, 0, render_idle, render_loaded, True)


# -- the committed results, through the converted entries ------------------------------------------------------------
COMMITTED = [("bench_mnist", "mnist"), ("bench_kan", "kan"), ("bench_gpt", "gpt"), ("bench_elm", "elm"),
             ("bench_tokenizer", "tokenizer"), ("bench_code_model", "bench_code_model"), ("bench_serve", "serve"),
             ("bench_decode_runtimes", "bench_decode_runtimes")]


@pytest.mark.parametrize("module, stem", COMMITTED)
def test_committed_results_render_to_the_readme_sections(module, stem):
    """The README's table is what the entry renders from the committed results (idle, then loaded): the
    conversion to the harness changed neither the files' meaning nor their tables."""
    entry = import_file((BENCHMARKS / f"{module}.py").resolve())
    marker = entry.BENCHMARK.marker
    section = readme_section(marker)
    idle_path, loaded_path = results_path(stem, 0), results_path(stem, 1)
    if section is None or not idle_path.exists():
        pytest.skip(f"no README section {marker} or no {idle_path} in this checkout")
    meta, table = entry.render_idle(json.loads(idle_path.read_text()), f"benchmarks/results/{idle_path.name}")
    parts = [table]
    if loaded_path.exists():
        parts.append(entry.render_loaded(json.loads(loaded_path.read_text()), f"benchmarks/results/{loaded_path.name}"))
    assert section == f"{meta}\n\n" + "\n\n".join(parts)


def test_committed_gpu_results_render_to_the_readme_section():
    bench_gpu = import_file((BENCHMARKS / "bench_gpu.py").resolve())
    path = RESULTS / "gpu" / "gpu.json"
    section = readme_section(bench_gpu.BENCHMARK.marker)
    if section is None or not path.exists():
        pytest.skip("no committed GPU results in this checkout")
    report = json.loads(path.read_text())
    assert section == bench_gpu.meta_line(report) + "\n\n" + bench_gpu.markdown(report)
