"""The game 2048: the rules once, as row lookup tables, run on one board (plain Python ints) or many at once (NumPy).

A board is a 64-bit integer: the exponent of cell (r, c) (0 for empty, e for a tile 2^e) sits in the 4 bits at
offset 4·(4r + c), so row r is the 16 bits ``(board >> 16r) & 0xFFFF`` and cell c of a row its nibble c. Every
one of the 65,536 possible rows is slid and merged once, at first use, into tables: the row after a move to the
left, the reward (the sum of the merged tiles), and whether a merge would need exponent 16 (a 65,536 tile, which
4 bits cannot hold: such a move raises ``OverflowError``, never wraps). A move right reads the tables with the
row reversed; up and down transpose the board (a few bit operations) and move left or right.

Rules (the standard game): a move slides every tile as far as it goes, a pair of equal tiles merges once per move
(``2 2 2 2`` left is ``4 4 0 0``, ``4 4 8 0`` is ``8 8 0 0``: a merged tile does not merge again in that move);
a move that changes nothing is illegal and leaves the board as it is; after a legal move a 2 (probability 0.9)
or a 4 appears in an empty cell chosen uniformly; the game is over when no move changes the board. Both
versions spawn the same way from two uniform numbers (cell = the floor(u0·empties)-th empty cell in cell order,
a 4 when u1 < 0.1), so fed the same numbers they play the same game (tested).

Actions: 0 up, 1 right, 2 down, 3 left.
"""

from __future__ import annotations

import functools

import numpy as np

from ... import kernels
from . import _kernel

ACTIONS = ("up", "right", "down", "left")
UP, RIGHT, DOWN, LEFT = range(4)
FOUR_PROBABILITY = 0.1
MAX_EXPONENT = 15  # 4 bits per cell: tiles up to 32,768
_ROW = 0xFFFF


# -- the row tables -------------------------------------------------------------------------------------------
def _slide_left(cells: list[int]) -> tuple[list[int], int, bool]:
    """One row moved left: (cells, reward, overflow)."""
    tiles = [e for e in cells if e]
    out, reward, overflow, i = [], 0, False, 0
    while i < len(tiles):
        if i + 1 < len(tiles) and tiles[i] == tiles[i + 1]:
            merged = tiles[i] + 1
            overflow |= merged > MAX_EXPONENT
            out.append(min(merged, MAX_EXPONENT))
            reward += 1 << merged
            i += 2
        else:
            out.append(tiles[i])
            i += 1
    return out + [0] * (4 - len(out)), reward, overflow


def _pack(cells) -> int:
    return cells[0] | cells[1] << 4 | cells[2] << 8 | cells[3] << 12


def _unpack(row: int) -> list[int]:
    return [row & 0xF, row >> 4 & 0xF, row >> 8 & 0xF, row >> 12 & 0xF]


def _reverse(row: int) -> int:
    return (row & 0xF) << 12 | (row >> 4 & 0xF) << 8 | (row >> 8 & 0xF) << 4 | row >> 12


@functools.lru_cache(maxsize=1)
def tables() -> dict:
    """Row tables for both directions, as NumPy arrays (vectorised boards) and lists (one board)."""
    left = np.zeros(1 << 16, dtype=np.uint64)
    right = np.zeros(1 << 16, dtype=np.uint64)
    reward_left = np.zeros(1 << 16, dtype=np.int64)
    reward_right = np.zeros(1 << 16, dtype=np.int64)
    overflow = np.zeros(1 << 16, dtype=bool)
    overflow_right = np.zeros(1 << 16, dtype=bool)
    for row in range(1 << 16):
        cells, reward, over = _slide_left(_unpack(row))
        left[row], reward_left[row], overflow[row] = _pack(cells), reward, over
        back = _reverse(row)
        right[back], reward_right[back], overflow_right[back] = _reverse(_pack(cells)), reward, over
    arrays = {"move": (left.astype(np.uint16), right.astype(np.uint16)), "reward": (reward_left, reward_right),
              "overflow": (overflow, overflow_right)}
    lists = {k: tuple(a.tolist() for a in v) for k, v in arrays.items()}
    pairs = [any(c[i] and c[i] == c[i + 1] for i in range(3)) for c in map(_unpack, range(1 << 16))]
    return {"arrays": arrays, "lists": lists, "has_pair": pairs}


