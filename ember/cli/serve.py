"""``ember serve CKPT``: an OpenAI-compatible HTTP server for a trained GPT, with continuous batching.

The model's id (the ``model`` field of requests) is the checkpoint folder's name. See ember/serve/ for the
scheduler (engine.py), the accepted fields (protocol.py) and the chat template (chat.py).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .common import UserError, positive_int, say


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a trained GPT over OpenAI's HTTP API",
                       description="Serve a GPT trained by `ember train gpt` over OpenAI's HTTP API (/v1/completions, "
                                   "/v1/chat/completions, /v1/models; /health, /metrics), decoding the running "
                                   "requests together.")
    p.add_argument("ckpt", metavar="CKPT", help="the --out folder of ember train gpt; its name is the model's id")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=positive_int, default=8000)
    p.add_argument("--max-batch", type=positive_int, default=16,
                   help="KV-cache rows: sequences decoded together (a request of n choices takes n; default 16)")
    p.add_argument("--api-key", default=os.environ.get("EMBER_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on /v1 routes (default: $EMBER_API_KEY, else none)")
    p.add_argument("--prefill-chunk", type=positive_int, default=128,
                   help="prompt tokens prefilled per step, between decode steps (default 128)")
    p.add_argument("--max-queue", type=positive_int, default=64,
                   help="requests waiting for rows before new ones get 429 (default 64)")
    p.add_argument("--engine", choices=("process", "thread"), default="process",
                   help="run the model in a process of its own (default), or in a thread of the server's: the "
                        "thread shares Python's lock with the HTTP work, which slows both under load")
    p.add_argument("--no-verify", action="store_true",
                   help="load without checking the weights against the content hashes stored at save time")
    p.set_defaults(run=run)


def run(args) -> int:
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise UserError(f"ember serve needs Starlette and uvicorn ({exc.name} is not installed): "
                        "pip install 'ember[serve]'") from None
    from ..serve.app import create_app

    folder = Path(args.ckpt)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such checkpoint folder (expected the --out folder of ember train gpt)")
    model_id = folder.resolve().name

    from ..serve.worker import EngineProcess, engine_from_run

    build = functools.partial(engine_from_run, folder, verify=not args.no_verify, max_batch=args.max_batch,
                              prefill_chunk=args.prefill_chunk, max_queue=args.max_queue)
    load = functools.partial(EngineProcess, build) if args.engine == "process" else build
    app = create_app(load, model_id, api_key=args.api_key or None)
    say(f"serving {model_id!r} at http://{args.host}:{args.port}/v1 ({args.max_batch} rows"
        f"{', API key required' if args.api_key else ''})")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
