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
* ms per training iteration: the two runs advance side by side in chunks of 50 iterations
  (interleaved, so both see the same machine load); the median of per-chunk ratios is reported;
* final val loss: nanoGPT's estimate (its 20 evaluation batches at iteration 2,000) and the loss
  over the whole validation split (every non-overlapping 64-token window); and the same for
  ``ember train gpt`` with ember's own initialisation and sampling (seed 1337), ember only;
* generation, tokens per second at 512 new tokens after a 16-token prompt, with and without the KV
  cache, on a model of the same shape whose context (1,024) holds prompt + 512 tokens (with a
  64-token context the window slides and cached keys go stale: see specs/gpt-kvcache.md);
* with ``--blas both``: the step-time ratio again with OpenBLAS pinned to its AVX2 (Haswell)
  kernels, in a fresh process (OpenBLAS picks kernels when it loads), when the CPU has AVX-512.

Run:  EMBER_DATA=../shared/data python benchmarks/bench_gpt.py [--iters 2000] [--blas both] [--update-readme]
Writes benchmarks/results/gpt.json and gpt.md.
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

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: I001
import numpy as np

from ember.testing.torch_gpt import build_torch_gpt, copy_gpt_weights
from ember.train.lm import LMTrainConfig, LMTrainer

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
CHUNK = 50


def import_torch():
    import torch

    torch.set_num_threads(2)
    return torch


def openblas_kernels() -> str:
    from threadpoolctl import threadpool_info

    kernels = {i.get("architecture") or "?" for i in threadpool_info() if i["internal_api"] == "openblas"}
    return ",".join(sorted(kernels))


def has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


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


def step_ratio(torch, rounds: int, steps: int, data_dir) -> dict:
    """Only the per-iteration time ratio, interleaved in rounds (for the BLAS-kernel comparison)."""
    config = LMTrainConfig(max_iters=(rounds + 1) * steps, data_dir=data_dir)
    trainer, rival, stream = side_by_side(torch, config)
    batches = stream.train_batches
    time_chunk(trainer, rival, batches[:5])  # warm-up
    e_ms, t_ms = zip(*(time_chunk(trainer, rival, batches[steps * (r + 1): steps * (r + 2)])
                       for r in range(rounds)))
    ratios = np.array(e_ms) / np.array(t_ms)
    return {"openblas_kernels": openblas_kernels(), "rounds": rounds, "steps_per_round": steps,
            "ember_ms_per_iter": float(np.median(e_ms)), "torch_ms_per_iter": float(np.median(t_ms)),
            "step_time_ratio_median": float(np.median(ratios))}


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

    contenders = {
        "ember_cached": lambda: list(model.generate(prompt, new_tokens, temperature=0)),
        "ember_uncached": lambda: list(model.generate(prompt, new_tokens, temperature=0, use_cache=False)),
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
    return {"new_tokens": new_tokens, "prompt_tokens": prompt_len, "block_size": 1024,
            "tokens_per_s": tps, "kv_cache_speedup_median": float(np.median(speedups)),
            "cached_equals_uncached": outputs["ember_cached"] == outputs["ember_uncached"],
            "ember_equals_torch_greedy": outputs["ember_cached"] == outputs["torch_uncached"]}


def markdown(r: dict) -> str:
    t = r["training"]
    g = r["generation"]["tokens_per_s"]
    lines = [
        "| measure | ember | PyTorch | ember / PyTorch |",
        "|---|---:|---:|---:|",
        f"| ms per training iteration (median of {t['iters'] // CHUNK} interleaved chunks) | "
        f"{t['ember_ms_per_iter']:.1f} | {t['torch_ms_per_iter']:.1f} | **{t['step_time_ratio_median']:.2f}x** |",
        f"| val loss after {t['iters']} iterations (nanoGPT's estimate: its 20 batches) | "
        f"**{t['ember_val_loss_estimate']:.3f}** | {t['torch_val_loss_estimate']:.3f} | |",
        f"| val loss over the whole validation split | {t['ember_val_loss_whole_split']:.3f} | "
        f"{t['torch_val_loss_whole_split']:.3f} | |",
        f"| `ember train gpt` (ember's own init and batches, seed 1337): val loss, 20-batch estimate / whole split | "
        f"{r['ember_own_run']['val_loss_estimate']:.3f} / {r['ember_own_run']['val_loss_whole_split']:.3f} | | |",
        f"| generation, tokens/s with the KV cache (512 new, context 1024) | {g['ember_cached']:.0f} | | |",
        f"| generation, tokens/s recomputing the context | {g['ember_uncached']:.0f} | {g['torch_uncached']:.0f} | "
        f"{g['torch_uncached'] / g['ember_uncached']:.2f}x |",
        f"| KV-cache speedup at 512 new tokens | **{r['generation']['kv_cache_speedup_median']:.1f}x** | | |",
    ]
    for variant in r.get("blas_variants", []):
        lines.append(f"| ms per iteration, OpenBLAS {variant['openblas_kernels']} kernels ({variant['rounds']} "
                     f"rounds) | {variant['ember_ms_per_iter']:.1f} | {variant['torch_ms_per_iter']:.1f} | "
                     f"{variant['step_time_ratio_median']:.2f}x |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--blas", choices=("default", "both"), default="both",
                        help="both: also time steps with OpenBLAS's AVX2 kernels (when the CPU has AVX-512)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the BLAS-variant step timing")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps-only", action="store_true", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--out", default=str(RESULTS / "gpt.json"))
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    torch = import_torch()
    if args.steps_only:
        print(json.dumps(step_ratio(torch, args.rounds, 20, args.data_dir)))
        return 0
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "avx512": has_avx512(), "torch": torch.__version__, "numpy": np.__version__,
        "openblas_kernels": openblas_kernels(), "torch_threads": torch.get_num_threads(),
    }
    print(f"training nanoGPT's CPU recipe for {args.iters} iterations, ember and PyTorch side by side", flush=True)
    result["training"] = train_side_by_side(torch, args.iters, args.data_dir)
    print("ember train gpt with its own initialisation and data order", flush=True)
    result["ember_own_run"] = ember_own_run(args.iters, args.data_dir)
    print("generation with and without the KV cache", flush=True)
    result["generation"] = generation(torch)
    result["blas_variants"] = []
    if args.blas == "both" and has_avx512():
        for coretype in ("SkylakeX", "Haswell"):
            env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
            proc = subprocess.run([sys.executable, __file__, "--steps-only", "--rounds", str(args.rounds)]
                                  + (["--data-dir", args.data_dir] if args.data_dir else []),
                                  env=env, capture_output=True, text=True, check=True)
            result["blas_variants"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    RESULTS.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / "gpt.md").write_text(table + "\n")
    print(table)
    print(result["training"]["sample"])
    if args.update_readme:
        from readme import update_readme

        meta = (f"Measured {result['date']} on {result['machine']} (AVX-512: {'yes' if result['avx512'] else 'no'}; "
                f"OpenBLAS kernels {result['openblas_kernels']}), PyTorch {result['torch']} with "
                f"{result['torch_threads']} threads, NumPy {result['numpy']}; "
                f"`python benchmarks/bench_gpt.py` (results in `benchmarks/results/gpt.json`).")
        update_readme("bench_gpt", table, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
