"""The forward-only experiment registry on MNIST and Fashion-MNIST: accuracy, seconds, peak memory.

Every experiment runs in a fresh process (`ember elm run NAME --dataset D --json`), so its peak
memory (the resident set's high-water mark during the fit) is its own. Experiments marked slow
(the reference system's 10-member conv128 configuration, ~2 CPU-hours here) run only with
--include-slow; CIFAR-10 ones only when its files are found.

Run:  EMBER_DATA=../shared/data python benchmarks/bench_elm.py [--datasets mnist fashion-mnist]
      [--only NAME ...] [--include-slow] [--merge] [--update-readme]
Writes benchmarks/results/elm.json and elm.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from ember.data import DatasetNotFoundError, locate  # noqa: E402
from ember.elm.experiments import EXPERIMENTS  # noqa: E402


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist"])
    parser.add_argument("--only", nargs="+", default=None, help="experiment names (default: all but slow)")
    parser.add_argument("--include-slow", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=3 * 3600, help="seconds per experiment")
    parser.add_argument("--out", default=str(ROOT / "results" / "elm.json"))
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows of --out that this run does not redo (to rerun a few experiments)")
    args = parser.parse_args(argv)
    names = args.only or [n for n, e in EXPERIMENTS.items() if args.include_slow or not e.slow]
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
    if args.merge and Path(args.out).is_file():
        redone = {(r["experiment"], r["dataset"]) for r in rows}
        kept = [r for r in json.loads(Path(args.out).read_text())["results"]
                if (r["experiment"], r["dataset"]) not in redone]
        order = {name: i for i, name in enumerate(EXPERIMENTS)}
        rows = sorted(kept + rows, key=lambda r: (r["dataset"], order.get(r["experiment"], len(order))))
    datasets = [d for d in ["mnist", "fashion-mnist", "kmnist", "cifar10"] if any(r["dataset"] == d for r in rows)]
    report = {"benchmark": "bench_elm", "date": time.strftime("%Y-%m-%d"),
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "results": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(rows, datasets)
    meta = (f"Measured {report['date']} on {report['machine']}; `python benchmarks/bench_elm.py` "
            "(results in `benchmarks/results/elm.json`; seconds = fit time, peak = the process's high-water mark "
            "during the fit).")
    out.with_suffix(".md").write_text(meta + "\n\n" + table + "\n")
    print(table)
    if args.update_readme:
        from readme import update_readme

        update_readme("bench_elm", table, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
