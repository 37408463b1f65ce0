"""Shared by the kernel tests: counting calls, to know which path (kernel or reference) an op took."""

from __future__ import annotations

import pytest


class CallCounter:
    """Wraps a function, counting its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


@pytest.fixture
def count_calls(monkeypatch):
    """``count_calls(module, name)`` replaces ``module.name`` with a CallCounter for the test and returns it."""

    def install(module, name: str) -> CallCounter:
        counter = CallCounter(getattr(module, name))
        monkeypatch.setattr(module, name, counter)
        return counter

    return install
