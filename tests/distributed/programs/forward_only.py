"""Under mpirun: an ELM readout fitted with its Gram matrix summed over the ranks (solved on rank 0, and on every
rank), and an ensemble spread over the ranks; every rank writes what it fitted to <out>/rank<r>.npz."""

import sys

import numpy as np

import ember.distributed as dist
from ember.distributed.forward_only import SpreadEnsemble, fit_elm, score
from ember.elm.features import RandomProjection
from ember.elm.learners import ELMClassifier, Ensemble

out = sys.argv[1]
world = dist.init(timeout=60)
rng = np.random.default_rng(0)
X = rng.standard_normal((1100, 1, 6, 6)).astype(np.float32)
y = (X.reshape(1100, -1)[:, :3].sum(axis=1) > 0).astype(np.int64) + 2 * (X[:, 0, 0, 0] > 1)


def elm(seed, lam="gcv", views=0):
    return ELMClassifier(RandomProjection(48, "relu", seed), lam=lam, chunk=128, shift_views=views)


on_root = fit_elm(elm(1), X, y, world)  # GCV, solved on rank 0
everywhere = fit_elm(elm(2, lam=0.5, views=4), X, y, world, solve_on=None)
spread = SpreadEnsemble(Ensemble([elm(10 + m) for m in range(3)]), world).fit(X, y)
np.savez(f"{out}/rank{world.rank}.npz", root_W=on_root.readout.W, root_bias=on_root.readout.bias,
         root_lam=on_root.readout.lam, every_W=everywhere.readout.W, every_bias=everywhere.readout.bias,
         spread_scores=spread.decision_function(X[:50]), root_accuracy=score(on_root, X, y, world))
