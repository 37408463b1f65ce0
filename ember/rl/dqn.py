"""DQN for 2048 (``ember rl train 2048``): replay, target network, double DQN, n-step returns, Huber loss,
epsilon-greedy over the legal moves only, gradient clipping; the Q-network an ember MLP or KAN.

Two heads (``DQNConfig.head``):

* ``"actions"``: the textbook Q-network, Q(s, ·) = net(one-hot(s)), four outputs.
* ``"afterstate"`` (the default): Q(s, a) = r(s, a) + V(after(s, a)), with one network V over the board a move
  leaves before the random tile appears. The move's reward and the afterstate are known exactly (the rules are
  deterministic until the spawn), so the network only has to learn what the board is worth: the classic way value
  learning succeeds at 2048 (Szubert & Jaśkowski 2014), and the same DQN machinery (replay, target network, double
  DQN targets, n-step returns) around it.

Every Q-value of an illegal move is -inf, in the action choice and inside the target's max, so neither picks a move
that does not change the board. Terminal transitions do not bootstrap. Rewards are the merged tiles' sum, scaled by
``reward`` ("log": log2(1 + r), "raw": r / 1024) before they enter returns and Q-values.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..nn import functional as F
from ..optim import Adam, clip_grad_norm_
from ..tensor import Tensor
from .envs.game2048 import Games, cells_all, moves_all
from .replay import NStep, ReplayBuffer

FORMAT = "ember-dqn-2048"


@dataclass
class DQNConfig:
    q_net: str = "mlp"  # "mlp" or "kan"
    hidden: tuple[int, ...] = (256, 256)
    head: str = "afterstate"  # "afterstate" or "actions" (see the module docstring)
    envs: int = 64
    steps: int = 1_000_000  # moves in all, over every environment
    buffer: int = 200_000
    batch: int = 256
    gamma: float = 0.99
    n_step: int = 3
    lr: float = 3e-4
    target_sync: int = 2_000  # gradient steps between copies of the online network (0: Polyak averaging with tau)
    tau: float = 0.005
    eps_start: float = 1.0
    eps_end: float = 0.01
    eps_fraction: float = 0.2  # of the steps, over which epsilon falls linearly
    learning_starts: int = 10_000  # transitions in the buffer before the first gradient step
    updates_per_step: int = 1  # gradient steps per vector step of the environments
    grad_clip: float = 10.0
    reward: str = "log"  # "log" or "raw"
    double: bool = True
    seed: int = 0

    def __post_init__(self):
        self.hidden = tuple(int(h) for h in self.hidden)
        checks = {"q_net": ("mlp", "kan"), "head": ("afterstate", "actions"), "reward": ("log", "raw")}
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"DQNConfig: {name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("envs", "steps", "buffer", "batch", "n_step", "updates_per_step"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"DQNConfig: {name} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.gamma <= 1 or not 0 <= self.eps_end <= self.eps_start <= 1:
            raise ValueError(f"DQNConfig: need 0 < gamma <= 1 and 0 <= eps_end <= eps_start <= 1, got {self.gamma}, "
                             f"{self.eps_end}, {self.eps_start}")


def encode(boards: np.ndarray) -> np.ndarray:
    """(N, 256) float32 one-hot of every cell's exponent (16 cells x 16 exponents)."""
    cells = cells_all(boards).reshape(-1, 16).astype(np.int64)
    out = np.zeros((cells.shape[0], 16, 16), dtype=np.float32)
    np.put_along_axis(out, cells[:, :, None], 1.0, axis=2)
    return out.reshape(-1, 256)


def scale_reward(r, how: str):
    r = np.asarray(r, dtype=np.float64)
    return (np.log2(1.0 + r) if how == "log" else r / 1024.0).astype(np.float32)


