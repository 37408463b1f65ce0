"""Byte-level BPE: ember against Hugging Face `tokenizers` (Rust) on Tiny Shakespeare and the Python stdlib.

For each corpus, in interleaved rounds within one process (median reported):

* training seconds to the target vocabulary (512 for Shakespeare, 8,192 for the stdlib), both on the
  whole text with the GPT-2 pre-tokenizer and one special token;
* single-call encode of the whole corpus in MB/s: ember cold (a fresh tokenizer, empty chunk cache),
  ember warm (the cache filled by a previous call), and `tokenizers`' ``Tokenizer.encode``;
  a bare regex pre-tokenisation pass (`regex.findall` with the GPT-2 pattern) as the floor;
* compression: UTF-8 bytes per token of each one's own trained vocabulary;
* agreement: `tokenizers` loaded with ember's merges must give ember's ids on the whole corpus.

Run:  EMBER_DATA=../shared/data python benchmarks/bench_tokenizer.py [--rounds 3] [--update-readme]
Dry run (seconds: Shakespeare only, 2 rounds): python benchmarks/bench_tokenizer.py --quick
Writes benchmarks/results/tokenizer.json, .md and .png (tokenizer_quick.* with --quick).
``ember bench --only tokenizer`` runs it as an entry of the harness.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import ember  # noqa: F401, I001  (runtime settings first)
import regex

from ember.benchmarking import (Bars, Benchmark, Contender, Outcome, RunOptions, machine_info, machine_line, publish,
                                results_path, rounds, refuse_dry_run_in_readme)
from ember.data.text import END_OF_TEXT, read_documents
from ember.text import GPT2_PATTERN, ByteBPETokenizer, bytes_to_unicode

CORPORA = {"shakespeare": ("shakespeare-char", 512), "python-stdlib": ("python-stdlib", 8192)}
QUICK = {"corpora": ["shakespeare"], "rounds": 2}


def hf_trainer(tokenizers, text: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[END_OF_TEXT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator([text], trainer)
    return tk


def hf_from_ember(ours: ByteBPETokenizer):
    """A `tokenizers` BPE holding exactly ember's merges and ids (bytes 0-255 first, GPT-2's byte alphabet)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    table = bytes_to_unicode()
    text_of = ["".join(table[b] for b in tok) for tok in ours.vocab]
    vocab = {s: i for i, s in enumerate(text_of)}
    merges = [(text_of[a], text_of[b]) for a, b in ours.merges]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens(list(ours.special_tokens))  # ids follow the vocabulary, as ember's do
    if tk.token_to_id(END_OF_TEXT) != ours.special_tokens.get(END_OF_TEXT):
        raise RuntimeError("tokenizers numbered the special token differently")
    return tk


def contenders(tokenizers, text: str, vocab_size: int) -> dict:
    """The round's contenders, in the order they depend on each other: each trainer, then ember's encode of a
    fresh tokenizer from this round's merges (cold: its chunk cache empty; made untimed), the same tokenizer
    again (warm), `tokenizers`' encode, and the bare regex pass."""
    made = {}

    def train_ember():
        made["ours"] = ByteBPETokenizer.train(text, vocab_size, special_tokens=[END_OF_TEXT])
        return made["ours"]

    def train_hf():
        made["hf"] = hf_trainer(tokenizers, text, vocab_size)
        return made["hf"]

    def fresh_tokenizer():
        made["fresh"] = ByteBPETokenizer(made["ours"].merges, [END_OF_TEXT])
        return made["fresh"]

    pattern = regex.compile(GPT2_PATTERN)
    return {"ember_train": train_ember, "hf_train": train_hf,
            "ember_cold": Contender(lambda fresh: fresh.encode(text), setup=fresh_tokenizer),
            "ember_warm": lambda: made["fresh"].encode(text),
            "hf_encode": lambda: made["hf"].encode(text),
            "regex": lambda: pattern.findall(text)}


