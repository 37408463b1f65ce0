"""``ember rl train 2048 | eval CKPT | play CKPT``: a DQN agent for the game 2048 (``ember/rl/``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .common import UsageError, UserError, fraction, non_negative_int, positive_float, positive_int, say


def add_parser(sub) -> None:
    p = sub.add_parser("rl", help="reinforcement learning: a DQN agent for 2048",
                       description="Train, evaluate and watch a DQN agent for the game 2048.")
    rl = p.add_subparsers(dest="rl_command", metavar="COMMAND", required=True)

    t = rl.add_parser("train", help="train a DQN agent", description="Train a DQN agent (ember/rl/dqn.py).")
    t.add_argument("game", choices=("2048",))
    t.add_argument("--q-net", choices=("mlp", "kan"), default="mlp")
    t.add_argument("--head", choices=("afterstate", "actions"), default="afterstate",
                   help="Q(s,a) = r + V(afterstate) (default) or four outputs from the state")
    t.add_argument("--steps", type=positive_int, default=1_000_000, help="moves in all, over every board")
    t.add_argument("--envs", type=positive_int, default=64, help="games played at once")
    t.add_argument("--hidden", default="256,256", help="hidden widths of the Q-network (default 256,256)")
    t.add_argument("--lr", type=positive_float, default=3e-4)
    t.add_argument("--batch-size", type=positive_int, default=256)
    t.add_argument("--n-step", type=positive_int, default=3, help="n-step returns (default 3)")
    t.add_argument("--gamma", type=fraction, default=0.99)
    t.add_argument("--eps-fraction", type=fraction, default=0.2,
                   help="fraction of --steps over which epsilon falls from 1 to 0.01 (default 0.2)")
    t.add_argument("--time-limit", type=positive_int, default=None, metavar="SECONDS", help="stop after this long")
    t.add_argument("--seed", type=non_negative_int, default=0)
    t.add_argument("--save", metavar="PATH", default=None, help="the agent (.safetensors); the log goes beside it")
    t.add_argument("--log", metavar="PATH", default=None, help="JSON lines of progress (default: beside --save)")
    t.set_defaults(run=run_train)

    e = rl.add_parser("eval", help="evaluate an agent (and the baselines)")
    e.add_argument("ckpt", metavar="CKPT", nargs="?", help="an agent saved by ember rl train (omit with --baselines)")
    e.add_argument("--games", type=positive_int, default=1000)
    e.add_argument("--baselines", action="store_true", help="also random, greedy and depth-2 expectimax")
    e.add_argument("--seed", type=non_negative_int, default=12345)
    e.add_argument("--json", action="store_true", help="print the results as one JSON object")
    e.set_defaults(run=run_eval)

    w = rl.add_parser("play", help="watch an agent play one game in the terminal")
    w.add_argument("ckpt", metavar="CKPT")
    w.add_argument("--seed", type=non_negative_int, default=0)
    w.add_argument("--delay", type=float, default=0.05, help="seconds between moves")
    w.set_defaults(run=run_play)


def _load(path):
    from ..rl.dqn import DQNAgent

    if not Path(path).is_file():
        raise UserError(f"{path}: no such agent file (expected the --save file of ember rl train)")
    try:
        return DQNAgent.load(path)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def run_train(args) -> int:
    from tqdm import tqdm

    from ..io.atomic import check_destination
    from ..io.jsonl import dumps
    from ..rl.dqn import DQNConfig, train

    if args.save:
        check_destination(args.save)
    log_path = Path(args.log) if args.log else (Path(args.save).with_suffix(".log.jsonl") if args.save else None)
    try:
        hidden = tuple(int(h) for h in args.hidden.split(","))
        config = DQNConfig(q_net=args.q_net, head=args.head, steps=args.steps, envs=args.envs, seed=args.seed,
                           hidden=hidden, lr=args.lr, batch=args.batch_size, n_step=args.n_step, gamma=args.gamma,
                           eps_fraction=args.eps_fraction)
    except ValueError as exc:
        raise UsageError(f"--hidden/--lr/...: {exc}") from None
    bar = tqdm(total=config.steps, desc="rl train 2048", file=sys.stderr, dynamic_ncols=True, unit="move")
    log_file = open(log_path, "w") if log_path else None  # noqa: SIM115 - closed below

    def on_record(r):
        bar.n = min(r["moves"], config.steps)
        bar.set_postfix(episodes=r["episodes"], score=f"{r['mean_score']:.0f}", eps=f"{r['epsilon']:.3f}",
                        moves_s=f"{r['moves_per_s']:.0f}")
        bar.refresh()
        if log_file:
            log_file.write(dumps(r) + "\n")
            log_file.flush()

    try:
        agent, log = train(config, on_record=on_record, time_limit=args.time_limit)
    finally:
        bar.close()
        if log_file:
            log_file.close()
    last = log.records[-1] if log.records else {}
    if args.save:
        agent.save(args.save, extra={"records": log.records, "trained_moves": last.get("moves", 0)})
    say(dumps({"event": "summary", "moves": last.get("moves"), "episodes": last.get("episodes"),
               "mean_score_last_200": last.get("mean_score"), "seconds": last.get("seconds"), "save": args.save}))
    return 0


def _describe(name: str, r: dict) -> str:
    tiles = ", ".join(f"{k}: {v}" for k, v in sorted(r["max_tile_counts"].items(), key=lambda kv: int(kv[0])))
    return (f"{name:<11} mean {r['mean_score']:>8.0f}  median {r['median_score']:>8.0f}  1024+ {r['rate_1024']:6.1%}  "
            f"2048+ {r['rate_2048']:6.1%}  highest tile: {tiles}")


def run_eval(args) -> int:
    import numpy as np

    from ..rl import baselines as B

    if not args.ckpt and not args.baselines:
        raise UserError("give an agent file, or --baselines")
    results = {}
    if args.ckpt:
        agent = _load(args.ckpt)
        results["dqn"] = B.play(lambda boards, legal: agent.act(boards, legal, 0.0, None), args.games, args.seed,
                                envs=256)
    if args.baselines:
        results["random"] = B.play(B.random_policy(np.random.default_rng(args.seed)), args.games, args.seed)
        results["greedy"] = B.play(B.greedy_policy, args.games, args.seed)
        results["expectimax"] = B.play(B.expectimax_policy, args.games, args.seed, envs=250)
    if args.json:
        say(json.dumps(results))
    else:
        for name, r in results.items():
            say(_describe(name, r))
    return 0


def run_play(args) -> int:
    import numpy as np

    from ..rl.envs.game2048 import Game, can_move, max_tile
    from ..rl.play import board_text

    agent = _load(args.ckpt)
    game = Game(args.seed)
    game.reset()
    from ..rl.envs.game2048 import legal_moves

    while can_move(game.board):
        boards = np.array([game.board], dtype=np.uint64)
        legal = np.array([legal_moves(game.board)])
        action = int(agent.act(boards, legal, 0.0, None)[0])
        game.step(action)
        say(f"\x1b[H\x1b[2J{board_text(game.board)}\nscore {game.score}  moves {game.moves}")
        if args.delay > 0:
            time.sleep(args.delay)
    say(f"game over: score {game.score}, highest tile {max_tile(game.board)}, {game.moves} moves")
    return 0
