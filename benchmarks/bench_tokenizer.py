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
Writes benchmarks/results/tokenizer.json and tokenizer.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import ember  # noqa: F401, I001  (runtime settings first)
import numpy as np
import regex

from ember.data.text import END_OF_TEXT, read_documents
from ember.text import GPT2_PATTERN, ByteBPETokenizer, bytes_to_unicode

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CORPORA = {"shakespeare": ("shakespeare-char", 512), "python-stdlib": ("python-stdlib", 8192)}


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


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def bench_corpus(tokenizers, name: str, spec: str, vocab_size: int, rounds: int) -> dict:
    text = END_OF_TEXT.join(read_documents(spec))
    mb = len(text.encode("utf-8")) / 1e6
    pattern = regex.compile(GPT2_PATTERN)
    times = {k: [] for k in ("ember_train", "hf_train", "ember_cold", "ember_warm", "hf_encode", "regex")}
    ours = hf = None
    for r in range(rounds):
        dt, ours = timed(lambda: ByteBPETokenizer.train(text, vocab_size, special_tokens=[END_OF_TEXT]))
        times["ember_train"].append(dt)
        dt, hf = timed(lambda: hf_trainer(tokenizers, text, vocab_size))
        times["hf_train"].append(dt)
        fresh = ByteBPETokenizer(ours.merges, [END_OF_TEXT])
        dt, ids = timed(fresh.encode, text)
        times["ember_cold"].append(dt)
        dt, ids = timed(fresh.encode, text)
        times["ember_warm"].append(dt)
        dt, encoding = timed(hf.encode, text)
        hf_ids = encoding.ids
        times["hf_encode"].append(dt)
        dt, _ = timed(pattern.findall, text)
        times["regex"].append(dt)
        print(f"  {name} round {r + 1}: train {times['ember_train'][-1]:.2f} s vs {times['hf_train'][-1]:.2f} s; "
              f"encode {mb / times['ember_cold'][-1]:.1f} (cold) / {mb / times['ember_warm'][-1]:.1f} (warm) vs "
              f"{mb / times['hf_encode'][-1]:.1f} MB/s", flush=True)
    same = hf_from_ember(ours).encode(text).ids == ids
    med = {k: float(np.median(v)) for k, v in times.items()}
    n_bytes = len(text.encode("utf-8"))
    return {
        "corpus": name, "megabytes": round(mb, 2), "vocab_size": vocab_size, "rounds": rounds,
        "ember_train_s": med["ember_train"], "hf_train_s": med["hf_train"],
        "train_time_ratio": float(np.median(np.array(times["ember_train"]) / np.array(times["hf_train"]))),
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpora", nargs="+", choices=tuple(CORPORA), default=list(CORPORA))
    parser.add_argument("--out", default=str(RESULTS / "tokenizer.json"))
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    import tokenizers

    rows = [bench_corpus(tokenizers, name, *CORPORA[name], args.rounds) for name in args.corpora]
    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "python": platform.python_version(), "tokenizers": tokenizers.__version__, "results": rows}
    RESULTS.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(rows)
    (RESULTS / "tokenizer.md").write_text(table + "\n")
    print(table)
    if args.update_readme:
        from readme import update_readme

        meta = (f"Measured {result['date']} on {result['machine']}, Python {result['python']}, tokenizers "
                f"{result['tokenizers']}; `python benchmarks/bench_tokenizer.py` "
                f"(results in `benchmarks/results/tokenizer.json`).")
        update_readme("bench_tokenizer", table, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
