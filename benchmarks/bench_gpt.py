"""nanoGPT's CPU recipe on Tiny Shakespeare (characters), ember against PyTorch in the same run.

The recipe (nanoGPT README, "I only have a macbook"): 4 layers, 4 heads, n_embd 128, context 64,
batch 12, 2,000 iterations, AdamW lr 1e-3 (warmup 100, cosine to 1e-4 at 2,000), beta2 0.99,
weight decay 0.1, clip 1.0, dropout 0, no biases, 90/10 split. The PyTorch rival is the same model
written plainly (``ember.testing.torch_gpt``, nanoGPT's code with ``scaled_dot_product_attention``)
and trained by the same loop; it starts from ember's initial weights and sees the same batches.

Measured:

* nanoGPT's own run replayed in both: its initial weights (``torch.manual_seed(1337)``, its init
  order) and its batches in the order its train.py draws them, evaluation batches included, so
  the final val loss is comparable with nanoGPT's deterministic 1.886;
* ms per training iteration (ember's default kernels): the two runs advance side by side in chunks
  of 50 iterations (interleaved, so both see the same machine load); the median of per-chunk
  ratios is reported;
* final val loss: nanoGPT's estimate (its 20 evaluation batches at iteration 2,000) and the loss
  over the whole validation split (every non-overlapping 64-token window); and the same for
  ``ember train gpt`` with ember's own initialisation and sampling (seed 1337), ember only;
* ms per training iteration in step rounds: ember with its compiled kernels (the default), ember on
  its NumPy reference path (``kernels.use("numpy")``, a twin holding the same weights) and PyTorch
  take turns, 20 iterations each per round on the same batches; medians of per-round ratios;
* generation, tokens per second at 512 new tokens after a 16-token prompt, with and without the KV
  cache (ember on both kernel paths; PyTorch recomputing the context, as nanoGPT's generate does, its
  twin having no cache), on a model of the same shape whose context (1,024) holds prompt + 512
  tokens (with a 64-token context the window slides and cached keys go stale: see specs/gpt-kvcache.md);
* with ``--blas both``: the step rounds again with OpenBLAS pinned to its SkylakeX (AVX-512) and
  Haswell (AVX2) kernels, each in a fresh process (OpenBLAS picks kernels when it loads), when the
  CPU has AVX-512.

With ``--load N`` only the timing runs (step rounds, generation, the BLAS variants), beside N busy
processes (pure-Python loops, killed at the end); the results go to gpt_loaded.json, shown below the
idle table.

Full runs (on an otherwise idle 2-core machine: about 10-12 minutes; loaded, 5-8 minutes):
  EMBER_DATA=../shared/data python benchmarks/bench_gpt.py --update-readme
  EMBER_DATA=../shared/data python benchmarks/bench_gpt.py --load 2 --update-readme
Dry run (seconds: 20 iterations in chunks of 10, 2 step rounds of 5, 32 generated tokens, default BLAS only):
  EMBER_DATA=../shared/data python benchmarks/bench_gpt.py --quick
Options: [--iters 2000] [--blas both|default] [--rounds 10] [--new-tokens 512] [--load N] [--quick] [--out PATH]
Writes benchmarks/results/gpt.json, .md and .png (gpt_loaded.* with --load, gpt_quick.* with --quick), and the
README table with --update-readme. ``ember bench --only gpt`` runs it as an entry of the harness.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: I001
import numpy as np

from ember.benchmarking import (Bars, Benchmark, Outcome, RunOptions, add_load_argument, background_load,
                                describe_load, has_avx512, load_record, machine_info, machine_line, on_reference_path,
                                openblas_kernels, publish, results_path, rounds, streaming, refuse_dry_run_in_readme)
from ember.testing.torch_gpt import build_torch_gpt, copy_gpt_weights
from ember.train.lm import LMTrainConfig, LMTrainer

CHUNK = 50
STEPS_PER_ROUND = 20
WARMUP_STEPS = 5
GENERATION_ROUNDS = 3
# the dry run: a few chunks and rounds, a short generation, no BLAS variants (seconds, not minutes)
QUICK = {"iters": 20, "chunk": 10, "rounds": 2, "steps_per_round": 5, "new_tokens": 32, "generation_rounds": 2,
         "blas": "default"}


def import_torch(threads: int = 2):
    """PyTorch with ``threads`` threads (2: the machine's cores; a dry run takes 1, since beside other work
    PyTorch's OpenMP threads wait on each other at every op)."""
    import torch

    torch.set_num_threads(threads)
    return torch


class NanoGPTStream:
    """nanoGPT's own run, replayed: after ``torch.manual_seed(1337)`` its initial weights, then every
    batch in the order train.py draws them from the same generator (the first training batch, the
    20 + 20 evaluation batches every ``eval_interval`` iterations, the next training batch after
    each forward). Both frameworks train on exactly these batches from exactly these weights."""

    def __init__(self, torch, corpus, config: LMTrainConfig, eval_interval: int = 250):
        from ember.models.gpt import GPTConfig

        c = config
        torch.manual_seed(1337)
        self.model = build_torch_gpt(torch, GPTConfig(block_size=c.block_size, vocab_size=corpus.vocab_size,
                                                      n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd),
                                     nanogpt_init=True)
        offsets = np.arange(c.block_size + 1)

        def draw(ids):
            ix = torch.randint(len(ids) - c.block_size, (c.batch_size,)).numpy()
            windows = ids[ix[:, None] + offsets].astype(np.int64)
            return windows[:, :-1], windows[:, 1:]

        self.train_batches, self.eval_batches = [], {}
        current = draw(corpus.train)
        for it in range(c.max_iters + 1):
            if it % eval_interval == 0 or it == c.max_iters:  # (nanoGPT's 2,000 is a multiple of 250)
                self.eval_batches[it] = {split: [draw(ids) for _ in range(c.eval_iters)]
                                         for split, ids in (("train", corpus.train), ("val", corpus.val))}
            if it == c.max_iters:
                break
            self.train_batches.append(current)
            current = draw(corpus.train)


class TorchRun:
    """The rival: the same model, optimizer groups, schedule and clipping, in PyTorch."""

    def __init__(self, torch, model, config: LMTrainConfig):
        self.torch, self.config, self.model = torch, config, model
        c = config
        self.optimizer = model.configure_optimizer(c.lr, c.weight_decay, (c.beta1, c.beta2))
        self.iter = 0

    def train_step(self, batches) -> float:
        torch, c = self.torch, self.config
        for group in self.optimizer.param_groups:
            group["lr"] = c.lr_at(self.iter)
        self.model.train()
        x, y = batches[0]
        _, loss = self.model(torch.from_numpy(x), torch.from_numpy(y))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.iter += 1
        return loss.item()

    def loss_on(self, x, y) -> float:
        with self.torch.no_grad():
            self.model.eval()
            return self.model(self.torch.from_numpy(x), self.torch.from_numpy(y))[1].item()


def whole_split(loss_on, ids, block: int, batch: int = 64) -> float:
    """Mean loss over every non-overlapping window of the split (weighted by tokens)."""
    n = (len(ids) - 1) // block
    starts = np.arange(n) * block
    total = 0.0
    for i in range(0, n, batch):
        s = starts[i:i + batch]
        x = ids[s[:, None] + np.arange(block)].astype(np.int64)
        y = ids[s[:, None] + np.arange(1, block + 1)].astype(np.int64)
        total += loss_on(x, y) * len(s)
    return total / n


def ember_loss_on(model):
    def loss_on(x, y):
        with ember.no_grad():
            model.eval()
            return model(x, y)[1].item()
    return loss_on


def side_by_side(torch, config: LMTrainConfig):
    """ember's trainer and the PyTorch rival, both holding nanoGPT's initial weights, and the stream."""
    trainer = LMTrainer(config)
    stream = NanoGPTStream(torch, trainer.corpus, config)
    state = {k: v.detach().numpy().copy() for k, v in stream.model.state_dict().items() if k != "lm_head.weight"}
    trainer.model.load_state_dict(state)
    return trainer, TorchRun(torch, stream.model, config), stream


def train_side_by_side(torch, iters: int, data_dir, chunk: int = CHUNK) -> dict:
    """Both runs through nanoGPT's stream, taking turns every ``chunk`` iterations (an interleaved round each)."""
    config = LMTrainConfig(max_iters=iters, lr_decay_iters=iters, data_dir=data_dir)
    trainer, rival, stream = side_by_side(torch, config)

    def progress(index, timings):
        e, t = (timings.per_round[name][-1] * 1e3 for name in ("ember", "torch"))
        print(f"  iter {(index + 1) * chunk:>5}: ember {e:.1f} ms, torch {t:.1f} ms, ratio {e / t:.3f}", flush=True)

    contenders = {"ember": streaming(lambda b: trainer.train_step([b]), stream.train_batches),
                  "torch": streaming(lambda b: rival.train_step([b]), stream.train_batches)}
    timings = rounds(contenders, iters // chunk, warmup=0, calls=chunk, on_round=progress)
    ratios = timings.round_ratios("ember", "torch")
    e_loss, t_loss = ember_loss_on(trainer.model), rival.loss_on
    final = stream.eval_batches[iters]

    def nanogpt_estimate(loss_on, split):
        return float(np.mean([loss_on(x, y) for x, y in final[split]]))

    val = trainer.corpus.val
    return {
        "iters": iters, "chunk": chunk,
        "ember_ms_per_iter": timings.median("ember", 1e3),
        "torch_ms_per_iter": timings.median("torch", 1e3),
        "step_time_ratio_median": float(np.median(ratios)),
        "step_time_ratio_quartiles": [float(q) for q in np.percentile(ratios, [25, 75])],
        "ember_val_loss_estimate": nanogpt_estimate(e_loss, "val"),
        "torch_val_loss_estimate": nanogpt_estimate(t_loss, "val"),
        "ember_train_loss_estimate": nanogpt_estimate(e_loss, "train"),
        "torch_train_loss_estimate": nanogpt_estimate(t_loss, "train"),
        "ember_val_loss_whole_split": whole_split(e_loss, val, config.block_size),
        "torch_val_loss_whole_split": whole_split(t_loss, val, config.block_size),
        "sample": trainer.corpus.tokenizer.decode(trainer.model.generate(
            trainer.corpus.tokenizer.encode("\n"), 200, temperature=0.8, seed=0)),
    }


def ember_own_run(iters: int, data_dir) -> dict:
    """`ember train gpt` as a user runs it: ember's own initialisation and data order (seed 1337)."""
    trainer = LMTrainer(LMTrainConfig(max_iters=iters, lr_decay_iters=iters, eval_interval=iters, data_dir=data_dir))
    history = trainer.run(progress=False)
    return {"val_loss_estimate": history[-1]["val_loss"], "train_loss_estimate": history[-1]["train_loss"],
            "val_loss_whole_split": whole_split(ember_loss_on(trainer.model), trainer.corpus.val,
                                                trainer.config.block_size)}


def reference_twin(trainer: LMTrainer) -> LMTrainer:
    """A second trainer holding ``trainer``'s weights, for ember's reference kernel path."""
    twin = LMTrainer(trainer.config, corpus=trainer.corpus)
    twin.model.load_state_dict(trainer.model.state_dict())
    return twin


def step_rounds(torch, n_rounds: int, steps: int, data_dir) -> dict:
    """ms per training iteration of ember (default kernels), ember on the reference path and PyTorch, all
    from nanoGPT's initial weights, taking turns in ``n_rounds`` rounds of ``steps`` iterations on the same
    batches (after a warm-up, which also compiles the kernels)."""
    config = LMTrainConfig(max_iters=WARMUP_STEPS + n_rounds * steps, data_dir=data_dir)
    trainer, rival, stream = side_by_side(torch, config)
    twin = reference_twin(trainer)
    steps_of = {"ember": trainer.train_step, "ember_reference_path": on_reference_path(twin.train_step),
                "torch": rival.train_step}
    contenders = {name: streaming(lambda b, step=step: step([b]), stream.train_batches)
                  for name, step in steps_of.items()}
    timings = rounds(contenders, n_rounds, warmup=WARMUP_STEPS, calls=steps)
    ms, ratios = timings.medians(1e3), timings.ratios("torch")
    return {"openblas_kernels": openblas_kernels(), "rounds": n_rounds, "steps_per_round": steps,
            "ember_ms_per_iter": ms["ember"], "torch_ms_per_iter": ms["torch"],
            "step_time_ratio_median": ratios["ember"],
            "ember_reference_path_ms_per_iter": ms["ember_reference_path"],
            "step_time_ratio_reference_path_median": ratios["ember_reference_path"],
            "ember_over_reference_path_median": timings.ratio("ember", "ember_reference_path")}


def blas_variants(n_rounds: int, data_dir) -> list[dict]:
    """The step rounds with OpenBLAS pinned to its AVX-512 and its AVX2 kernels, each in a fresh process (it
    picks kernels when it loads); none on a CPU without AVX-512."""
    if not has_avx512():
        return []
    variants = []
    for coretype in ("SkylakeX", "Haswell"):
        env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
        proc = subprocess.run([sys.executable, __file__, "--steps-only", "--rounds", str(n_rounds)]
                              + (["--data-dir", data_dir] if data_dir else []),
                              env=env, capture_output=True, text=True, check=True)
        variants.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return variants


def generation(torch, new_tokens: int = 512, prompt_len: int = 16, n_rounds: int = GENERATION_ROUNDS) -> dict:
    from ember.models.gpt import GPT, GPTConfig

    ember.manual_seed(0)
    model = GPT(GPTConfig(block_size=1024, vocab_size=65, n_layer=4, n_head=4, n_embd=128)).eval()
    prompt = list(np.random.default_rng(0).integers(0, 65, prompt_len))
    twin = copy_gpt_weights(torch, model, build_torch_gpt(torch, model.config), torch.float32).eval()

    def torch_generate():  # nanoGPT's generate(): the whole context every token, greedy here
        idx = torch.tensor([prompt])
        with torch.no_grad():
            for _ in range(new_tokens):
                logits = twin(idx)[:, -1]
                idx = torch.cat([idx, logits.argmax(-1, keepdim=True)], dim=1)
        return idx[0, prompt_len:].tolist()

    def ember_cached():
        return list(model.generate(prompt, new_tokens, temperature=0))

    def ember_uncached():
        return list(model.generate(prompt, new_tokens, temperature=0, use_cache=False))

    contenders = {
        "ember_cached": ember_cached,
        "ember_uncached": ember_uncached,
        "ember_cached_reference_path": on_reference_path(ember_cached),
        "ember_uncached_reference_path": on_reference_path(ember_uncached),
        "torch_uncached": torch_generate,
    }
    timings = rounds(contenders, n_rounds, warmup=0)
    outputs = timings.results
    tps = {k: new_tokens / s for k, s in timings.medians().items()}
    return {"new_tokens": new_tokens, "prompt_tokens": prompt_len, "block_size": 1024, "rounds": n_rounds,
            "tokens_per_s": tps, "kv_cache_speedup_median": timings.ratio("ember_uncached", "ember_cached"),
            "cached_equals_uncached": outputs["ember_cached"] == outputs["ember_uncached"],
            "ember_equals_torch_greedy": outputs["ember_cached"] == outputs["torch_uncached"],
            "reference_path_equals_default_greedy": (outputs["ember_cached"] == outputs["ember_cached_reference_path"]
                                                     and outputs["ember_uncached"] ==
                                                     outputs["ember_uncached_reference_path"])}


def markdown(r: dict) -> str:
    t = r["training"]
    gen = r["generation"]
    g = gen["tokens_per_s"]
    lines = [
        "| measure | ember | PyTorch | ember / PyTorch |",
        "|---|---:|---:|---:|",
        f"| ms per training iteration (median of {-(-t['iters'] // t.get('chunk', CHUNK))} interleaved chunks) | "
        f"{t['ember_ms_per_iter']:.1f} | {t['torch_ms_per_iter']:.1f} | **{t['step_time_ratio_median']:.2f}x** |",
        *step_rows(r.get("step_rounds"), "step rounds"),
        f"| val loss after {t['iters']} iterations (nanoGPT's estimate: its 20 batches) | "
        f"**{t['ember_val_loss_estimate']:.3f}** | {t['torch_val_loss_estimate']:.3f} | |",
        f"| val loss over the whole validation split | {t['ember_val_loss_whole_split']:.3f} | "
        f"{t['torch_val_loss_whole_split']:.3f} | |",
        f"| `ember train gpt` (ember's own init and batches, seed 1337): val loss, 20-batch estimate / whole split | "
        f"{r['ember_own_run']['val_loss_estimate']:.3f} / {r['ember_own_run']['val_loss_whole_split']:.3f} | | |",
        f"| generation, tokens/s with the KV cache ({gen['new_tokens']} new, context {gen['block_size']}) | "
        f"{g['ember_cached']:.0f} | | |",
        f"| generation, tokens/s recomputing the context | {g['ember_uncached']:.0f} | {g['torch_uncached']:.0f} | "
        f"{g['torch_uncached'] / g['ember_uncached']:.2f}x |",
    ]
    if "ember_cached_reference_path" in g:
        lines += [f"| generation, tokens/s with the KV cache, ember's reference path | "
                  f"{g['ember_cached_reference_path']:.0f} | | |",
                  f"| generation, tokens/s recomputing the context, ember's reference path | "
                  f"{g['ember_uncached_reference_path']:.0f} | {g['torch_uncached']:.0f} | "
                  f"{g['torch_uncached'] / g['ember_uncached_reference_path']:.2f}x |"]
    lines.append(f"| KV-cache speedup at {gen['new_tokens']} new tokens | **{gen['kv_cache_speedup_median']:.1f}x** "
                 f"| | |")
    for variant in r.get("blas_variants", []):
        lines += step_rows(variant, f"OpenBLAS {variant['openblas_kernels']} kernels")
    return "\n".join(lines)


def step_rows(timed: dict | None, what: str) -> list[str]:
    """The rows of one step-rounds measurement: ember's default kernels, then its reference path (when timed)."""
    if timed is None:
        return []
    label = f"ms per iteration, {what} ({timed['rounds']} rounds)"
    rows = [f"| {label} | {timed['ember_ms_per_iter']:.1f} | {timed['torch_ms_per_iter']:.1f} | "
            f"{timed['step_time_ratio_median']:.2f}x |"]
    if "ember_reference_path_ms_per_iter" in timed:
        rows.append(f"| {label}, ember's reference path | {timed['ember_reference_path_ms_per_iter']:.1f} | "
                    f"{timed['torch_ms_per_iter']:.1f} | {timed['step_time_ratio_reference_path_median']:.2f}x |")
    return rows


def render_idle(r: dict, path: str):
    """The README's meta line and table (an idle run always has its training part)."""
    blas = "" if "machine_info" in r else f", OpenBLAS {r['openblas_kernels']} kernels"  # older results' machine
    meta = (f"Measured {r['date']} on {r['machine']}{blas}; AVX-512: {'yes' if r['avx512'] else 'no'}; PyTorch "
            f"{r['torch']} with {r['torch_threads']} threads, NumPy {r['numpy']}; `python benchmarks/bench_gpt.py` "
            f"(results in `{path}`).")
    return meta, markdown(r)


def render_loaded(r: dict, path: str) -> str:
    """The loaded run's timings: a sentence saying how it was measured, and a small table."""
    n, g = r["busy_processes"], r["generation"]["tokens_per_s"]
    lines = [
        f"Beside {describe_load(n)} (`python benchmarks/bench_gpt.py --load {n}`, measured {r['date']} on "
        f"{r['machine']}; ember's BLAS threads at the end: {r['load']['blas_threads_at_end']}; results in `{path}`):",
        "",
        "| beside a load | ember | ember reference path | PyTorch | ember / PyTorch | reference path / PyTorch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for what, timed in [("step rounds", r["step_rounds"]),
                         *((f"OpenBLAS {v['openblas_kernels']} kernels", v) for v in r.get("blas_variants", []))]:
        lines.append(f"| ms per training iteration, {what} ({timed['rounds']} rounds) | "
                     f"{timed['ember_ms_per_iter']:.1f} | {timed['ember_reference_path_ms_per_iter']:.1f} | "
                     f"{timed['torch_ms_per_iter']:.1f} | **{timed['step_time_ratio_median']:.2f}x** | "
                     f"{timed['step_time_ratio_reference_path_median']:.2f}x |")
    lines += [
        f"| generation, tokens/s with the KV cache | {g['ember_cached']:.0f} | {g['ember_cached_reference_path']:.0f} "
        f"| | | |",
        f"| generation, tokens/s recomputing the context | {g['ember_uncached']:.0f} | "
        f"{g['ember_uncached_reference_path']:.0f} | {g['torch_uncached']:.0f} | "
        f"{g['torch_uncached'] / g['ember_uncached']:.2f}x | "
        f"{g['torch_uncached'] / g['ember_uncached_reference_path']:.2f}x |",
    ]
    return "\n".join(lines)


def timed_sections(torch, args) -> dict:
    """The timing runs, beside ``args.load`` busy processes: step rounds, generation and the BLAS variants."""
    sections = {}
    with background_load(args.load):
        print(f"step rounds: ember, its reference path and PyTorch ({args.rounds} rounds)", flush=True)
        sections["step_rounds"] = step_rounds(torch, args.rounds, args.steps, args.data_dir)
        print("generation with and without the KV cache", flush=True)
        sections["generation"] = generation(torch, args.new_tokens, n_rounds=args.generation_rounds)
        sections["blas_variants"] = blas_variants(args.rounds, args.data_dir) if args.blas == "both" else []
        sections["load"] = load_record(args.load)
    return sections


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=None, help=f"default 2000, a multiple of the chunk ({CHUNK})")
    parser.add_argument("--blas", choices=("default", "both"), default=None,
                        help="both (default): also time steps with OpenBLAS's AVX2 kernels (when the CPU has AVX-512)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of the step timing (and its BLAS variants; default 10)")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens generated per generation run (512)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps-only", action="store_true", help=argparse.SUPPRESS)  # the child process
    add_load_argument(parser)
    parser.add_argument("--quick", action="store_true", help="a dry run in seconds (tiny figures: not results)")
    parser.add_argument("--out", default=None, help="default results/gpt.json (results/gpt_loaded.json with --load)")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    sizes = QUICK if args.quick else {}
    args.iters = args.iters or sizes.get("iters", 2000)
    args.chunk = sizes.get("chunk", CHUNK)
    args.blas = args.blas or sizes.get("blas", "both")
    args.rounds = args.rounds or sizes.get("rounds", 10)
    args.steps = sizes.get("steps_per_round", STEPS_PER_ROUND)
    args.new_tokens = args.new_tokens or sizes.get("new_tokens", 512)
    args.generation_rounds = sizes.get("generation_rounds", GENERATION_ROUNDS)
    if args.iters % args.chunk:
        parser.error(f"--iters {args.iters}: must be a multiple of {args.chunk}, the iterations each framework "
                     "runs in its turn")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.steps_only:
        print(json.dumps(step_rounds(import_torch(), args.rounds, args.steps, args.data_dir)))
        return 0
    bench(args)
    return 0


def bench(args) -> Outcome:
    torch = import_torch(1 if args.quick else 2)
    info = machine_info()
    print(f"machine: {machine_line(info)}; busy processes: {args.load}", flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info), "machine_info": info,
        "busy_processes": args.load, "avx512": info["avx512"], "torch": torch.__version__, "numpy": np.__version__,
        "openblas_kernels": info["openblas_kernels"], "torch_threads": torch.get_num_threads(), "quick": args.quick,
    }
    if not args.load:
        print(f"training nanoGPT's CPU recipe for {args.iters} iterations, ember and PyTorch side by side",
              flush=True)
        result["training"] = train_side_by_side(torch, args.iters, args.data_dir, args.chunk)
        print("ember train gpt with its own initialisation and data order", flush=True)
        result["ember_own_run"] = ember_own_run(args.iters, args.data_dir)
    result.update(timed_sections(torch, args))
    out = Path(args.out) if args.out else results_path("gpt", args.load, quick=args.quick)
    files = publish("bench_gpt", result, out, args.load, render_idle, render_loaded, args.update_readme, chart)
    if "training" in result:
        print(result["training"]["sample"])
    return Outcome(headline(result), tuple(files))


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("gpt")))