# -- boards as integers -----------------------------------------------------------------------------------------
def board_from_cells(cells) -> int:
    """A board from a 4x4 grid of exponents (0 empty, e for a tile 2^e)."""
    grid = np.asarray(cells, dtype=np.int64).reshape(4, 4)
    if grid.min() < 0 or grid.max() > MAX_EXPONENT:
        raise ValueError(f"board_from_cells: exponents must be in 0..{MAX_EXPONENT}, got {grid.min()}..{grid.max()}")
    board = 0
    for k, e in enumerate(grid.reshape(-1).tolist()):
        board |= e << (4 * k)
    return board


def board_from_tiles(tiles) -> int:
    """A board from a 4x4 grid of tile values (0 for empty, powers of two from 2)."""
    grid = np.asarray(tiles, dtype=np.int64).reshape(4, 4)
    bad = (grid != 0) & ((grid < 2) | (grid & (grid - 1) != 0))
    if bad.any():
        raise ValueError(f"board_from_tiles: tiles must be 0 or powers of two >= 2, got {grid[bad][0]}")
    return board_from_cells(np.where(grid > 0, np.log2(np.maximum(grid, 1)).round().astype(np.int64), 0))


def cells_of(board: int) -> np.ndarray:
    """The 4x4 grid of exponents of a board."""
    return np.array([(board >> (4 * k)) & 0xF for k in range(16)], dtype=np.uint8).reshape(4, 4)


def tiles_of(board: int) -> np.ndarray:
    cells = cells_of(board).astype(np.int64)
    return np.where(cells > 0, 1 << cells, 0)


def transpose(board: int) -> int:
    """Cell (r, c) to (c, r) (for Python ints and NumPy uint64 arrays alike)."""
    a1 = board & 0xF0F00F0FF0F00F0F
    a2 = board & 0x0000F0F00000F0F0
    a3 = board & 0x0F0F00000F0F0000
    a = a1 | (a2 << 12) | (a3 >> 12)
    b1 = a & 0xFF00FF0000FF00FF
    b2 = a & 0x00FF00FF00000000
    b3 = a & 0x00000000FF00FF00
    return b1 | (b2 >> 24) | (b3 << 24)


def move(board: int, action: int) -> tuple[int, int]:
    """(board after the move, reward) for one board; an illegal move returns the board unchanged and 0."""
    lists = tables()["lists"]
    side = 0 if action in (UP, LEFT) else 1
    moved, rewards, overflow = lists["move"][side], lists["reward"][side], lists["overflow"][side]
    b = transpose(board) if action in (UP, DOWN) else board
    out, reward = 0, 0
    for r in range(4):
        row = (b >> (16 * r)) & _ROW
        if overflow[row]:
            raise OverflowError("2048: a merge would make a 65,536 tile, which a 4-bit cell cannot hold")
        out |= moved[row] << (16 * r)
        reward += rewards[row]
    return (transpose(out) if action in (UP, DOWN) else out), reward


def legal_moves(board: int) -> list[bool]:
    """Which of the four moves change the board."""
    return [move(board, a)[0] != board for a in range(4)]


_NIBBLE_LOW_BITS = 0x1111111111111111


def has_empty(board: int) -> bool:
    return bool(~(board | board >> 1 | board >> 2 | board >> 3) & _NIBBLE_LOW_BITS)


def can_move(board: int) -> bool:
    """Whether any move changes the board: an empty cell (some tile can always slide into it), or two equal tiles
    side by side in a row or a column. Cheaper than trying the four moves."""
    if has_empty(board):
        return True
    pair, t = tables()["has_pair"], transpose(board)
    return any(pair[(board >> (16 * r)) & _ROW] or pair[(t >> (16 * r)) & _ROW] for r in range(4))


def spawn(board: int, u0: float, u1: float) -> int:
    """A new tile in an empty cell: the floor(u0·empties)-th empty cell in cell order, a 4 when u1 < 0.1."""
    empties = [k for k in range(16) if not (board >> (4 * k)) & 0xF]
    if not empties:
        return board
    k = empties[min(int(u0 * len(empties)), len(empties) - 1)]
    return board | ((2 if u1 < FOUR_PROBABILITY else 1) << (4 * k))


