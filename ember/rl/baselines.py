"""Agents that do not learn, for the evaluation table: random, greedy one-step, depth-2 expectimax; and ``play``,
which runs any policy over many games at once.

A policy maps (boards (N,) uint64, legal (N, 4) bool) to actions (N,). Every policy here picks legal moves only.

* random: uniform over the legal moves.
* greedy: the largest immediate merge reward; ties broken by keeping the largest tile in a corner, then by the
  order up, right, down, left.
* expectimax, depth 2: move, then the random tile (every empty cell, a 2 with probability 0.9 or a 4), then the
  best second move, scored by a hand heuristic over rows and columns (empty cells, merges, monotonicity, and a
  penalty on tile sums; the weights of nneonneo's well-known 2048 AI), computed once per possible row as a table.
"""

from __future__ import annotations

import functools

import numpy as np

from .envs.game2048 import FOUR_PROBABILITY, Games, _rows16, cells_all, moves_all, transpose

# nneonneo/2048-ai's heuristic weights
LOST_PENALTY, MONOTONICITY_POWER, MONOTONICITY_WEIGHT = 200000.0, 4.0, 47.0
SUM_POWER, SUM_WEIGHT, MERGES_WEIGHT, EMPTY_WEIGHT = 3.5, 11.0, 700.0, 270.0


def random_policy(rng: np.random.Generator):
    def act(boards, legal):
        return np.where(legal, rng.random(legal.shape), -1.0).argmax(axis=1)

    return act


def _corner_kept(after: np.ndarray) -> np.ndarray:
    """(4, N) whether each afterstate holds its largest tile in a corner."""
    cells = cells_all(after.reshape(-1)).reshape(4, -1, 16)
    top = cells.max(axis=2, keepdims=True)
    return (cells[:, :, [0, 3, 12, 15]] == top).any(axis=2)


def greedy_policy(boards, legal):
    after, rewards = moves_all(boards)
    key = rewards.astype(np.float64) * 2 + _corner_kept(after)  # reward first; a kept corner breaks ties
    key = np.where(legal.T, key, -np.inf)
    return key.argmax(axis=0)  # argmax takes the first of equal keys: up, right, down, left


@functools.lru_cache(maxsize=1)
def _heuristic_table() -> np.ndarray:
    """The heuristic of every row (float64, 65,536 entries): the sum over a board's 4 rows and 4 columns."""
    table = np.empty(1 << 16, dtype=np.float64)
    for row in range(1 << 16):
        line = [(row >> (4 * i)) & 0xF for i in range(4)]
        total = sum(v ** SUM_POWER for v in line)
        empty = sum(v == 0 for v in line)
        merges, prev, counter = 0, 0, 0
        for v in line:
            if v == 0:
                continue
            if prev == v:
                counter += 1
            elif counter > 0:
                merges += 1 + counter
                counter = 0
            prev = v
        if counter > 0:
            merges += 1 + counter
        left = right = 0.0
        for i in range(1, 4):
            a, b = line[i - 1] ** MONOTONICITY_POWER, line[i] ** MONOTONICITY_POWER
            if line[i - 1] > line[i]:
                left += a - b
            else:
                right += b - a
        table[row] = (LOST_PENALTY + EMPTY_WEIGHT * empty + MERGES_WEIGHT * merges
                      - MONOTONICITY_WEIGHT * min(left, right) - SUM_WEIGHT * total)
    return table


def heuristic(boards: np.ndarray) -> np.ndarray:
    """The hand heuristic of boards (N,) -> (N,) float64."""
    table = _heuristic_table()
    b = np.ascontiguousarray(boards, dtype=np.uint64)
    return table[_rows16(b)].sum(axis=1) + table[_rows16(transpose(b))].sum(axis=1)


def _spawned(after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every board a random tile can make from each of ``after`` (M,): (M, 16, 2) boards and their probabilities
    (0 where the cell is taken)."""
    nibbles = np.stack([(after >> np.uint64(4 * k)) & np.uint64(0xF) for k in range(16)], axis=1)  # (M, 16)
    empty = nibbles == 0
    count = np.maximum(empty.sum(axis=1, keepdims=True), 1)
    shifts = (np.uint64(4) * np.arange(16, dtype=np.uint64))[None, :]
    two, four = after[:, None] | (np.uint64(1) << shifts), after[:, None] | (np.uint64(2) << shifts)
    boards = np.stack([np.where(empty, two, after[:, None]), np.where(empty, four, after[:, None])], axis=2)
    probs = np.stack([empty / count * (1 - FOUR_PROBABILITY), empty / count * FOUR_PROBABILITY], axis=2)
    return boards, probs


def expectimax_policy(boards, legal):
    """Depth 2: max over moves of the expectation over the tile of the max over the next moves of the heuristic."""
    n = len(boards)
    after, _ = moves_all(boards)  # (4, N)
    flat = after.reshape(-1)
    spawned, probs = _spawned(flat)  # (4N, 16, 2)
    nxt, _ = moves_all(spawned.reshape(-1))  # (4, 4N·32)
    moved = nxt != spawned.reshape(-1)[None]
    values = np.where(moved, heuristic(nxt.reshape(-1)).reshape(4, -1), -np.inf).max(axis=0)
    values = np.where(np.isfinite(values), values, 0.0)  # no move left: the game is lost, worth 0
    expected = (values.reshape(4 * n, 16, 2) * probs).sum(axis=(1, 2)).reshape(4, n)
    return np.where(legal.T, expected, -np.inf).argmax(axis=0)


def play(policy, games: int, seed: int = 0, envs: int | None = None, max_moves: int = 1_000_000) -> dict:
    """Run ``policy`` until ``games`` games have ended: their scores and largest tiles (in the order they ended)."""
    envs = min(games, envs or games)
    g = Games(envs, seed=seed)
    g.reset()
    scores, tiles, started = [], [], envs
    active = np.ones(envs, dtype=bool)
    for _ in range(max_moves):
        if not active.any():
            break
        actions = policy(g.boards, g.legal)
        _, done, _ = g.step(np.asarray(actions, dtype=np.int64))
        ended = done & active
        if ended.any():
            scores += g.scores[ended].tolist()
            tiles += (1 << cells_all(g.boards[ended]).reshape(-1, 16).max(axis=1).astype(np.int64)).tolist()
            restart = ended.copy()
            if started + int(ended.sum()) > games:  # only as many new games as are still wanted
                keep = np.flatnonzero(ended)[: games - started]
                restart[:] = False
                restart[keep] = True
            started += int(restart.sum())
            active &= ~(ended & ~restart)
            g.reset(restart)
    return summarize(scores[:games], tiles[:games])


def summarize(scores, tiles) -> dict:
    scores, tiles = np.asarray(scores), np.asarray(tiles)
    values, counts = np.unique(tiles, return_counts=True)
    return {"games": int(scores.size), "mean_score": float(scores.mean()), "median_score": float(np.median(scores)),
            "max_score": int(scores.max()), "max_tile_counts": {str(int(v)): int(c) for v, c in zip(values, counts)},
            "rate_1024": float((tiles >= 1024).mean()), "rate_2048": float((tiles >= 2048).mean())}
