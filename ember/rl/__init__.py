"""Reinforcement learning: the game 2048 and a DQN agent that learns it (``ember rl train 2048``).

Importing ``ember.rl`` registers ``gymnasium.make("ember/2048-v0")`` when Gymnasium is installed.
"""

from __future__ import annotations

from .envs import ENV_ID, register

register()

__all__ = ["ENV_ID", "register"]
