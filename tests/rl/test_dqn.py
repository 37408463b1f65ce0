"""DQN's parts on hand-made cases: Bellman targets, the replay ring, n-step returns, action masking, the frozen
target network, the afterstate head, files and the command."""

from __future__ import annotations

import numpy as np
import pytest

from ember.cli.main import main
from ember.rl.dqn import DQNAgent, DQNConfig, encode, masked_argmax, scale_reward
from ember.rl.envs import game2048 as G
from ember.rl.replay import NStep, ReplayBuffer


def constant_q_agent(online_q, target_q, double=True) -> DQNAgent:
    """An 'actions'-head agent whose networks output the same Q-values for every board: weights zero, last bias q."""
    agent = DQNAgent(DQNConfig(head="actions", hidden=(8,), double=double))
    for net, q in ((agent.online, online_q), (agent.target, target_q)):
        for p in net.parameters():
            p.data[...] = 0
        last = [p for name, p in net.named_parameters() if name.endswith("bias")][-1]
        last.data[...] = np.asarray(q, dtype=np.float32)
    return agent


def batch_of(returns, done, legal, discounts, n=None):
    k = len(returns)
    boards = np.array([G.board_from_tiles([[2, 0, 0, 0], [0] * 4, [0] * 4, [0, 0, 0, 4]])] * k, dtype=np.uint64)
    return {"boards": boards, "actions": np.zeros(k, dtype=np.int64), "returns": np.array(returns, np.float32),
            "next_boards": boards, "done": np.array(done), "next_legal": np.array(legal),
            "discounts": np.array(discounts, np.float32)}


def test_bellman_targets_bootstrap_from_the_best_legal_move_and_not_at_the_end():
    agent = constant_q_agent([1, 2, 3, 4], [1, 2, 3, 4], double=False)
    batch = batch_of([0.5, 0.5, 1.0], [False, False, True],
                     [[True, True, False, False], [False, False, True, True], [True, True, True, True]],
                     [0.9, 0.81, 0.0])
    # the next board's legal moves are what the mask says (the constant net ignores the board)
    np.testing.assert_allclose(agent.targets(batch), [0.5 + 0.9 * 2, 0.5 + 0.81 * 4, 1.0], rtol=1e-6)


def test_double_dqn_chooses_with_the_online_network_and_values_with_the_target():
    agent = constant_q_agent([4, 3, 2, 1], [10, 20, 30, 40], double=True)
    batch = batch_of([1.0], [False], [[True, True, True, False]], [0.5])
    np.testing.assert_allclose(agent.targets(batch), [1.0 + 0.5 * 10])  # online picks move 0, the target values it
    plain = constant_q_agent([4, 3, 2, 1], [10, 20, 30, 40], double=False)
    np.testing.assert_allclose(plain.targets(batch), [1.0 + 0.5 * 30])  # the target's own max over legal moves


def test_a_board_with_no_legal_move_does_not_bootstrap():
    agent = constant_q_agent([1, 2, 3, 4], [1, 2, 3, 4])
    batch = batch_of([2.0], [False], [[False, False, False, False]], [0.9])
    np.testing.assert_allclose(agent.targets(batch), [2.0])


def test_the_replay_ring_wraps_and_never_samples_an_unwritten_slot():
    buf = ReplayBuffer(5)
    add = lambda first, n: buf.add(np.arange(first, first + n, dtype=np.uint64), np.zeros(n, int),  # noqa: E731
                                   np.arange(first, first + n, dtype=np.float32), np.zeros(n, np.uint64),
                                   np.zeros(n, bool), np.ones((n, 4), bool), np.ones(n, np.float32))
    add(0, 3)
    rng = np.random.default_rng(0)
    assert len(buf) == 3 and set(buf.sample(500, rng)["index"].tolist()) == {0, 1, 2}
    add(3, 4)  # 3, 4 fill the ring; 5, 6 overwrite slots 0 and 1
    assert len(buf) == 5 and buf.pos == 2
    assert buf.boards.tolist() == [5, 6, 2, 3, 4]
    sample = buf.sample(2000, rng)
    assert set(sample["boards"].tolist()) == {2, 3, 4, 5, 6}
    np.testing.assert_array_equal(sample["returns"], sample["boards"].astype(np.float32))  # rows stay together
    with pytest.raises(ValueError, match="exceed the capacity 5"):
        add(0, 6)


def test_n_step_returns_and_the_flush_at_the_end_of_a_game():
    ns = NStep(n_envs=1, n=3, gamma=0.5)
    legal = np.ones((1, 4), bool)
    step = lambda b, r, done: ns.push(np.array([b], np.uint64), np.array([b % 4]), np.array([r], np.float32),  # noqa: E731
                                      np.array([b + 1], np.uint64), np.array([done]), legal)
    assert step(10, 1.0, False) == () and step(11, 2.0, False) == ()
    boards, actions, returns, nexts, dones, _, discounts = step(12, 4.0, False)
    assert boards.tolist() == [10] and nexts.tolist() == [13] and not dones[0]
    assert returns[0] == pytest.approx(1 + 0.5 * 2 + 0.25 * 4) and discounts[0] == pytest.approx(0.125)
    boards, actions, returns, nexts, dones, _, discounts = step(13, 8.0, True)  # the game ends: flush 11, 12, 13
    assert boards.tolist() == [11, 12, 13] and dones.all() and (discounts == 0).all() and nexts.tolist() == [14] * 3
    np.testing.assert_allclose(returns, [2 + 0.5 * 4 + 0.25 * 8, 4 + 0.5 * 8, 8])


