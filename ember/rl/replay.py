"""Experience replay: a ring buffer of transitions in preallocated arrays, and n-step returns per environment.

Boards are stored as their 64-bit codes (8 bytes a state instead of a 256-float one-hot) and encoded when a batch
is sampled. A slot is only ever sampled once written: sampling draws from the first ``size`` slots, and ``size``
counts the writes up to the capacity.
"""

from __future__ import annotations

import numpy as np


class ReplayBuffer:
    """Transitions (board, action, return, next board, done, next legal mask, discount) in a ring of ``capacity``."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"ReplayBuffer: capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.boards = np.zeros(capacity, dtype=np.uint64)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.returns = np.zeros(capacity, dtype=np.float32)
        self.next_boards = np.zeros(capacity, dtype=np.uint64)
        self.done = np.zeros(capacity, dtype=bool)
        self.next_legal = np.zeros((capacity, 4), dtype=bool)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.pos = 0  # the next slot to write
        self.size = 0  # slots written so far (at most capacity)

    def __len__(self) -> int:
        return self.size

    def add(self, boards, actions, returns, next_boards, done, next_legal, discounts) -> None:
        """Append a batch of transitions (arrays with one row each), wrapping around the ring."""
        n = len(boards)
        if n > self.capacity:
            raise ValueError(f"ReplayBuffer.add: {n} transitions exceed the capacity {self.capacity}")
        at = (self.pos + np.arange(n)) % self.capacity
        self.boards[at], self.actions[at], self.returns[at] = boards, actions, returns
        self.next_boards[at], self.done[at], self.next_legal[at] = next_boards, done, next_legal
        self.discounts[at] = discounts
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch: int, rng: np.random.Generator) -> dict:
        if self.size == 0:
            raise ValueError("ReplayBuffer.sample: the buffer is empty")
        at = rng.integers(0, self.size, size=batch)
        return {"boards": self.boards[at], "actions": self.actions[at], "returns": self.returns[at],
                "next_boards": self.next_boards[at], "done": self.done[at], "next_legal": self.next_legal[at],
                "discounts": self.discounts[at], "index": at}


class NStep:
    """Turns each environment's stream of (board, action, reward) into n-step transitions.

    After step t of environment i, ``push`` returns the transitions that became complete: the one starting n steps
    back (return r_t-n+1 + γ r_t-n+2 + ... , bootstrapping from the board now, discount γ^n), or, when the game
    ended, every pending one of that environment (each with its shorter return, done, no bootstrap).
    Steps of finished games (Gymnasium's next-step auto-reset) must not be pushed.
    """

    def __init__(self, n_envs: int, n: int, gamma: float):
        if n < 1:
            raise ValueError(f"NStep: n must be at least 1, got {n}")
        self.n, self.gamma = n, float(gamma)
        self.pending: list[list[tuple[int, int, float]]] = [[] for _ in range(n_envs)]

    def push(self, boards, actions, rewards, next_boards, done, next_legal) -> tuple:
        """Arrays of the completed transitions (possibly none)."""
        out = []
        for i in range(len(boards)):
            queue = self.pending[i]
            queue.append((int(boards[i]), int(actions[i]), float(rewards[i])))
            if done[i]:
                while queue:
                    out.append(self._emit(queue, int(next_boards[i]), True, next_legal[i]))
                    queue.pop(0)
            elif len(queue) == self.n:
                out.append(self._emit(queue, int(next_boards[i]), False, next_legal[i]))
                queue.pop(0)
        if not out:
            return ()
        boards, actions, returns, nexts, dones, legal, discounts = zip(*out)
        return (np.array(boards, dtype=np.uint64), np.array(actions), np.array(returns, dtype=np.float32),
                np.array(nexts, dtype=np.uint64), np.array(dones), np.array(legal), np.array(discounts, np.float32))

    def _emit(self, queue, next_board: int, done: bool, next_legal):
        ret = sum(self.gamma ** k * r for k, (_, _, r) in enumerate(queue))
        return (queue[0][0], queue[0][1], ret, next_board, done, np.asarray(next_legal, bool),
                0.0 if done else self.gamma ** len(queue))
