"""``init()`` and the collectives in one process (no launcher: a world of one, no MPI), and their argument errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import ember
import ember.distributed as dist
from ember.distributed import comm


def test_without_a_launcher_the_world_is_this_process_alone(fresh_world):
    world = dist.init()
    assert (world.rank, world.size, world.local_rank, world.local_size) == (0, 1, 0, 1)
    assert world.is_main and dist.is_initialized()
    assert dist.init() is world and dist.get_world() is world
    assert world.timeout == comm.DEFAULT_TIMEOUT_S


def test_collectives_of_a_world_of_one_return_their_input(fresh_world):
    dist.init()
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert dist.all_reduce(a) is a
    np.testing.assert_array_equal(a, np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(dist.all_reduce(np.array([1.5, 2.5]), "mean"), [1.5, 2.5])
    np.testing.assert_array_equal(dist.broadcast(np.array([4, 5])), [4, 5])
    gathered = dist.all_gather(np.array([[1, 2]]))
    assert gathered.shape == (1, 1, 2) and gathered.tolist() == [[[1, 2]]]
    world = dist.get_world()
    assert world.all_gather_object({"a": 1}) == [{"a": 1}] and world.broadcast_object("x") == "x"
    dist.barrier()
    t = ember.tensor([1.0, 2.0])
    version = t._version
    assert dist.all_reduce(t, "mean") is t
    assert t.tolist() == [1.0, 2.0]
    assert t._version == version + 1  # an in-place write, as far as autograd's saved-tensor checks go


def test_init_refuses_a_lone_process_where_a_launcher_is_required(fresh_world):
    with pytest.raises(dist.DistributedError, match=r"not started by an MPI launcher.*mpirun -np 2"):
        dist.init(require_launcher=True)
    assert not dist.is_initialized()


def test_using_the_world_before_init_names_the_fix(fresh_world):
    with pytest.raises(dist.DistributedError, match=r"call ember\.distributed\.init\(\) first"):
        dist.all_reduce(np.ones(2))


@pytest.mark.parametrize("array, op, error, match", [
    (np.ones(2), "prod", ValueError, "op must be one of sum, mean, max, min, got 'prod'"),
    (np.ones(2, dtype=np.int64), "mean", TypeError, "op='mean' needs a floating-point array, got int64"),
    (np.ones(2, dtype=bool), "sum", TypeError, "expected a numeric array, got dtype bool"),
    ([1.0, 2.0], "sum", TypeError, "expected an array or a Tensor, got list"),
])
def test_all_reduce_argument_errors(fresh_world, array, op, error, match):
    dist.init()
    with pytest.raises(error, match=match):
        dist.all_reduce(array, op)


def test_read_only_arrays_and_bad_roots_are_refused(fresh_world):
    dist.init()
    frozen = np.ones(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only; the collective writes its result in place"):
        dist.all_reduce(frozen)
    with pytest.raises(ValueError, match=r"broadcast: root must be a rank in \[0, 1\), got 1"):
        dist.broadcast(np.ones(3), root=1)


def test_timeout_from_the_environment_and_its_errors(fresh_world, monkeypatch):
    monkeypatch.setenv(comm.TIMEOUT_ENV, "12.5")
    assert dist.init().timeout == 12.5
    assert dist.init(timeout=4).timeout == 4.0
    monkeypatch.setenv(comm.TIMEOUT_ENV, "soon")
    with pytest.raises(dist.DistributedError, match="EMBER_DIST_TIMEOUT='soon': expected a number of seconds"):
        comm.default_timeout()
    monkeypatch.setenv(comm.TIMEOUT_ENV, "0")
    with pytest.raises(dist.DistributedError, match="expected a positive number of seconds"):
        comm.default_timeout()
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, got -1"):
        dist.init(timeout=-1)


def test_launchers_are_recognised_by_their_environment():
    assert comm.launched_by_mpi({"PMI_RANK": "1", "PMI_SIZE": "4"})
    assert comm.launched_by_mpi({"OMPI_COMM_WORLD_RANK": "0"})
    assert comm.launched_by_mpi({"PMIX_RANK": "0"})
    assert not comm.launched_by_mpi({"HOME": "/root"})
    assert comm.launcher_size({"PMI_SIZE": "4"}) == 4
    assert comm.launcher_size({"OMPI_COMM_WORLD_SIZE": "8"}) == 8
    assert comm.launcher_size({"PMIX_RANK": "0"}) is None


def test_an_mpirun_of_another_mpi_is_refused():
    """Each process then sees a world of one: every rank would train alone and write the same files."""
    with pytest.raises(dist.DistributedError, match=r"started 4 processes but MPI sees a world of 1.*Open MPI 5"):
        comm.check_world_size(4, 1, "Open MPI 5.0.3")
    comm.check_world_size(4, 4, "MPICH")  # agreeing worlds pass
    comm.check_world_size(None, 1, "MPICH")  # a launcher that does not say


def test_a_missing_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails as if not installed
    with pytest.raises(dist.DistributedError, match=r"needs mpi4py.*pip install 'ember\[mpi\]'"):
        comm.import_mpi()


def test_rank_zero_first_runs_the_block_in_a_world_of_one(fresh_world):
    world = dist.init()
    ran = []
    with world.rank_zero_first():
        ran.append(world.rank)
    assert ran == [0]
