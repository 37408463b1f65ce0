"""A board as text, for ``ember rl play`` and the Gymnasium env's ``ansi`` render mode."""

from __future__ import annotations

from .envs.game2048 import tiles_of


def board_text(board: int) -> str:
    tiles = tiles_of(board)
    width = max(5, len(str(int(tiles.max()))) + 1)
    line = "+" + ("-" * width + "+") * 4
    rows = [line]
    for r in range(4):
        rows.append("|" + "|".join(f"{int(v) if v else '.':>{width}}" for v in tiles[r]) + "|")
        rows.append(line)
    return "\n".join(rows)
