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
Options: [--iters 2000] [--blas both|default] [--rounds 10] [--new-tokens 512] [--load N] [--out PATH]
Writes benchmarks/results/gpt.json and gpt.md (gpt_loaded.json and .md with --load), and the README
table with --update-readme.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for harness

from ember.testing.torch_gpt import build_torch_gpt, copy_gpt_weights
from ember.train.lm import LMTrainConfig, LMTrainer
from harness import (add_load_argument, background_load, describe_load, has_avx512, load_record, machine_info,
                     machine_line, median_ratios, on_reference_path, openblas_kernels, publish, results_path)

CHUNK = 50
STEPS_PER_ROUND = 20


def import_torch():
    import torch

    torch.set_num_threads(2)
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


def time_chunk(trainer, rival, batches) -> tuple[float, float]:
    """ms per iteration of ember's steps on ``batches``, then PyTorch's on the same."""
    t0 = time.perf_counter()
    for b in batches:
        trainer.train_step([b])
    t1 = time.perf_counter()
    for b in batches:
        rival.train_step([b])
    t2 = time.perf_counter()
    return (t1 - t0) / len(batches) * 1e3, (t2 - t1) / len(batches) * 1e3


def side_by_side(torch, config: LMTrainConfig):
    """ember's trainer and the PyTorch rival, both holding nanoGPT's initial weights, and the stream."""
    trainer = LMTrainer(config)
    stream = NanoGPTStream(torch, trainer.corpus, config)
    state = {k: v.detach().numpy().copy() for k, v in stream.model.state_dict().items() if k != "lm_head.weight"}
    trainer.model.load_state_dict(state)
    return trainer, TorchRun(torch, stream.model, config), stream


