"""2048's rules on hand-written boards, the single and vectorised games against each other, seeding, and the
Gymnasium environment."""

from __future__ import annotations

import numpy as np
import pytest

from ember import kernels
from ember.rl.envs import game2048 as G

LEFT, RIGHT, UP, DOWN = G.LEFT, G.RIGHT, G.UP, G.DOWN


def board(rows) -> int:
    return G.board_from_tiles(rows)


def moved(rows, action) -> tuple[list, int]:
    after, reward = G.move(board(rows), action)
    return G.tiles_of(after).tolist(), reward


@pytest.mark.parametrize("row,want,reward", [
    ([2, 2, 2, 2], [4, 4, 0, 0], 8),  # two merges, each tile merges once
    ([4, 4, 8, 0], [8, 8, 0, 0], 8),  # the new 8 does not merge again with the old one
    ([2, 0, 0, 2], [4, 0, 0, 0], 4),  # slides across gaps, then merges
    ([2, 2, 4, 4], [4, 8, 0, 0], 12),
    ([8, 4, 2, 2], [8, 4, 4, 0], 4),  # no chain merge: 4 4 stays
    ([0, 0, 0, 2], [2, 0, 0, 0], 0),
    ([2, 4, 2, 4], [2, 4, 2, 4], 0),  # nothing to do: the move is illegal
    ([32768, 0, 2, 2], [32768, 4, 0, 0], 4),
])
def test_a_row_moves_left_by_the_rules(row, want, reward):
    rows = [row, [0] * 4, [0] * 4, [0] * 4]
    tiles, got_reward = moved(rows, LEFT)
    assert tiles[0] == want and got_reward == reward


def test_each_direction_moves_toward_its_side():
    rows = [[2, 0, 0, 2], [0, 4, 0, 4], [2, 0, 2, 0], [0, 0, 0, 8]]
    assert moved(rows, RIGHT)[0] == [[0, 0, 0, 4], [0, 0, 0, 8], [0, 0, 0, 4], [0, 0, 0, 8]]
    # column 3 is 2 4 . 8: nothing merges, the tiles only close the gap
    assert moved(rows, UP)[0] == [[4, 4, 2, 2], [0, 0, 0, 4], [0, 0, 0, 8], [0, 0, 0, 0]]
    assert moved(rows, DOWN)[0] == [[0, 0, 0, 0], [0, 0, 0, 2], [0, 0, 0, 4], [4, 4, 2, 8]]
    assert moved(rows, UP)[1] == 4  # the two 2s of column 0


def test_an_illegal_move_leaves_the_board_and_the_game_unchanged():
    full = [[2, 4, 2, 4], [4, 2, 4, 2], [2, 4, 2, 4], [4, 2, 4, 2]]  # no move changes it: game over
    b = board(full)
    assert G.legal_moves(b) == [False] * 4 and not G.can_move(b)
    game = G.Game(0)
    game.reset()
    game.board = board([[2, 0, 0, 0], [4, 0, 0, 0], [8, 0, 0, 0], [16, 0, 0, 0]])  # left and up change nothing
    before, rng_state = game.board, game.rng.bit_generator.state
    reward, done, legal = game.step(LEFT)
    assert (reward, done, legal) == (0, False, False)
    assert game.board == before and game.score == 0 and game.moves == 0
    assert game.rng.bit_generator.state == rng_state  # no tile spawned, no random number drawn


def test_spawn_puts_a_2_or_a_4_in_the_chosen_empty_cell():
    b = board([[2, 0, 4, 0], [0] * 4, [0] * 4, [0] * 4])  # 14 empty cells, the first two are cells 1 and 3
    assert G.tiles_of(G.spawn(b, 0.0, 0.5))[0].tolist() == [2, 2, 4, 0]
    assert G.tiles_of(G.spawn(b, 1.5 / 14, 0.05))[0].tolist() == [2, 0, 4, 4]  # the second empty, a 4
    assert G.spawn(board([[2, 4, 2, 4]] * 4), 0.3, 0.3) == board([[2, 4, 2, 4]] * 4)


def test_a_merge_past_the_largest_tile_raises_instead_of_wrapping():
    b = board([[32768, 32768, 0, 0], [0] * 4, [0] * 4, [0] * 4])
    with pytest.raises(OverflowError, match="65,536"):
        G.move(b, LEFT)
    with pytest.raises(OverflowError, match="65,536"):
        G.moves_all(np.array([b], dtype=np.uint64))


