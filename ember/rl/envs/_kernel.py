"""The vectorised 2048 step as one compiled loop over the boards (numba), beside its NumPy definition.

``Games.step`` in whole-array NumPy runs about 60 array operations per step (four moves through the row tables,
three transposes, the rewards, the spawn), each a pass over the N boards: 0.9 million moves per second at 1,024
boards here. This loop does the same per board in registers (one chosen move, the spawn, the four-move legality
test), 10-20x faster. Tests compare it with the NumPy path on random games.
"""

from __future__ import annotations

import numpy as np

from ...kernels import jit

_M1 = np.uint64(0xF0F00F0FF0F00F0F)
_M2 = np.uint64(0x0000F0F00000F0F0)
_M3 = np.uint64(0x0F0F00000F0F0000)
_M4 = np.uint64(0xFF00FF0000FF00FF)
_M5 = np.uint64(0x00FF00FF00000000)
_M6 = np.uint64(0x00000000FF00FF00)
_LOW = np.uint64(0x1111111111111111)
_ROW = np.uint64(0xFFFF)


@jit
def _transpose(x):
    a = (x & _M1) | ((x & _M2) << np.uint64(12)) | ((x & _M3) >> np.uint64(12))
    return (a & _M4) | ((a & _M5) >> np.uint64(24)) | ((a & _M6) << np.uint64(24))


@jit
def _move(board, action, left, right, reward_left, reward_right, overflow_left, overflow_right):
    """(board after the move, reward, overflow) for one board; actions 0 up, 1 right, 2 down, 3 left."""
    src = _transpose(board) if action == 0 or action == 2 else board
    use_left = action == 0 or action == 3
    out = np.uint64(0)
    reward = 0
    over = False
    for r in range(4):
        shift = np.uint64(16 * r)
        row = (src >> shift) & _ROW
        if use_left:
            out |= np.uint64(left[row]) << shift
            reward += reward_left[row]
            over |= overflow_left[row]
        else:
            out |= np.uint64(right[row]) << shift
            reward += reward_right[row]
            over |= overflow_right[row]
    if action == 0 or action == 2:
        out = _transpose(out)
    return out, reward, over


@jit
def _spawn(board, u0, u1, four_probability):
    empty = ~(board | (board >> np.uint64(1)) | (board >> np.uint64(2)) | (board >> np.uint64(3))) & _LOW
    count = 0
    for k in range(16):
        if (empty >> np.uint64(4 * k)) & np.uint64(1):
            count += 1
    if count == 0:
        return board
    pick = min(int(u0 * count), count - 1)
    value = np.uint64(2) if u1 < four_probability else np.uint64(1)
    seen = 0
    for k in range(16):
        if (empty >> np.uint64(4 * k)) & np.uint64(1):
            if seen == pick:
                return board | (value << np.uint64(4 * k))
            seen += 1
    return board


@jit
def step_boards(boards, actions, done, u, left, right, reward_left, reward_right, overflow_left, overflow_right,
                four_probability, rewards, legal):
    """One move on every unfinished board, in place: boards, done; writes rewards and the new legal mask (N, 4).
    Returns whether a merge would have overflowed (the caller raises; nothing is written past that board)."""
    for i in range(boards.size):
        rewards[i] = 0
        if not done[i]:
            after, reward, over = _move(boards[i], actions[i], left, right, reward_left, reward_right,
                                        overflow_left, overflow_right)
            if over:
                return True
            if after != boards[i]:
                boards[i] = _spawn(after, u[i, 0], u[i, 1], four_probability)
                rewards[i] = reward
        any_legal = False
        for a in range(4):
            after, reward, over = _move(boards[i], a, left, right, reward_left, reward_right, overflow_left,
                                        overflow_right)
            legal[i, a] = after != boards[i]
            any_legal |= legal[i, a]
        done[i] |= not any_legal
    return False


@jit
def new_boards(boards, which, u, left, right, reward_left, reward_right, overflow_left, overflow_right,
               four_probability, legal):
    """Fresh games (two spawned tiles) on the boards where ``which``, with their legal masks."""
    for i in range(boards.size):
        if which[i]:
            b = _spawn(np.uint64(0), u[i, 0], u[i, 1], four_probability)
            boards[i] = _spawn(b, u[i, 2], u[i, 3], four_probability)
            for a in range(4):
                after, reward, over = _move(boards[i], a, left, right, reward_left, reward_right, overflow_left,
                                            overflow_right)
                legal[i, a] = after != boards[i]
