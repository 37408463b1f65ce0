"""2048 as a Gymnasium environment, ``gymnasium.make("ember/2048-v0")`` once ``ember.rl`` is imported.

Observation: the 4x4 grid of exponents (uint8, 0 empty, e for the tile 2^e); action: Discrete(4) (0 up, 1 right,
2 down, 3 left); reward: the sum of the tiles merged by the move (0 for an illegal move, which changes nothing);
``terminated`` when no move changes the board; never truncated (wrap it in ``TimeLimit`` for that). ``info``:
``action_mask`` (int8, 1 for the moves that change the board), ``score``, ``max_tile``, ``illegal_move``.
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces

from .game2048 import MAX_EXPONENT, Game, cells_of, legal_moves, max_tile


class Game2048Env(gymnasium.Env):
    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None):
        if render_mode not in (None, "ansi"):
            raise ValueError(f"Game2048Env: render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, MAX_EXPONENT, shape=(4, 4), dtype=np.uint8)
        self.action_space = spaces.Discrete(4)
        self.game = Game()

    def _info(self, illegal: bool = False) -> dict:
        board = self.game.board
        return {"action_mask": np.array(legal_moves(board), dtype=np.int8), "score": int(self.game.score),
                "max_tile": max_tile(board), "illegal_move": illegal}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        # the game's generator comes from gymnasium's seeded np_random, so reset(seed=s) repeats a game exactly
        self.game.rng = self.np_random
        self.game.reset()
        return cells_of(self.game.board), self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"Game2048Env.step: action must be 0, 1, 2 or 3, got {action!r}")
        reward, done, legal = self.game.step(int(action))
        return cells_of(self.game.board), float(reward), bool(done), False, self._info(not legal)

    def render(self):
        if self.render_mode == "ansi":
            from ..play import board_text

            return board_text(self.game.board)
        return None