def bench_corpus(tokenizers, name: str, spec: str, vocab_size: int, n_rounds: int) -> dict:
    text = END_OF_TEXT.join(read_documents(spec))
    n_bytes = len(text.encode("utf-8"))
    mb = n_bytes / 1e6

    def progress(index, timings):
        s = {k: t[-1] for k, t in timings.per_round.items()}
        print(f"  {name} round {index + 1}: train {s['ember_train']:.2f} s vs {s['hf_train']:.2f} s; "
              f"encode {mb / s['ember_cold']:.1f} (cold) / {mb / s['ember_warm']:.1f} (warm) vs "
              f"{mb / s['hf_encode']:.1f} MB/s", flush=True)

    timings = rounds(contenders(tokenizers, text, vocab_size), n_rounds, warmup=0, on_round=progress)
    ours, ids, hf_ids = timings.results["ember_train"], timings.results["ember_warm"], timings.results["hf_encode"].ids
    same = hf_from_ember(ours).encode(text).ids == ids
    med = timings.medians()
    return {
        "corpus": name, "megabytes": round(mb, 2), "vocab_size": vocab_size, "rounds": n_rounds,
        "ember_train_s": med["ember_train"], "hf_train_s": med["hf_train"],
        "train_time_ratio": timings.ratio("ember_train", "hf_train"),
        "ember_encode_cold_mb_s": mb / med["ember_cold"], "ember_encode_warm_mb_s": mb / med["ember_warm"],
        "hf_encode_mb_s": mb / med["hf_encode"], "regex_pretokenize_mb_s": mb / med["regex"],
        "ember_bytes_per_token": n_bytes / len(ids), "hf_bytes_per_token": n_bytes / len(hf_ids),
        "ids_equal_given_same_merges": bool(same),
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| corpus | vocab | train s: ember / tokenizers (ratio) | encode MB/s: ember cold / warm | "
             "tokenizers encode MB/s | regex pass MB/s | bytes per token: ember / tokenizers | same ids |",
             "|---|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in rows:
        lines.append(
            f"| {r['corpus']} ({r['megabytes']:.1f} MB) | {r['vocab_size']} | {r['ember_train_s']:.2f} / "
            f"{r['hf_train_s']:.2f} ({r['train_time_ratio']:.2f}x) | **{r['ember_encode_cold_mb_s']:.1f}** / "
            f"{r['ember_encode_warm_mb_s']:.1f} | {r['hf_encode_mb_s']:.1f} | {r['regex_pretokenize_mb_s']:.1f} | "
            f"{r['ember_bytes_per_token']:.3f} / {r['hf_bytes_per_token']:.3f} | "
            f"{'yes' if r['ids_equal_given_same_merges'] else 'NO'} |")
    return "\n".join(lines)


def render_idle(r: dict, path: str):
    meta = (f"Measured {r['date']} on {r['machine']}, Python {r['python']}, tokenizers {r['tokenizers']}; "
            f"`python benchmarks/bench_tokenizer.py` (results in `{path}`).")
    return meta, markdown(r["results"])


def render_loaded(r: dict, path: str) -> str:
    """This benchmark has no loaded runs; a loaded file placed beside the results is only named."""
    return f"(a loaded run is on file in `{path}`)"


def headline(r: dict) -> str:
    return "; ".join(f"{x['corpus']}: encode {x['ember_encode_cold_mb_s']:.1f} MB/s (tokenizers "
                     f"{x['hf_encode_mb_s']:.1f}), training time ember/tokenizers {x['train_time_ratio']:.2f}x"
                     for x in r["results"])


def chart(r: dict) -> Bars:
    groups = {f"{x['corpus']} ({x['megabytes']:.1f} MB)": {
        "ember, cold": x["ember_encode_cold_mb_s"], "ember, warm": x["ember_encode_warm_mb_s"],
        "tokenizers": x["hf_encode_mb_s"], "regex pass alone": x["regex_pretokenize_mb_s"]} for x in r["results"]}
    return Bars("Byte-level BPE encode, one call on the whole corpus", "MB/s (higher is faster)", groups,
                note=r["machine"])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    parser.add_argument("--corpora", nargs="+", choices=tuple(CORPORA), default=None)
    parser.add_argument("--quick", action="store_true", help="a dry run in seconds (Shakespeare only, 2 rounds)")
    parser.add_argument("--out", default=None, help="default results/tokenizer.json")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    sizes = QUICK if args.quick else {}
    args.rounds = args.rounds or sizes.get("rounds", 3)
    args.corpora = args.corpora or sizes.get("corpora", list(CORPORA))
    return args


def bench(args) -> Outcome:
    import tokenizers

    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    rows = [bench_corpus(tokenizers, name, *CORPORA[name], args.rounds) for name in args.corpora]
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine_line(info), "machine_info": info,
              "python": platform.python_version(), "tokenizers": tokenizers.__version__, "quick": args.quick,
              "results": rows}
    out = Path(args.out) if args.out else results_path("tokenizer", quick=args.quick)
    files = publish("bench_tokenizer", result, out, 0, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(result), tuple(files))


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("tokenizer")))


def main(argv=None) -> int:
    bench(parse_args(argv))
    return 0


BENCHMARK = Benchmark(name="tokenizer", title="Byte-level BPE training and encoding on Shakespeare and the stdlib",
                      run=run, marker="bench_tokenizer", rivals=("tokenizers",))


if __name__ == "__main__":
    sys.exit(main())