def build_q_network(config: DQNConfig) -> nn.Module:
    outputs = 1 if config.head == "afterstate" else 4
    widths = (256, *config.hidden, outputs)
    if config.q_net == "kan":
        from ..models.kan import KAN, KANConfig

        return KAN(KANConfig(widths=widths, grid_range=(0.0, 1.0)))
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def masked_argmax(q: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """The best legal action of each row (q (N, 4)); a row with no legal move gets 0."""
    return np.where(legal, q, -np.inf).argmax(axis=1)


class DQNAgent:
    """The online and target Q-networks, the optimizer, and Q-values of boards."""

    def __init__(self, config: DQNConfig):
        self.config = config
        self.online = build_q_network(config)
        self.target = build_q_network(config)
        self.target.load_state_dict(self.online.state_dict())
        self.target.eval()
        self.optimizer = Adam(self.online.parameters(), lr=config.lr)
        self.updates = 0

    # -- Q-values ----------------------------------------------------------------------------------------------
    def q_values(self, boards: np.ndarray, net: nn.Module | None = None) -> np.ndarray:
        """(N, 4) Q-values of boards (illegal moves: -inf), without recording a graph."""
        net = net or self.online
        with no_grad():
            if self.config.head == "actions":
                q = net(Tensor(encode(boards))).numpy().astype(np.float64)
                legal = (moves_all(boards)[0] != boards[None]).T
                return np.where(legal, q, -np.inf)
            after, rewards = moves_all(boards)  # (4, N)
            values = net(Tensor(encode(after.reshape(-1)))).numpy().reshape(4, -1).astype(np.float64)
            q = scale_reward(rewards, self.config.reward) + values
            return np.where(after != boards[None], q, -np.inf).T

    def q_of(self, boards: np.ndarray, actions: np.ndarray, net: nn.Module) -> np.ndarray:
        """Q(s, a) of one action per board (the target's value of the chosen move: one afterstate, not four)."""
        idx = np.arange(len(boards))
        with no_grad():
            if self.config.head == "actions":
                return net(Tensor(encode(boards))).numpy().astype(np.float64)[idx, actions]
            after, rewards = moves_all(boards)
            values = net(Tensor(encode(after[actions, idx]))).numpy().reshape(-1).astype(np.float64)
            return scale_reward(rewards[actions, idx], self.config.reward) + values

    def act(self, boards: np.ndarray, legal: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        """Epsilon-greedy over the legal moves only."""
        greedy = masked_argmax(self.q_values(boards), legal)
        if epsilon <= 0:
            return greedy
        explore = rng.random(len(boards)) < epsilon
        if explore.any():
            keys = np.where(legal[explore], rng.random((int(explore.sum()), 4)), -1.0)
            greedy[explore] = keys.argmax(axis=1)
        return greedy

    # -- learning ----------------------------------------------------------------------------------------------
    def targets(self, batch: dict) -> np.ndarray:
        """n-step (double) DQN targets R + γ^k · Q_target(s', argmax_legal Q_online(s', ·)); the end: R alone."""
        nxt, legal = batch["next_boards"], batch["next_legal"]
        chooser = self.online if self.config.double else self.target
        best = masked_argmax(self.q_values(nxt, chooser), legal)
        q_next = self.q_of(nxt, best, self.target)
        bootstrap = ~batch["done"] & legal.any(axis=1)
        q_next = np.where(bootstrap, q_next, 0.0)
        return batch["returns"] + batch["discounts"] * q_next

    def train_step(self, batch: dict) -> float:
        """One gradient step on a sampled batch; returns the loss."""
        y = self.targets(batch).astype(np.float32)
        boards, actions = batch["boards"], batch["actions"]
        self.online.train()
        if self.config.head == "actions":
            q = self.online(Tensor(encode(boards)))
            pred = q[np.arange(len(boards)), actions]
            target = y
        else:
            after, rewards = moves_all(boards)
            idx = np.arange(len(boards))
            pred = self.online(Tensor(encode(after[actions, idx]))).reshape(-1)
            target = y - scale_reward(rewards[actions, idx], self.config.reward)
        loss = F.huber_loss(pred, Tensor(target.astype(np.float32)))
        self.optimizer.zero_grad()
        loss.backward()
        if self.config.grad_clip:
            clip_grad_norm_(self.online.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.updates += 1
        self.sync_target()
        return float(loss.item())

    def sync_target(self) -> None:
        c = self.config
        if c.target_sync:
            if self.updates % c.target_sync == 0:
                self.target.load_state_dict(self.online.state_dict())
            return
        with no_grad():  # Polyak averaging
            for t, o in zip(self.target.parameters(), self.online.parameters()):
                t.data *= 1.0 - c.tau
                t.data += c.tau * o.data

    # -- files --------------------------------------------------------------------------------------------------
    def save(self, path: str | Path, extra: dict | None = None) -> Path:
        from safetensors.numpy import save_file

        from ..io.atomic import atomic_path

        tensors = {k: np.require(v.numpy(), requirements="C") for k, v in self.online.state_dict().items()}
        config = asdict(self.config)
        metadata = {"format": FORMAT, "config": json.dumps(config), "extra": json.dumps(extra or {})}
        path = Path(path)
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: str | Path) -> DQNAgent:
        from ..io.safetensors_io import read_safetensors

        arrays, metadata = read_safetensors(path)
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path}: not a 2048 DQN agent (format {metadata.get('format')!r}, expected {FORMAT!r})")
        agent = cls(DQNConfig(**json.loads(metadata["config"])))
        agent.online.load_state_dict(arrays)
        agent.target.load_state_dict(arrays)
        return agent


def epsilon_at(config: DQNConfig, moves: int) -> float:
    span = max(1, int(config.eps_fraction * config.steps))
    frac = min(1.0, moves / span)
    return config.eps_start + frac * (config.eps_end - config.eps_start)


@dataclass
class TrainLog:
    records: list[dict] = field(default_factory=list)
    scores: list[int] = field(default_factory=list)
    max_tiles: list[int] = field(default_factory=list)


def train(config: DQNConfig, on_record=None, record_every: int = 20_000, time_limit: float | None = None):
    """Train an agent for ``config.steps`` moves (or until ``time_limit`` seconds): (agent, log)."""
    rng = np.random.default_rng(config.seed)
    from .. import backend

    backend.manual_seed(config.seed)
    agent = DQNAgent(config)
    games = Games(config.envs, seed=config.seed)
    games.reset()
    buffer = ReplayBuffer(config.buffer)
    nstep = NStep(config.envs, config.n_step, config.gamma)
    log = TrainLog()
    moves, next_record, start, losses = 0, record_every, time.perf_counter(), []
    while moves < config.steps:
        eps = epsilon_at(config, moves)
        before = games.boards.copy()
        actions = agent.act(before, games.legal, eps, rng)
        rewards, done, legal = games.step(actions)
        moves += config.envs
        out = nstep.push(before, actions, scale_reward(rewards, config.reward), games.boards, done, legal)
        if out:
            buffer.add(*out)
        if done.any():
            log.scores += games.scores[done].tolist()
            log.max_tiles += [int(1 << int(cells_all(games.boards[done]).reshape(-1, 16)[i].max()))
                              for i in range(int(done.sum()))]
            games.reset(done)
        if len(buffer) >= config.learning_starts:
            for _ in range(config.updates_per_step):
                losses.append(agent.train_step(buffer.sample(config.batch, rng)))
        elapsed = time.perf_counter() - start
        if moves >= next_record or moves >= config.steps or (time_limit and elapsed > time_limit):
            recent = log.scores[-200:]
            record = {"moves": moves, "episodes": len(log.scores), "epsilon": round(eps, 4),
                      "mean_score": float(np.mean(recent)) if recent else math.nan,
                      "max_tile": int(max(log.max_tiles[-200:])) if log.max_tiles else 0,
                      "loss": float(np.mean(losses[-500:])) if losses else math.nan,
                      "moves_per_s": moves / elapsed, "updates": agent.updates, "seconds": elapsed}
            log.records.append(record)
            if on_record:
                on_record(record)
            next_record += record_every
            if time_limit and elapsed > time_limit:
                break
    return agent, log
