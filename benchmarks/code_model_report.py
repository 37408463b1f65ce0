"""Report the code-model runs of issue 13: validation loss and bits per byte, speed, `fibonacci` samples.

The runs (same seed, data, batches and token budget; only the residual differs):

    COMMON="--data python-stdlib --vocab-size 8192 --n-layer 6 --n-head 6 --n-embd 384 --block-size 256
            --batch-size 8 --max-iters 1000 --lr 1e-3 --min-lr 1e-4 --warmup-iters 100 --eval-interval 250
            --eval-iters 20 --gelu tanh --seed 1337"
    ember train gpt $COMMON --residual plain            --out runs/code-plain
    ember train gpt $COMMON --residual mhc --streams 4  --out runs/code-mhc4
    ember train gpt $COMMON --residual mhc2             --out runs/code-mhc2

then ``python benchmarks/code_model_report.py runs/code-plain runs/code-mhc4 runs/code-mhc2``. For each run:
the loss over every token of the held-out files (whole files: ``ember.data.text.load_corpus``), in nats
per token and bits per byte; training tokens per second (the log's median over the run); 100 completions
of ``def fibonacci(n):\\n`` (temperature 0.8, seeds 0..99, KV cache; the final newline is sampled, see
``sample``), each cut where the function ends (the first non-empty line back at column 0), and the fraction
that ``ast.parse`` accepts. Writes
``benchmarks/results/code_model.json`` (one entry per run), ``code_model_loss.png`` (the loss curves;
matplotlib is optional) and prints three samples of each run for the README.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

PROMPT = "def fibonacci(n):\n"
SAMPLES, MAX_NEW_TOKENS, TEMPERATURE = 100, 160, 0.8


def function_end(completion: str) -> str:
    """The completion cut where the function ends: before the first non-empty line that starts at column 0
    (or, when the budget ran out inside the body, after its last complete line)."""
    lines = completion.split("\n")
    kept = []
    for i, line in enumerate(lines):
        if line.strip() and not line[0].isspace():
            return "\n".join(kept) + "\n"
        if i == len(lines) - 1:  # the last line may be cut mid-token
            break
        kept.append(line)
    return "\n".join(kept) + "\n"


def parses(body: str) -> bool:
    with warnings.catch_warnings():  # samples are full of odd literals: their SyntaxWarnings say nothing here
        warnings.simplefilter("ignore")
        try:
            ast.parse(PROMPT + body)
        except (SyntaxError, ValueError):
            return False
    return True


def sample(model, tokenizer, seed: int) -> str:
    """One completion of PROMPT: the text after its final newline.

    The prompt is fed without that newline and the model writes it (token healing): byte-level BPE merges a
    newline with the indentation after it, so a prompt token that is a bare "\n" tells the model the next
    line starts at column 0, and it starts a new definition instead of the body. A completion whose first
    character is not the newline is returned as it is (it then fails to parse: counted against the model).
    """
    out = []
    for token in model.generate(tokenizer.encode(PROMPT[:-1]), MAX_NEW_TOKENS, temperature=TEMPERATURE, seed=seed):
        out.append(token)
        text = tokenizer.decode(out)
        if not text.startswith("\n"):
            return text
        if any(line.strip() and not line[0].isspace() for line in text[1:].split("\n")[:-1]):
            break  # the function has ended: no need to sample further
    return tokenizer.decode(out)[1:]


def report(folder: Path, samples: int) -> dict:
    from ember.data.text import load_corpus
    from ember.io.jsonl import read_jsonl
    from ember.train.lm import load_lm
    from ember.train.lm_eval import evaluate_lm

    model, tokenizer, _ = load_lm(folder)
    log = read_jsonl(folder / "log.jsonl")
    train = [r for r in log if r.get("event") == "train"]
    evals = [r for r in log if r.get("event") == "eval"]
    corpus = load_corpus("python-stdlib", tokenizer=tokenizer)
    result = evaluate_lm(model, tokenizer, corpus.val, batch_size=16)
    bodies = [function_end(sample(model, tokenizer, seed)) for seed in range(samples)]
    ok = [parses(b) for b in bodies]
    c = model.config
    iters = max((r["iter"] for r in train), default=0)
    tokens_per_iter = round(statistics.median(r["tokens_per_s"] * r["ms_per_iter"] / 1000 for r in train))
    return {
        "run": folder.name, "residual": c.residual, "streams": c.streams, "params": model.num_parameters(),
        "train_tokens": iters * tokens_per_iter,
        "val_loss": result.loss, "val_bpb": result.bits_per_byte, "val_tokens": result.tokens,
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in train if r.get("tokens_per_s")),
        "parse_fraction": sum(ok) / len(ok), "samples": len(ok),
        "examples": [PROMPT + b for b, good in zip(bodies, ok) if good][:3],
        "curve": {"train": [(r["iter"], r["loss"]) for r in train], "val": [(r["iter"], r["val_loss"]) for r in evals]},
    }


def plot(entries: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for e in entries:
        label = e["residual"] if e["residual"] == "plain" else f"{e['residual']} n={e['streams']}"
        it, loss = zip(*e["curve"]["train"])
        line, = ax.plot(it, loss, label=f"{label} (train)", alpha=0.6)
        if e["curve"]["val"]:
            vi, vl = zip(*e["curve"]["val"])
            ax.plot(vi, vl, "o--", color=line.get_color(), label=f"{label} (val)")
    ax.set_xlabel("iteration (2,048 tokens each)")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("ember GPT on the Python standard library (BPE 8192)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def merged(path: Path, entries: list[dict]) -> list[dict]:
    """The entries already in ``path`` (runs reported earlier, one at a time as they finish) with these
    replacing any of the same run, in the order plain, mhc, mhc2."""
    old = json.loads(path.read_text()) if path.exists() else []
    new = {e["run"] for e in entries}
    order = {"plain": 0, "hc": 1, "mhc": 2, "mhc2": 3}
    return sorted([e for e in old if e["run"] not in new] + entries, key=lambda e: (order[e["residual"]], e["run"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=SAMPLES)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "code_model.json")
    args = parser.parse_args()
    entries = []
    for folder in args.runs:
        entry = report(folder, args.samples)
        entries.append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k not in ("curve", "examples")}), flush=True)
        for text in entry["examples"]:
            print(text)
    entries = merged(args.out, entries)
    args.out.write_text(json.dumps(entries, indent=1) + "\n")
    png = args.out.with_name("code_model_loss.png")
    print(f"wrote {args.out}" + (f" and {png}" if plot(entries, png) else " (no matplotlib: no plot)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