def train_side_by_side(torch, iters: int, data_dir) -> dict:
    config = LMTrainConfig(max_iters=iters, lr_decay_iters=iters, data_dir=data_dir)
    trainer, rival, stream = side_by_side(torch, config)
    ember_ms, torch_ms, ratios = [], [], []
    for start in range(0, iters, CHUNK):
        e, t = time_chunk(trainer, rival, stream.train_batches[start:start + CHUNK])
        ember_ms.append(e)
        torch_ms.append(t)
        ratios.append(e / t)
        print(f"  iter {min(start + CHUNK, iters):>5}: ember {e:.1f} ms, torch {t:.1f} ms, ratio {e / t:.3f}",
              flush=True)
    e_loss, t_loss = ember_loss_on(trainer.model), rival.loss_on
    final = stream.eval_batches[iters]

    def nanogpt_estimate(loss_on, split):
        return float(np.mean([loss_on(x, y) for x, y in final[split]]))

    val = trainer.corpus.val
    return {
        "iters": iters,
        "ember_ms_per_iter": float(np.median(ember_ms)),
        "torch_ms_per_iter": float(np.median(torch_ms)),
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


def time_round(contenders: dict, batches) -> dict:
    """ms per iteration of each contender's training steps on ``batches``, one contender after the other."""
    times = {}
    for name, train_step in contenders.items():
        start = time.perf_counter()
        for b in batches:
            train_step([b])
        times[name] = (time.perf_counter() - start) / len(batches) * 1e3
    return times


def step_rounds(torch, rounds: int, steps: int, data_dir) -> dict:
    """ms per training iteration of ember (default kernels), ember on the reference path and PyTorch, all
    from nanoGPT's initial weights, taking turns in ``rounds`` rounds of ``steps`` iterations."""
    config = LMTrainConfig(max_iters=(rounds + 1) * steps, data_dir=data_dir)
    trainer, rival, stream = side_by_side(torch, config)
    twin = reference_twin(trainer)
    contenders = {"ember": trainer.train_step, "ember_reference_path": on_reference_path(twin.train_step),
                  "torch": rival.train_step}
    batches = stream.train_batches
    time_round(contenders, batches[:5])  # warm-up (and the kernels' first-call compilation)
    per_round = [time_round(contenders, batches[steps * (r + 1): steps * (r + 2)]) for r in range(rounds)]
    times = {name: [t[name] for t in per_round] for name in contenders}
    ms, ratios = {name: float(np.median(t)) for name, t in times.items()}, median_ratios(times)
    return {"openblas_kernels": openblas_kernels(), "rounds": rounds, "steps_per_round": steps,
            "ember_ms_per_iter": ms["ember"], "torch_ms_per_iter": ms["torch"],
            "step_time_ratio_median": ratios["ember"],
            "ember_reference_path_ms_per_iter": ms["ember_reference_path"],
            "step_time_ratio_reference_path_median": ratios["ember_reference_path"],
            "ember_over_reference_path_median": median_ratios(times, to="ember_reference_path")["ember"]}


def blas_variants(rounds: int, data_dir) -> list[dict]:
    """The step rounds with OpenBLAS pinned to its AVX-512 and its AVX2 kernels, each in a fresh process (it
    picks kernels when it loads); none on a CPU without AVX-512."""
    if not has_avx512():
        return []
    variants = []
    for coretype in ("SkylakeX", "Haswell"):
        env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
        proc = subprocess.run([sys.executable, __file__, "--steps-only", "--rounds", str(rounds)]
                              + (["--data-dir", data_dir] if data_dir else []),
                              env=env, capture_output=True, text=True, check=True)
        variants.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return variants


def generation(torch, new_tokens: int = 512, prompt_len: int = 16, rounds: int = 3) -> dict:
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
    seconds = {k: [] for k in contenders}
    outputs = {}
    for _ in range(rounds):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            outputs[name] = fn()
            seconds[name].append(time.perf_counter() - t0)
    tps = {k: new_tokens / float(np.median(v)) for k, v in seconds.items()}
    speedups = [u / c for u, c in zip(seconds["ember_uncached"], seconds["ember_cached"])]
    return {"new_tokens": new_tokens, "prompt_tokens": prompt_len, "block_size": 1024, "rounds": rounds,
            "tokens_per_s": tps, "kv_cache_speedup_median": float(np.median(speedups)),
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
        f"| ms per training iteration (median of {-(-t['iters'] // CHUNK)} interleaved chunks) | "
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


def step_rows(rounds: dict | None, what: str) -> list[str]:
    """The rows of one step-rounds measurement: ember's default kernels, then its reference path (when timed)."""
    if rounds is None:
        return []
    label = f"ms per iteration, {what} ({rounds['rounds']} rounds)"
    rows = [f"| {label} | {rounds['ember_ms_per_iter']:.1f} | {rounds['torch_ms_per_iter']:.1f} | "
            f"{rounds['step_time_ratio_median']:.2f}x |"]
    if "ember_reference_path_ms_per_iter" in rounds:
        rows.append(f"| {label}, ember's reference path | {rounds['ember_reference_path_ms_per_iter']:.1f} | "
                    f"{rounds['torch_ms_per_iter']:.1f} | {rounds['step_time_ratio_reference_path_median']:.2f}x |")
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
    for what, rounds in [("step rounds", r["step_rounds"]),
                         *((f"OpenBLAS {v['openblas_kernels']} kernels", v) for v in r.get("blas_variants", []))]:
        lines.append(f"| ms per training iteration, {what} ({rounds['rounds']} rounds) | "
                     f"{rounds['ember_ms_per_iter']:.1f} | {rounds['ember_reference_path_ms_per_iter']:.1f} | "
                     f"{rounds['torch_ms_per_iter']:.1f} | **{rounds['step_time_ratio_median']:.2f}x** | "
                     f"{rounds['step_time_ratio_reference_path_median']:.2f}x |")
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
        sections["step_rounds"] = step_rounds(torch, args.rounds, STEPS_PER_ROUND, args.data_dir)
        print("generation with and without the KV cache", flush=True)
        sections["generation"] = generation(torch, args.new_tokens)
        sections["blas_variants"] = blas_variants(args.rounds, args.data_dir) if args.blas == "both" else []
        sections["load"] = load_record(args.load)
    return sections


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--blas", choices=("default", "both"), default="both",
                        help="both: also time steps with OpenBLAS's AVX2 kernels (when the CPU has AVX-512)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the step timing (and its BLAS variants)")
    parser.add_argument("--new-tokens", type=int, default=512, help="tokens generated per generation run")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps-only", action="store_true", help=argparse.SUPPRESS)  # the child process
    add_load_argument(parser)
    parser.add_argument("--out", default=None, help="default results/gpt.json (results/gpt_loaded.json with --load)")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    torch = import_torch()
    if args.steps_only:
        print(json.dumps(step_rounds(torch, args.rounds, STEPS_PER_ROUND, args.data_dir)))
        return 0
    info = machine_info()
    print(f"machine: {machine_line(info)}; busy processes: {args.load}", flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": machine_line(info), "machine_info": info,
        "busy_processes": args.load, "avx512": info["avx512"], "torch": torch.__version__, "numpy": np.__version__,
        "openblas_kernels": info["openblas_kernels"], "torch_threads": torch.get_num_threads(),
    }
    if not args.load:
        print(f"training nanoGPT's CPU recipe for {args.iters} iterations, ember and PyTorch side by side",
              flush=True)
        result["training"] = train_side_by_side(torch, args.iters, args.data_dir)
        print("ember train gpt with its own initialisation and data order", flush=True)
        result["ember_own_run"] = ember_own_run(args.iters, args.data_dir)
    result.update(timed_sections(torch, args))
    out = Path(args.out) if args.out else results_path("gpt", args.load)
    publish("bench_gpt", result, out, args.load, render_idle, render_loaded, args.update_readme)
    if "training" in result:
        print(result["training"]["sample"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
