"""2048 and its DQN agent (issue 16): environment speed, training speed, and the evaluation table.

* Environment moves per second: ember's single board (``Game``: Python ints and row tables) against a plain-Python
  2048 written here the obvious way (lists of lists, a slide-and-merge loop per row), in interleaved rounds; and
  1,024 boards stepped together (``Games``), on the compiled path and on the NumPy definition, random legal moves,
  finished games restarted as they end.
* Training: moves and gradient steps per second of ``ember rl train`` (read from its log when ``--agent`` is given).
* Evaluation over ``--games`` games (default 1,000, the same seeds for everyone): the trained agent (``--agent``),
  random, greedy one-step and depth-2 expectimax: mean and median score, the highest-tile distribution, the rates
  of 1024 and 2048; ``benchmarks/results/rl.json``, with the learning curve and the tile distributions as PNGs.

  python benchmarks/bench_rl.py --agent runs/rl/dqn-mlp.safetensors [--games 1000] [--update-readme]
  python benchmarks/bench_rl.py --quick          (seconds: small counts, no agent needed)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import ember  # first: ember's runtime settings must precede NumPy's import  # noqa: F401, I001
import numpy as np

from ember import kernels
from ember.benchmarking import (
    Bars, Benchmark, Outcome, RunOptions, machine_info, machine_line, publish, results_path,
    refuse_dry_run_in_readme)
from ember.rl import baselines as B
from ember.rl.envs import game2048 as G

MARKER = "bench_rl"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_AGENT = REPO / "runs" / "rl" / "dqn-mlp.safetensors"


# -- a plain-Python 2048, the obvious way ---------------------------------------------------------------------
class PlainGame:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.grid = [[0] * 4 for _ in range(4)]
        self.spawn()
        self.spawn()

    def spawn(self):
        empty = [(r, c) for r in range(4) for c in range(4) if not self.grid[r][c]]
        if empty:
            r, c = self.rng.choice(empty)
            self.grid[r][c] = 4 if self.rng.random() < 0.1 else 2

    @staticmethod
    def slide(row):
        tiles = [v for v in row if v]
        out, reward, i = [], 0, 0
        while i < len(tiles):
            if i + 1 < len(tiles) and tiles[i] == tiles[i + 1]:
                out.append(2 * tiles[i])
                reward += 2 * tiles[i]
                i += 2
            else:
                out.append(tiles[i])
                i += 1
        return out + [0] * (4 - len(out)), reward

    def moved(self, action):
        g = self.grid
        lines = [list(r) for r in g] if action in (1, 3) else [[g[r][c] for r in range(4)] for c in range(4)]
        if action in (1, 2):  # right, down: slide the reversed line
            lines = [line[::-1] for line in lines]
        results = [self.slide(line) for line in lines]
        out = [line for line, _ in results]
        if action in (1, 2):
            out = [line[::-1] for line in out]
        grid = out if action in (1, 3) else [[out[c][r] for c in range(4)] for r in range(4)]
        return grid, sum(r for _, r in results)

    def step(self, action):
        grid, reward = self.moved(action)
        if grid == self.grid:
            return 0, not any(self.moved(a)[0] != self.grid for a in range(4))
        self.grid = grid
        self.spawn()
        return reward, not any(self.moved(a)[0] != self.grid for a in range(4))


def single_board_rounds(moves: int, rounds: int) -> dict:
    speeds = {"ember": [], "plain_python": []}
    for r in range(rounds):
        rng = np.random.default_rng(r)
        actions = rng.integers(0, 4, moves).tolist()
        game = G.Game(r)
        game.reset()
        start = time.perf_counter()
        for a in actions:
            if game.step(a)[1]:
                game.reset()
        speeds["ember"].append(moves / (time.perf_counter() - start))
        plain = PlainGame(r)
        start = time.perf_counter()
        for a in actions:
            if plain.step(a)[1]:
                plain = PlainGame(r + 1)
        speeds["plain_python"].append(moves / (time.perf_counter() - start))
    return {k: float(np.median(v)) for k, v in speeds.items()} | {
        "ember_over_plain_median": float(np.median(np.array(speeds["ember"]) / np.array(speeds["plain_python"])))}


def vector_rounds(boards: int, steps: int, rounds: int) -> dict:
    out = {}
    for backend in kernels.available():
        speeds = []
        with kernels.use(backend):
            for r in range(rounds):
                g = G.Games(boards, seed=r)
                g.reset()
                rng = np.random.default_rng(r)
                g.step(B.random_policy(rng)(g.boards, g.legal))  # warm-up (compilation)
                start = time.perf_counter()
                for _ in range(steps):
                    _, done, _ = g.step(np.where(g.legal, rng.random(g.legal.shape), -1.0).argmax(axis=1))
                    if done.any():
                        g.reset(done)
                speeds.append(boards * steps / (time.perf_counter() - start))
        out[backend] = float(np.median(speeds))
    return out


def evaluation(agent_path, games: int, seed: int) -> dict:
    table = {}
    if agent_path:
        from ember.rl.dqn import DQNAgent

        agent = DQNAgent.load(agent_path)
        start = time.perf_counter()
        table["dqn"] = B.play(lambda b, legal: agent.act(b, legal, 0.0, None), games, seed, envs=256)
        table["dqn"]["seconds"] = time.perf_counter() - start
        print(f"  dqn: mean {table['dqn']['mean_score']:.0f}", flush=True)
    for name, policy, envs in (("random", B.random_policy(np.random.default_rng(seed)), None),
                               ("greedy", B.greedy_policy, None), ("expectimax", B.expectimax_policy, 250)):
        start = time.perf_counter()
        table[name] = B.play(policy, games, seed, envs=envs)
        table[name]["seconds"] = time.perf_counter() - start
        print(f"  {name}: mean {table[name]['mean_score']:.0f}", flush=True)
    return table


def training_log(agent_path) -> dict | None:
    if not agent_path:
        return None
    log = Path(agent_path).with_suffix(".log.jsonl")
    if not log.is_file():
        return None
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    last = records[-1]
    return {"log": str(log), "moves": last["moves"], "updates": last["updates"], "seconds": last["seconds"],
            "moves_per_s": last["moves"] / last["seconds"], "updates_per_s": last["updates"] / last["seconds"],
            "curve": [[r["moves"], r["mean_score"], r["max_tile"], r["seconds"]] for r in records]}


def plots(result: dict, out: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: no plots (pip install 'ember[plot]')")
        return []
    written = []
    train = result.get("training")
    if train:
        curve = np.array(train["curve"], dtype=float)
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(curve[:, 3] / 60, curve[:, 1], label="mean score (last 200 games)")
        for name in ("greedy", "random"):
            ax.axhline(result["evaluation"][name]["mean_score"], ls="--", lw=1, label=f"{name} (evaluation)",
                       color="gray" if name == "random" else "black")
        ax.set_xlabel("training minutes")
        ax.set_ylabel("score")
        ax2 = ax.twinx()
        ax2.plot(curve[:, 3] / 60, np.log2(np.maximum(curve[:, 2], 1)), color="tab:red", lw=1, label="largest tile")
        ax2.set_ylabel("log2 largest tile (last 200 games)")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title("DQN on 2048: learning curve")
        path = out.with_name("rl_learning_curve.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    fig, ax = plt.subplots(figsize=(7, 4))
    agents = list(result["evaluation"])
    tiles = sorted({int(t) for a in agents for t in result["evaluation"][a]["max_tile_counts"]})
    width = 0.8 / len(agents)
    for i, name in enumerate(agents):
        counts = result["evaluation"][name]["max_tile_counts"]
        games = result["evaluation"][name]["games"]
        ax.bar(np.arange(len(tiles)) + i * width, [counts.get(str(t), 0) / games for t in tiles], width, label=name)
    ax.set_xticks(np.arange(len(tiles)) + 0.4 - width / 2, [str(t) for t in tiles])
    ax.set_xlabel("highest tile")
    ax.set_ylabel("fraction of games")
    ax.legend()
    ax.set_title(f"2048: highest tile over {result['games']} games")
    path = out.with_name("rl_tiles.png")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(str(path))
    return written


def render_idle(r: dict, path: str):
    meta = (f"Measured {r['date']} on {r['machine']}; `python benchmarks/bench_rl.py` (results in `{path}`; plots "
            "`benchmarks/results/rl_learning_curve.png`, `rl_tiles.png`).")
    env = r["environment"]
    lines = ["| environment | moves per second |", "|---|---:|",
             f"| one board, ember (`Game`) | {env['single']['ember']:,.0f} |",
             f"| one board, plain Python (lists, written for the benchmark) | {env['single']['plain_python']:,.0f} |"]
    for backend, speed in env["vector"].items():
        lines.append(f"| {env['boards']:,} boards together (`Games`, {backend} path) | {speed:,.0f} |")
    lines += ["", f"| agent ({r['games']} games) | mean score | median | 1024 or more | 2048 or more | highest tiles |",
              "|---|---:|---:|---:|---:|---|"]
    for name, e in r["evaluation"].items():
        tiles = ", ".join(f"{k}: {v}" for k, v in sorted(e["max_tile_counts"].items(), key=lambda kv: int(kv[0])))
        lines.append(f"| {name} | {e['mean_score']:,.0f} | {e['median_score']:,.0f} | {e['rate_1024']:.1%} | "
                     f"{e['rate_2048']:.1%} | {tiles} |")
    t = r.get("training")
    if t:
        agent = Path(r["agent"])
        shown_agent = agent.relative_to(REPO) if agent.is_absolute() and agent.is_relative_to(REPO) else agent
        lines.append(f"\nTraining (`{shown_agent}`): {t['moves']:,} moves and {t['updates']:,} gradient steps in "
                     f"{t['seconds'] / 60:.0f} minutes ({t['moves_per_s']:,.0f} moves/s, {t['updates_per_s']:.0f} "
                     "gradient steps/s).")
    return meta, "\n".join(lines)


def render_loaded(r: dict, path: str) -> str:
    return f"(a loaded run is on file in `{path}`)"


def headline(r: dict) -> str:
    e = r["evaluation"]
    best = "dqn" if "dqn" in e else "greedy"
    return (f"{r['environment']['vector'].get('numba', r['environment']['vector'].get('numpy')):,.0f} moves/s at "
            f"1,024 boards; {best} mean score {e[best]['mean_score']:,.0f} (greedy {e['greedy']['mean_score']:,.0f}, "
            f"expectimax {e['expectimax']['mean_score']:,.0f})")


def chart(r: dict) -> list[Bars]:
    e = r["evaluation"]
    return [Bars("2048: mean score over the evaluation games", "score (higher is better)",
                 {name: {"mean": x["mean_score"], "median": x["median_score"]} for name, x in e.items()},
                 note=r["machine"]),
            Bars("2048: environment speed", "moves per second",
                 {"one board": {"ember": r["environment"]["single"]["ember"],
                                "plain Python": r["environment"]["single"]["plain_python"]},
                  "1,024 boards": dict(r["environment"]["vector"])})]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default=None,
                        help="a trained agent (ember rl train 2048 --save); default runs/rl/dqn-mlp.safetensors "
                             "when it exists")
    parser.add_argument("--games", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args(argv)
    refuse_dry_run_in_readme(parser, args)
    if args.agent is None and not args.quick and DEFAULT_AGENT.is_file():
        args.agent = str(DEFAULT_AGENT)
    return args


def bench(args) -> Outcome:
    games = 20 if args.quick else args.games
    info = machine_info()
    print(f"machine: {machine_line(info)}", flush=True)
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine_line(info), "machine_info": info,
              "quick": args.quick, "games": games, "agent": args.agent}
    print("environment", flush=True)
    result["environment"] = {"single": single_board_rounds(5_000 if args.quick else 100_000, 2 if args.quick else 5),
                             "boards": 1024, "vector": vector_rounds(1024, 20 if args.quick else 300,
                                                                       1 if args.quick else 3)}
    print(json.dumps(result["environment"]), flush=True)
    result["training"] = training_log(args.agent)
    print(f"evaluation over {games} games", flush=True)
    result["evaluation"] = evaluation(args.agent, games, args.seed)
    out = Path(args.out) if args.out else results_path("rl", quick=args.quick)
    result["plots"] = plots(result, out) if not args.quick else []
    files = publish(MARKER, result, out, 0, render_idle, render_loaded, args.update_readme, chart)
    return Outcome(headline(result), tuple(files))


def run(options: RunOptions) -> Outcome:
    return bench(parse_args(options.argv("rl")))


def main(argv=None) -> int:
    bench(parse_args(argv))
    return 0


BENCHMARK = Benchmark(name="rl", title="2048: environment speed and the DQN agent against the baselines", run=run,
                      marker=MARKER, rivals=())


if __name__ == "__main__":
    sys.exit(main())
