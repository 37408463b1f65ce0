"""Environments: the game 2048 (``game2048``: one board or many at once; ``gym``: the Gymnasium wrapper)."""

from __future__ import annotations

ENV_ID = "ember/2048-v0"


def register() -> bool:
    """Register ``ember/2048-v0`` with Gymnasium when it is installed (an optional extra); True if registered."""
    try:
        import gymnasium
    except ImportError:
        return False
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="ember.rl.envs.gym:Game2048Env")
    return True
