"""``ember serve``: an OpenAI-compatible HTTP server with continuous batching.

``engine`` (the scheduler: NumPy only), ``protocol`` (requests and responses as data), ``chat`` (the chat
template) need nothing beyond ember; ``app`` (the HTTP layer) needs Starlette, and ``ember serve`` uvicorn:
``pip install 'ember[serve]'``.
"""

from .engine import Delta, Done, Engine, QueueFull, Request, RequestRejected, SamplingParams, TokenLogprob

__all__ = ["Delta", "Done", "Engine", "QueueFull", "Request", "RequestRejected", "SamplingParams", "TokenLogprob"]
