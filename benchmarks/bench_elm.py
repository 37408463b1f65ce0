"""The forward-only experiment registry on MNIST and Fashion-MNIST: accuracy, seconds, peak memory.

Every experiment runs in a fresh process (`ember elm run NAME --dataset D --json`), so its peak
memory (the resident set's high-water mark during the fit) is its own. Experiments marked slow
(the reference system's 10-member conv128 configuration, ~2 CPU-hours here) run only with
--include-slow; CIFAR-10 ones only when its files are found.

Run:  EMBER_DATA=../shared/data python benchmarks/bench_elm.py [--datasets mnist fashion-mnist]
      [--only NAME ...] [--include-slow] [--merge] [--update-readme]
Dry run (seconds: the fastest experiment, hebbian2048, on MNIST): python benchmarks/bench_elm.py --quick
Writes benchmarks/results/elm.json, .md and .png (elm_quick.* with --quick). ``ember bench --only elm`` runs it
as an entry of the harness. Nothing is timed against a rival here, so it runs with ``--against none`` too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from ember.benchmarking import (  # noqa: E402
    Bars, Benchmark, BenchmarkFailed, Outcome, RunOptions, machine_info, machine_line, publish, results_path,
    refuse_dry_run_in_readme)
from ember.data import DatasetNotFoundError, locate  # noqa: E402
from ember.elm.experiments import EXPERIMENTS  # noqa: E402

QUICK = {"only": ["hebbian2048"], "datasets": ["mnist"]}


def run_one(name: str, dataset: str, seed: int, timeout: int) -> dict:
    cmd = [sys.executable, "-m", "ember.cli.main", "elm", "run", name, "--dataset", dataset, "--seed", str(seed),
           "--json", "--no-download"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT.parent)
    if proc.returncode != 0:
        return {"experiment": name, "dataset": dataset, "error": proc.stderr.strip().splitlines()[-1:],
                "seconds": round(time.perf_counter() - started, 1)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(rows: list[dict], datasets: list[str]) -> str:
    by = {(r["experiment"], r["dataset"]): r for r in rows}
    names = list(dict.fromkeys(r["experiment"] for r in rows))
    head = "| experiment | gradients | " + " | ".join(
        f"{d} test acc | {d} train acc | {d} s | {d} peak GiB" for d in datasets) + " |"
    lines = [head, "|---|---|" + "---:|" * (4 * len(datasets))]
    for name in names:
        cells = [name, "yes" if EXPERIMENTS[name].gradient_steps else "no"]
        for d in datasets:
            r = by.get((name, d))
            if r is None or "error" in r:
                cells += ["-"] * 4
                continue
            peak = r.get("peak_memory_bytes")
            cells += [f"{r['test_accuracy']:.2%}", f"{r['train_accuracy']:.2%}", f"{r['seconds']:.0f}",
                      f"{peak / 2**30:.2f}" if peak else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_idle(report: dict, path: str):
    rows = report["results"]
    datasets = [d for d in ["mnist", "fashion-mnist", "kmnist", "cifar10"] if any(r["dataset"] == d for r in rows)]
    meta = (f"Measured {report['date']} on {report['machine']}; `python benchmarks/bench_elm.py` "
            f"(results in `{path}`; seconds = fit time, peak = the process's high-water mark during the fit).")
    return meta, markdown(rows, datasets)


def render_loaded(report: dict, path: str) -> str:
    """This benchmark has no loaded runs; a loaded file placed beside the results is only named."""
    return f"(a loaded run is on file in `{path}`)"


def headline(report: dict) -> str:
    """The best forward-only (no gradient step) test accuracy on each dataset."""
    best = {}
    for r in report["results"]:
        if "error" not in r and not EXPERIMENTS[r["experiment"]].gradient_steps:
            if r["dataset"] not in best or r["test_accuracy"] > best[r["dataset"]]["test_accuracy"]:
                best[r["dataset"]] = r
    return "best forward-only: " + (", ".join(f"{d} {r['test_accuracy']:.2%} ({r['experiment']})"
                                             for d, r in best.items()) or "none")


def chart(report: dict) -> Bars | None:
    groups = {}
    for r in report["results"]:
        if "error" not in r:
            groups.setdefault(r["experiment"], {})[r["dataset"]] = 100 * r["test_accuracy"]
    return Bars("Forward-only experiments: test accuracy", "test accuracy, %", groups, note=report["machine"]) \
        if groups else None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=None, help="default mnist fashion-mnist")
    parser.add_argument("--only", nargs="+", default=None, help="experiment names (default: all but slow)")
    parser.add_argument("--include-slow", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=3 * 3600, help="seconds per experiment")
    parser.add_argument("--quick", action="store_true", help="a dry run in seconds (hebbian2048 on MNIST)")
    parser.add_argument("--out", default=None, help="default results/elm.json")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of --out that this run does not redo (to rerun a few experiments)")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    sizes = QUICK if args.quick else {}
    args.datasets = args.datasets or sizes.get("datasets", ["mnist", "fashion-mnist"])
    args.only = args.only or sizes.get("only")
    args.out = Path(args.out) if args.out else results_path("elm", quick=args.quick)
    return args


def bench(args) -> Outcome:
    names = args.only or [n for n, e in EXPERIMENTS.items() if args.include_slow or not e.slow]
    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    rows = []
    for dataset in args.datasets + ["cifar10"]:
        for name in names:
            if dataset not in EXPERIMENTS[name].datasets:
                continue
            if dataset == "cifar10":
                try:
                    locate("cifar10", "test_batch.bin", download=False)
                except (DatasetNotFoundError, FileNotFoundError):
                    print(f"{name}: CIFAR-10 files not found here, not run", flush=True)
                    continue
            row = run_one(name, dataset, args.seed, args.timeout)
            rows.append(row)
            status = f"error {row['error']}" if "error" in row else (
                f"test {row['test_accuracy']:.2%}, train {row['train_accuracy']:.2%}, {row['seconds']:.0f} s")
            print(f"{name} on {dataset}: {status}", flush=True)
    if args.merge and args.out.is_file():
        redone = {(r["experiment"], r["dataset"]) for r in rows}
        kept = [r for r in json.loads(args.out.read_text())["results"]
                if (r["experiment"], r["dataset"]) not in redone]
        order = {name: i for i, name in enumerate(EXPERIMENTS)}
        rows = sorted(kept + rows, key=lambda r: (r["dataset"], order.get(r["experiment"], len(order))))
    report = {"benchmark": "bench_elm", "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info),
              "machine_info": info, "quick": args.quick, "results": rows}
    files = publish("bench_elm", report, args.out, 0, render_idle, render_loaded, args.update_readme, chart)
    failed = [f"{r['experiment']} on {r['dataset']}" for r in rows if "error" in r]
    if failed:  # after publishing: the rows that did run are kept
        raise BenchmarkFailed(f"{', '.join(failed)} failed: their errors are in {args.out}")
    return Outcome(headline(report), tuple(files))


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("elm")))


def main(argv=None) -> int:
    try:
        bench(parse_args(argv))
    except BenchmarkFailed as exc:
        print(f"bench_elm: {exc}", file=sys.stderr)
        return 1
    return 0


BENCHMARK = Benchmark(name="elm", title="Forward-only experiments (ELM, random and PCA features, local rules): "
                                        "accuracy, seconds, peak memory", run=run, marker="bench_elm")


if __name__ == "__main__":
    sys.exit(main())