def max_tile(board: int) -> int:
    return 1 << max((board >> (4 * k)) & 0xF for k in range(16))


# -- one game ------------------------------------------------------------------------------------------------
class Game:
    """One game of 2048, seeded: ``reset()``, ``step(action) -> (reward, done, legal)``."""

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)
        self.board = 0
        self.score = 0
        self.moves = 0

    def reset(self, seed: int | None = None) -> int:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        u = self.rng.random(4)
        self.board = spawn(spawn(0, u[0], u[1]), u[2], u[3])
        self.score = self.moves = 0
        return self.board

    def step(self, action: int) -> tuple[int, bool, bool]:
        """Play ``action``: (reward, game over, whether the move was legal). An illegal move changes nothing."""
        if action not in (0, 1, 2, 3):
            raise ValueError(f"2048: action must be 0 (up), 1 (right), 2 (down) or 3 (left), got {action!r}")
        after, reward = move(self.board, action)
        if after == self.board:
            return 0, not can_move(self.board), False
        u0, u1 = self.rng.random(2).tolist()
        self.board = spawn(after, u0, u1)
        self.score += reward
        self.moves += 1
        return reward, not can_move(self.board), True


# -- many boards at once ------------------------------------------------------------------------------------------
# A board array (N,) uint64 viewed as (N, 4) uint16 is its rows (little-endian: row 0 in the low 16 bits), so a move
# left or right is one table gather over all rows, and up or down the same between two transposes.
def _rows16(boards: np.ndarray) -> np.ndarray:
    return boards.view(np.uint16).reshape(-1, 4)


def _has_fifteen(boards: np.ndarray) -> bool:
    """Whether any board holds a 32,768 tile (exponent 15): only then can a move overflow."""
    x = boards
    return bool((x & (x >> np.uint64(1)) & (x >> np.uint64(2)) & (x >> np.uint64(3))
                 & np.uint64(_NIBBLE_LOW_BITS)).any())


