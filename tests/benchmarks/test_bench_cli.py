"""``ember bench``: it finds the entries, runs each in its own process, skips what cannot run here, keeps going
past a failure, and says so in its exit status and its summary."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from ember.benchmarking import BENCHMARKS, RESULTS, Benchmark, RunOptions
from ember.benchmarking.entries import find_entries, module_installed
from ember.cli.main import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

FAST = '''
from ember.benchmarking import Bars, Benchmark, Outcome, machine_info, machine_line, publish, rounds

def render_idle(r, path):
    return f"Measured on {r['machine']} (`{path}`).", f"| a/b |\\n|---:|\\n| {r['ratio']:.3f} |"

def render_loaded(r, path):
    return ""

def run(options):
    timings = rounds({"a": lambda: sum(range(20_000)), "b": lambda: sum(range(10_000))}, 3)
    report = {"machine": machine_line(machine_info()), "suite": options.suite, "against": options.against,
              "per_round": timings.per_round, "ratio": timings.ratio("a", "b")}
    files = publish(None, report, options.out_file("fast"), 0, render_idle, render_loaded, False,
                    lambda r: Bars("fast", "s", {"sums": {"a": 1.0, "b": 0.5}}))
    return Outcome(f"a/b {report['ratio']:.2f}x", tuple(files))

BENCHMARK = Benchmark(name="fast", title="two sums, timed", run=run)
'''
BROKEN = '''
from ember.benchmarking import Benchmark

def run(options):
    raise RuntimeError("the broken entry broke")

BENCHMARK = Benchmark(name="broken", title="always fails", run=run)
'''
TORCHY = '''
from ember.benchmarking import Benchmark

def run(options):
    raise AssertionError("never run with --against none")

BENCHMARK = Benchmark(name="torchy", title="against PyTorch", run=run, rivals=("torch",))
'''
UNIMPORTABLE = "raise ImportError('a missing dependency')\n"
NOT_YET = "print('a script that is not an entry yet')\n"


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    folder = tmp_path_factory.mktemp("entries")
    for name, code in (("fast", FAST), ("broken", BROKEN), ("torchy", TORCHY), ("unimportable", UNIMPORTABLE),
                       ("notyet", NOT_YET)):
        (folder / f"bench_{name}.py").write_text(textwrap.dedent(code))
    return folder


def test_list_names_the_repository_entries(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    for name, marker in (("mnist", "bench_mnist"), ("kan", "bench_kan"), ("elm", "bench_elm"), ("gpt", "bench_gpt"),
                         ("tokenizer", "bench_tokenizer"), ("flat_adam", "-")):
        line = next(line for line in out.splitlines() if line.startswith(f"{name} "))
        assert f"README: {marker}]" in line, line


def test_every_repository_entry_declares_a_benchmark():
    converted = {"bench_mnist", "bench_kan", "bench_elm", "bench_gpt", "bench_tokenizer", "bench_flat_adam",
                 "bench_code_model", "bench_decode_runtimes", "bench_serve", "bench_gpu"}
    found = {e.path.stem: e for e in find_entries(BENCHMARKS)}
    assert converted <= set(found)
    for stem in converted:
        assert isinstance(found[stem].benchmark, Benchmark), (stem, found[stem].problem)
    names = [found[stem].benchmark.name for stem in converted]
    assert len(set(names)) == len(names)


def test_list_says_what_would_be_skipped_and_why(entries, capsys):
    assert main(["bench", "--benchmarks", str(entries), "--list", "--against", "none"]) == 0
    out = capsys.readouterr().out
    assert "torchy" in out and "(would be skipped: compares against PyTorch (--against none))" in out
    assert "bench_notyet.py: not a harness entry yet (it defines no BENCHMARK)" in out
    assert "bench_unimportable.py: cannot be imported: ImportError: a missing dependency" in out


def test_a_quick_run_of_a_fast_entry_writes_its_results(entries, tmp_path, capfd):
    out = tmp_path / "results"
    assert main(["bench", "--benchmarks", str(entries), "--suite", "quick", "--only", "fast", "--out", str(out)]) == 0
    report = json.loads((out / "fast_quick.json").read_text())
    assert report["suite"] == "quick" and len(report["per_round"]["a"]) == 3
    ratios = [a / b for a, b in zip(report["per_round"]["a"], report["per_round"]["b"])]
    assert report["ratio"] == pytest.approx(sorted(ratios)[1])  # the median of 3 per-round ratios
    assert (out / "fast_quick.md").read_text().startswith("Measured on ")
    assert (out / "fast_quick.png").read_bytes()[:8] == PNG_SIGNATURE
    summary = capfd.readouterr().out.splitlines()
    row = next(line for line in summary if line.startswith("fast "))
    assert " ok " in row and f"a/b {report['ratio']:.2f}x" in row and "fast_quick.json, .md, .png" in row


def test_a_failing_entry_gives_exit_1_and_the_others_still_run(entries, tmp_path, capfd):
    out = tmp_path / "results"
    code = main(["bench", "--benchmarks", str(entries), "--suite", "quick", "--against", "none", "--out", str(out)])
    assert code == 1
    text = capfd.readouterr()
    assert "RuntimeError: the broken entry broke" in text.err  # the child's traceback, as it happened
    rows = {line.split()[0]: line for line in text.out.splitlines()[-7:] if line.strip()}
    assert " failed " in rows["broken"] and " failed " in rows["unimportable"]
    assert " skipped " in rows["torchy"] and "compares against PyTorch" in rows["torchy"]
    assert " skipped " in rows["notyet"]
    assert " ok " in rows["fast"]  # run after "broken" failed (entries run in file-name order)
    assert (out / "fast_quick.json").exists()
    assert text.out.splitlines()[-1] == "failed: broken, unimportable"


def test_the_quick_suite_of_a_real_entry_end_to_end(tmp_path, capfd):
    out = tmp_path / "results"
    assert main(["bench", "--suite", "quick", "--only", "flat_adam", "--out", str(out)]) == 0
    report = json.loads((out / "flat_adam_quick.json").read_text())
    assert report["quick"] is True and report["rounds"] == 20
    assert report["machine_info"]["cores"] >= 1 and report["machine"].startswith(report["machine_info"]["cpu_model"])
    for row in report["results"]:
        assert min(row["us_per_step"].values()) > 0
    assert (out / "flat_adam_quick.md").exists()
    if module_installed("matplotlib"):
        assert (out / "flat_adam_quick.png").read_bytes()[:8] == PNG_SIGNATURE
    assert any(line.startswith("flat_adam ") and " ok " in line for line in capfd.readouterr().out.splitlines())


def test_unknown_names_and_a_dry_run_into_the_readme_are_usage_errors(entries, capsys):
    assert main(["bench", "--benchmarks", str(entries), "--only", "fast,nope"]) == 2
    assert "--only: no benchmark named nope; the entries are: " in capsys.readouterr().err
    assert main(["bench", "--suite", "quick", "--update-readme", "--benchmarks", str(entries)]) == 2
    assert "a dry run's figures do not belong in the README" in capsys.readouterr().err


def test_a_folder_without_entries_is_named(tmp_path, capsys):
    assert main(["bench", "--benchmarks", str(tmp_path), "--list"]) == 1
    assert f"no benchmark entries: looked for {tmp_path}/bench_*.py" in capsys.readouterr().err


def test_against_torch_defaults_to_installed_and_is_refused_without_it(entries, monkeypatch, capsys):
    from ember.cli import bench

    assert bench.resolve_against(None) == ("torch" if module_installed("torch") else "none")
    monkeypatch.setattr("ember.benchmarking.entries.module_installed", lambda name: name != "torch")
    assert bench.resolve_against(None) == "none"
    assert main(["bench", "--benchmarks", str(entries), "--against", "torch", "--list"]) == 2
    assert "--against torch: PyTorch is not installed here" in capsys.readouterr().err


def test_run_options_say_where_the_entry_writes_and_with_which_options(tmp_path):
    quick = RunOptions("quick", "none", tmp_path)
    assert quick.quick and quick.out_file("kan") == tmp_path / "kan_quick.json"
    assert quick.argv("kan") == ["--quick", "--out", str(tmp_path / "kan_quick.json")]
    full = RunOptions("full", "torch", None, update_readme=True)
    assert full.out_file("gpu", tmp_path / "gpu") == tmp_path / "gpu" / "gpu.json"
    assert full.argv("kan") == ["--out", str(RESULTS / "kan.json"), "--update-readme"]
    with pytest.raises(ValueError, match="suite 'slow': expected one of quick, full"):
        RunOptions("slow")
    with pytest.raises(ValueError, match="against 'jax': expected one of torch, none"):
        RunOptions("full", "jax")
    with pytest.raises(ValueError, match="a dry run's figures do not belong in the README"):
        RunOptions("quick", update_readme=True)


def test_skip_reasons_name_what_is_missing():
    def run(options):
        raise AssertionError

    gpu = Benchmark("g", "t", run, rivals=("torch",), requires=("cupy",), needs_gpu=True)
    assert gpu.skip_reason("none", installed=lambda m: True) == "compares against PyTorch (--against none)"
    assert gpu.skip_reason("torch", installed=lambda m: m != "cupy") == "needs cupy, not installed here"
    assert gpu.skip_reason("torch", installed=lambda m: True, gpu=lambda: False).startswith("needs a CUDA GPU")
    assert gpu.skip_reason("torch", installed=lambda m: True, gpu=lambda: True) is None


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("bench_*.py")))
def test_no_benchmark_writes_a_dry_run_into_the_readme(script):
    """Every benchmark refuses ``--quick --update-readme`` before measuring anything (exit 2, naming the README)."""
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick", "--update-readme"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-400:]
    assert "README" in done.stderr
