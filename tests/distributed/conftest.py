"""A clean slate for the in-process tests: no World set up, no launcher in the environment."""

from __future__ import annotations

import pytest

import ember.distributed.comm as comm


@pytest.fixture
def fresh_world(monkeypatch):
    """No World set up yet, and no launcher in the environment: each test calls init() itself."""
    monkeypatch.setattr(comm, "_world", None)
    for name in comm.LAUNCHER_RANK_VARS + comm.LAUNCHER_SIZE_VARS + (comm.TIMEOUT_ENV,):
        monkeypatch.delenv(name, raising=False)
    yield
