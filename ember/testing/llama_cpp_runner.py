"""Run a GGUF file in llama.cpp (through ``llama-cpp-python``) in a child process, for parity tests and benchmarks.

llama.cpp aborts the whole process on some errors (e.g. evaluating past the context), so it never runs inside
the test process: ``run_llama_cpp(path, request)`` starts ``python -m ember.testing.llama_cpp_runner PATH``, sends
the request as JSON on stdin and reads the answer as JSON from stdout. The KV cache is F32 (``type_k = type_v =
0``) for tight comparisons; one thread unless asked.

Request keys (each optional):
  ``tokenize``: a list of strings -> ``tokens``: llama.cpp's ids of each (special tokens parsed, no BOS);
  ``greedy``: {"prompt": ids, "n": N} -> ``greedy``: N ids, each the argmax of llama.cpp's logits over the whole
  vocabulary, fed back one at a time, and ``logits``: the logits (one row per position of prompt + N - 1 ids);
  ``decode``: {"prompt": ids, "n": N} -> ``decode``: {"tokens", "seconds"}: greedy decoding timed (the prompt's
  evaluation excluded), for the decode-speed benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time


def run_llama_cpp(path, request: dict, threads: int = 1, n_ctx: int | None = None, timeout: float = 300) -> dict:
    """The answer of llama.cpp to ``request`` for the GGUF file ``path`` (a RuntimeError with llama.cpp's output
    when the child fails)."""
    argv = [sys.executable, "-m", "ember.testing.llama_cpp_runner", str(path), "--threads", str(threads)]
    if n_ctx:
        argv += ["--n-ctx", str(n_ctx)]
    done = subprocess.run(argv, input=json.dumps(request), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"llama.cpp on {path} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


def _answer(llm, request: dict) -> dict:
    import numpy as np

    out = {}
    if "tokenize" in request:
        out["tokens"] = [llm.tokenize(s.encode("utf-8"), add_bos=False, special=True) for s in request["tokenize"]]
    if "greedy" in request:
        prompt, n = list(request["greedy"]["prompt"]), int(request["greedy"]["n"])
        llm.reset()
        llm.eval(prompt)
        ids = []
        for i in range(n):
            ids.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
            if i < n - 1:
                llm.eval([ids[-1]])
        out["greedy"] = ids
        out["logits"] = np.asarray(llm.scores[: llm.n_tokens], dtype=np.float64).tolist()
    if "decode" in request:
        prompt, n = list(request["decode"]["prompt"]), int(request["decode"]["n"])
        llm.reset()
        llm.eval(prompt)
        ids, start = [], time.perf_counter()
        for _ in range(n):
            ids.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
            llm.eval([ids[-1]])
        out["decode"] = {"tokens": ids, "seconds": time.perf_counter() - start}
    return out


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="answer one JSON request with llama.cpp (see the module docstring)")
    parser.add_argument("path")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=0, help="default: the model's context length")
    args = parser.parse_args(argv)
    from llama_cpp import Llama

    request = json.loads(sys.stdin.read())
    llm = Llama(model_path=args.path, n_ctx=args.n_ctx, n_threads=args.threads, n_threads_batch=args.threads,
                logits_all=True, type_k=0, type_v=0, verbose=False)
    json.dump(_answer(llm, request), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