@pytest.mark.parametrize("head", ["actions", "afterstate"])
def test_masking_never_selects_an_illegal_move(head):
    agent = DQNAgent(DQNConfig(head=head, hidden=(16,)))
    rng = np.random.default_rng(0)
    boards = np.array([G.board_from_cells(rng.integers(1, 9, 16) * (rng.random(16) < 0.6)) for _ in range(300)],
                      dtype=np.uint64)
    legal = (G.moves_all(boards)[0] != boards[None]).T
    keep = legal.any(axis=1)
    boards, legal = boards[keep], legal[keep]
    for eps in (0.0, 0.5, 1.0):
        actions = agent.act(boards, legal, eps, rng)
        assert legal[np.arange(len(boards)), actions].all()
    q = agent.q_values(boards)
    assert np.isneginf(q[~legal]).all() and np.isfinite(q[legal]).all()
    assert masked_argmax(np.array([[9.0, 1.0, 2.0, 3.0]]), np.array([[False, True, True, False]])).tolist() == [2]


def test_the_afterstate_head_is_the_reward_plus_the_value_of_the_board_the_move_leaves():
    agent = DQNAgent(DQNConfig(head="afterstate", hidden=(16,), reward="log"))
    b = np.array([G.board_from_tiles([[2, 2, 4, 0], [0] * 4, [0] * 4, [0, 0, 0, 8]])], dtype=np.uint64)
    q = agent.q_values(b)[0]
    from ember.tensor import Tensor

    for a in range(4):
        after, reward = G.move(int(b[0]), a)
        if after == int(b[0]):
            assert np.isneginf(q[a])
            continue
        v = agent.online(Tensor(encode(np.array([after], dtype=np.uint64)))).numpy()[0, 0]
        assert q[a] == pytest.approx(float(scale_reward(reward, "log")) + v, rel=1e-5)


def test_the_target_network_is_frozen_between_syncs():
    agent = DQNAgent(DQNConfig(hidden=(16,), target_sync=3, batch=8))
    rng = np.random.default_rng(0)
    frozen = {k: v.numpy().copy() for k, v in agent.target.state_dict().items()}
    games = G.Games(8, seed=0)
    games.reset()
    before = games.boards.copy()
    actions = agent.act(before, games.legal, 1.0, rng)
    rewards, done, legal = games.step(actions)
    batch = {"boards": before, "actions": actions, "returns": scale_reward(rewards, "log"),
             "next_boards": games.boards.copy(), "done": done, "next_legal": legal,
             "discounts": np.full(8, 0.99, np.float32)}
    for step in range(1, 7):
        agent.train_step(batch)
        target = {k: v.numpy() for k, v in agent.target.state_dict().items()}
        online = {k: v.numpy() for k, v in agent.online.state_dict().items()}
        if step % 3:
            assert all(np.array_equal(target[k], frozen[k]) for k in frozen)
            assert any(not np.array_equal(online[k], frozen[k]) for k in frozen)
        else:
            assert all(np.array_equal(target[k], online[k]) for k in frozen)
            frozen = {k: v.copy() for k, v in target.items()}


def test_an_agent_file_loads_back_to_the_same_q_values(tmp_path):
    agent = DQNAgent(DQNConfig(hidden=(32, 16), q_net="mlp"))
    path = agent.save(tmp_path / "a.safetensors", extra={"note": 1})
    again = DQNAgent.load(path)
    boards = G.Games(16, seed=3).reset()
    np.testing.assert_array_equal(agent.q_values(boards), again.q_values(boards))
    assert again.config == agent.config


def test_a_kan_q_network_trains_a_step():
    agent = DQNAgent(DQNConfig(q_net="kan", hidden=(8,), batch=4))
    games = G.Games(4, seed=1)
    games.reset()
    before = games.boards.copy()
    actions = agent.act(before, games.legal, 0.0, None)
    rewards, done, legal = games.step(actions)
    loss = agent.train_step({"boards": before, "actions": actions, "returns": scale_reward(rewards, "log"),
                             "next_boards": games.boards, "done": done, "next_legal": legal,
                             "discounts": np.full(4, 0.99, np.float32)})
    assert np.isfinite(loss)


def test_the_command_trains_evaluates_and_plays(tmp_path, capsys):
    path = tmp_path / "agent.safetensors"
    assert main(["rl", "train", "2048", "--steps", "3000", "--envs", "16", "--hidden", "32", "--save", str(path)]) == 0
    assert path.is_file() and (tmp_path / "agent.log.jsonl").is_file()
    assert main(["rl", "eval", str(path), "--games", "20"]) == 0
    out = capsys.readouterr().out
    assert "dqn" in out and "highest tile" in out
    assert main(["rl", "play", str(path), "--delay", "0"]) == 0
    assert "game over: score" in capsys.readouterr().out
    assert main(["rl", "eval", str(tmp_path / "missing.safetensors")]) == 1
    assert main(["rl", "eval"]) == 1