def random_boards(n, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cells = rng.integers(1, 12, size=(n, 16)) * (rng.random((n, 16)) < 0.7)
    return np.array([G.board_from_cells(c) for c in cells], dtype=np.uint64)


def test_the_vectorised_moves_and_spawns_equal_the_single_board_ones():
    boards = random_boards(3000)
    after, rewards = G.moves_all(boards)
    u = np.random.default_rng(1).random((len(boards), 2))
    spawned = G.spawn_all(boards, u)
    for i, b in enumerate(boards.tolist()):
        for a in range(4):
            assert G.move(b, a) == (int(after[a, i]), int(rewards[a, i]))
        assert G.spawn(b, *u[i]) == int(spawned[i])
        assert G.can_move(b) == any(G.legal_moves(b))


def test_the_transpose_is_the_grids_transpose():
    for b in random_boards(200, seed=2).tolist():
        assert np.array_equal(G.cells_of(G.transpose(b)), G.cells_of(b).T)


def play_random(games_factory, steps, seed):
    rng = np.random.default_rng(seed)
    g = games_factory()
    g.reset()
    trace = []
    for _ in range(steps):
        actions = rng.integers(0, 4, g.n)
        rewards, done, legal = g.step(actions)
        trace.append((g.boards.copy(), rewards.copy(), done.copy(), legal.copy(), g.scores.copy()))
        if done.any():
            g.reset(done)
    return trace


@pytest.mark.skipif("numba" not in kernels.available(), reason="numba is missing: pip install 'ember[fast]'")
def test_the_compiled_step_plays_the_same_games_as_the_numpy_definition():
    traces = {}
    for backend in ("numba", "numpy"):
        with kernels.use(backend):
            traces[backend] = play_random(lambda: G.Games(48, seed=7), 600, seed=3)
    for a, b in zip(traces["numba"], traces["numpy"]):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_a_vectorised_game_is_the_single_game_fed_the_same_random_numbers():
    """Board i of Games and a Game drawing the same uniforms play move for move the same game."""
    games = G.Games(1, seed=11)
    games.reset()
    single = G.Game()
    single.board = int(games.boards[0])
    rng = np.random.default_rng(5)
    for _ in range(300):
        action = int(rng.integers(4))
        state = games.rng.bit_generator.state
        rewards, done, legal = games.step(np.array([action]))
        single.rng = np.random.default_rng()
        single.rng.bit_generator.state = state  # the same two uniforms for the spawn
        reward, over, _ = single.step(action)
        assert (int(games.boards[0]), int(rewards[0]), bool(done[0])) == (single.board, reward, over)
        assert legal[0].tolist() == G.legal_moves(single.board)
        if over:
            break


def test_seeded_games_repeat_exactly():
    assert [t[0].tolist() for t in play_random(lambda: G.Games(8, seed=4), 200, 9)] == \
        [t[0].tolist() for t in play_random(lambda: G.Games(8, seed=4), 200, 9)]
    a, b = G.Game(21), G.Game(21)
    a.reset(), b.reset()
    for action in np.random.default_rng(0).integers(0, 4, 300).tolist():
        assert a.step(action) == b.step(action) and a.board == b.board


def test_bad_actions_are_refused():
    with pytest.raises(ValueError, match="action must be 0"):
        G.Game(0).step(4)
    g = G.Games(3, seed=0)
    g.reset()
    with pytest.raises(ValueError, match="need 3 actions in 0..3"):
        g.step(np.array([0, 1]))


def test_the_gymnasium_environment_passes_the_checker_and_is_registered():
    gymnasium = pytest.importorskip("gymnasium", reason="gymnasium is missing: pip install 'ember[rl]'")
    from gymnasium.utils.env_checker import check_env

    import ember.rl  # noqa: F401 - registers ember/2048-v0

    env = gymnasium.make("ember/2048-v0")
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs.shape == (4, 4) and obs.dtype == np.uint8 and (obs > 0).sum() == 2
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(obs, again)
    total, steps = 0.0, 0
    while True:
        mask = info["action_mask"]
        obs, reward, terminated, truncated, info = env.step(int(np.flatnonzero(mask)[0]))
        total += reward
        steps += 1
        if terminated:
            break
    assert info["score"] == total and not truncated and steps > 10
    assert not any(info["action_mask"])