def headline(r: dict) -> str:
    """The side-by-side training ratio (the step rounds' in a loaded run, which has no training part)."""
    if "training" in r:
        t = r["training"]
        return (f"training iteration ember/PyTorch {t['step_time_ratio_median']:.2f}x, val loss "
                f"{t['ember_val_loss_estimate']:.3f} (PyTorch {t['torch_val_loss_estimate']:.3f})")
    return f"training iteration ember/PyTorch {r['step_rounds']['step_time_ratio_median']:.2f}x (step rounds)"


def chart(r: dict) -> list[Bars]:
    """Two panels: ms per training iteration (side by side and in step rounds), generated tokens per second."""
    s, g = r["step_rounds"], r["generation"]["tokens_per_s"]
    steps = {"step rounds": {"ember": s["ember_ms_per_iter"],
                             "ember reference path": s["ember_reference_path_ms_per_iter"],
                             "PyTorch": s["torch_ms_per_iter"]}}
    if "training" in r:
        t = r["training"]
        steps = {"side by side (nanoGPT's run)": {"ember": t["ember_ms_per_iter"], "PyTorch": t["torch_ms_per_iter"]},
                 **steps}
    load = f", beside {describe_load(r['busy_processes'])}" if r["busy_processes"] else ""
    generation = {"with the KV cache": {"ember": g["ember_cached"]},
                  "recomputing the context": {"ember": g["ember_uncached"], "PyTorch": g["torch_uncached"]}}
    return [Bars(f"nanoGPT's CPU recipe on Tiny Shakespeare: training{load}", "ms per iteration (lower is faster)",
                 steps),
            Bars(f"Generation, {r['generation']['new_tokens']} new tokens", "tokens per second (higher is faster)",
                 generation, note=r["machine"])]


BENCHMARK = Benchmark(name="gpt", title="nanoGPT's CPU recipe on Tiny Shakespeare: training, val loss, generation",
                      run=run, marker="bench_gpt", rivals=("torch",))

if __name__ == "__main__":
    sys.exit(main())