def moves_all(boards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every board after each of the four moves and the rewards: (4, N) uint64 and (4, N) int64."""
    arrays = tables()["arrays"]
    boards = np.ascontiguousarray(boards, dtype=np.uint64)
    n = boards.size
    t = transpose(boards)
    out = np.empty((4, n), dtype=np.uint64)
    rewards = np.empty((4, n), dtype=np.int64)
    check = _has_fifteen(boards)  # the transpose holds the same tiles
    for action, src in ((LEFT, boards), (RIGHT, boards), (UP, t), (DOWN, t)):
        side = 0 if action in (UP, LEFT) else 1
        rows = _rows16(src)
        if check and arrays["overflow"][side][rows].any():
            raise OverflowError("2048: a merge would make a 65,536 tile, which a 4-bit cell cannot hold")
        moved = arrays["move"][side][rows].reshape(-1).view(np.uint64)
        out[action] = transpose(moved) if action in (UP, DOWN) else moved
        r = arrays["reward"][side][rows]
        rewards[action] = r[:, 0] + r[:, 1] + r[:, 2] + r[:, 3]
    return out, rewards


def _empty_cells(boards: np.ndarray) -> np.ndarray:
    """(N, 16) bool: which cells are empty."""
    empty = ~(boards | boards >> np.uint64(1) | boards >> np.uint64(2) | boards >> np.uint64(3)) \
        & np.uint64(_NIBBLE_LOW_BITS)
    bits = np.unpackbits(empty.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")  # (N, 64)
    return bits[:, ::4].astype(bool)


def spawn_all(boards: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``spawn`` on every board, u (N, 2) uniforms; boards with no empty cell stay as they are."""
    boards = np.ascontiguousarray(boards, dtype=np.uint64)
    empty = _empty_cells(boards)
    count = empty.sum(axis=1, dtype=np.int64)
    pick = np.minimum((u[:, 0] * count).astype(np.int64), np.maximum(count - 1, 0))
    rank = np.cumsum(empty, axis=1, dtype=np.int8)  # 1 + the index of each empty cell among the board's empties
    k = (empty & (rank == (pick + 1).astype(np.int8)[:, None])).argmax(axis=1).astype(np.uint64)
    value = np.where(u[:, 1] < FOUR_PROBABILITY, np.uint64(2), np.uint64(1))
    return np.where(count > 0, boards | (value << (np.uint64(4) * k)), boards)


def cells_all(boards: np.ndarray) -> np.ndarray:
    """(N, 4, 4) exponents of many boards."""
    b = np.ascontiguousarray(boards, dtype=np.uint64)
    nibbles = np.stack([(b >> np.uint64(4 * k)) & np.uint64(0xF) for k in range(16)], axis=1)
    return nibbles.astype(np.uint8).reshape(-1, 4, 4)


class Games:
    """N games stepped together: ``reset()``, ``step(actions) -> (rewards, done, legal)``; ``legal`` (N, 4) is
    the mask of the moves that change each board now. A finished game stays finished until ``reset(which)``."""

    def __init__(self, n: int, seed: int | None = None):
        if n < 1:
            raise ValueError(f"Games: need at least one board, got {n}")
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.boards = np.zeros(n, dtype=np.uint64)
        self.scores = np.zeros(n, dtype=np.int64)
        self.moves = np.zeros(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        self.legal = np.zeros((n, 4), dtype=bool)
        self._after = self._rewards = None  # the NumPy path's four moves of every board, kept from its last step

    def reset(self, which: np.ndarray | None = None) -> np.ndarray:
        """Start new games on the boards ``which`` (a bool mask; default all)."""
        which = np.ones(self.n, dtype=bool) if which is None else np.asarray(which, dtype=bool)
        m = int(which.sum())
        if not m:
            return self.boards
        u = self.rng.random((m, 4))
        if _kernel.new_boards is not None and kernels.compiled():
            full = np.zeros((self.n, 4))
            full[which] = u
            t = tables()["arrays"]
            _kernel.new_boards(self.boards, which, full, *t["move"], *t["reward"], *t["overflow"], FOUR_PROBABILITY,
                               self.legal)
        else:
            self.boards[which] = spawn_all(spawn_all(np.zeros(m, dtype=np.uint64), u[:, :2]), u[:, 2:])
            after, _ = moves_all(self.boards[which])
            self.legal[which] = (after != self.boards[which][None]).T
        self.scores[which] = 0
        self.moves[which] = 0
        self.done[which] = False
        self._after = self._rewards = None
        return self.boards

    def _refresh(self) -> None:
        self._after, self._rewards = moves_all(self.boards)
        self.legal = (self._after != self.boards[None]).T  # (N, 4)

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Play one move on every board (finished boards ignore theirs): (rewards, done, legal)."""
        actions = np.asarray(actions)
        if actions.shape != (self.n,) or actions.dtype.kind not in "iu" or (actions < 0).any() or (actions > 3).any():
            raise ValueError(f"Games.step: need {self.n} actions in 0..3, got {actions!r}")
        u = self.rng.random((self.n, 2))
        if _kernel.step_boards is not None and kernels.compiled():
            return self._step_compiled(actions, u)
        if self._after is None:
            self._refresh()
        idx = np.arange(self.n)
        after, reward = self._after[actions, idx], self._rewards[actions, idx]
        changed = (after != self.boards) & ~self.done
        reward = np.where(changed, reward, 0)
        self.boards = np.where(changed, spawn_all(after, u), self.boards)
        self.scores += reward
        self.moves += changed
        self._refresh()
        self.done |= ~self.legal.any(axis=1)
        return reward, self.done.copy(), self.legal

    def _step_compiled(self, actions: np.ndarray, u: np.ndarray):
        t = tables()["arrays"]
        before = self.boards.copy()
        rewards = np.empty(self.n, dtype=np.int64)
        legal = np.empty((self.n, 4), dtype=bool)
        done = self.done.copy()
        overflow = _kernel.step_boards(self.boards, actions.astype(np.int64), done, u, *t["move"], *t["reward"],
                                       *t["overflow"], FOUR_PROBABILITY, rewards, legal)
        if overflow:
            self.boards = before
            raise OverflowError("2048: a merge would make a 65,536 tile, which a 4-bit cell cannot hold")
        self.scores += rewards
        self.moves += self.boards != before
        self.done, self.legal = done, legal
        self._after = self._rewards = None  # the NumPy path recomputes them when it is used next
        return rewards, done.copy(), legal
