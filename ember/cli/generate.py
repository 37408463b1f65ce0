"""``ember generate``: sample text from a trained GPT, streamed to stdout as it is produced."""

from __future__ import annotations

import sys

from .common import UsageError, fraction, non_negative_float, non_negative_int, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="sample text from a trained GPT",
                       description="Continue a prompt with a GPT trained by `ember train gpt`, printing tokens as "
                                   "they come.")
    p.add_argument("--ckpt", metavar="DIR", required=True, help="the --out folder of ember train gpt")
    p.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    p.add_argument("--max-new-tokens", type=positive_int, default=256)
    p.add_argument("--temperature", type=non_negative_float, default=0.8, help="0 for greedy decoding (default 0.8)")
    p.add_argument("--top-k", type=positive_int, default=None)
    p.add_argument("--top-p", type=fraction, default=None, help="nucleus sampling, in (0, 1]")
    p.add_argument("--seed", type=non_negative_int, default=None)
    p.add_argument("--no-cache", action="store_true", help="recompute the whole context every token")
    p.add_argument("--no-verify", action="store_true",
                   help="load without checking the weights against the content hashes stored at save time")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..train.lm import load_lm

    model, tokenizer, _ = load_lm(args.ckpt, verify=not args.no_verify)
    try:
        prompt = tokenizer.encode(args.prompt)
    except ValueError as exc:
        raise UsageError(f"--prompt: {exc}") from None
    if not prompt:
        raise UsageError("--prompt is empty after tokenizing")
    try:
        stream = model.generate(prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                                top_p=args.top_p, seed=args.seed, use_cache=not args.no_cache)
        out = sys.stdout
        out.write(args.prompt)
        pending: list[int] = []
        for token in stream:
            pending.append(token)
            text = tokenizer.decode(pending)
            if text.endswith("\ufffd") and len(pending) < 8:  # a UTF-8 character split across byte tokens
                continue
            out.write(text)
            out.flush()
            pending.clear()
        if pending:
            out.write(tokenizer.decode(pending))
        out.write("\n")
        out.flush()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return 0
