"""The processes of a job and the collectives between them, on MPI (mpi4py), with failures that end the job.

``init()`` reads where this process stands from the MPI environment (rank, world size, local rank) and returns
the ``World``; the collectives (``all_reduce``, ``broadcast``, ``all_gather``, ``reduce``, ``barrier``) work on
NumPy arrays in place, any other array (CuPy) through a host copy. A process not started by an MPI launcher
(``mpirun``, ``mpiexec``, ``srun``) is a world of one, with no MPI at all: every collective returns its input.

Failures end the job instead of hanging it (an MPI collective waits forever for a rank that is gone):

* every collective is non-blocking underneath and waited on with a deadline (``timeout``, default
  ``EMBER_DIST_TIMEOUT`` or 300 s); past it, the rank says which collective did not complete and ends the job;
* a rank that fails (an uncaught exception, or ``World.fail`` from a command's error handler) sends a notice to
  every other rank on a communicator of its own; a rank waiting in a collective reads it, prints which rank failed
  and why, and acknowledges; once all have (or the timeout passed) the failed rank calls ``MPI_Abort``, so the
  message appears on every rank and ``mpirun`` returns a non-zero status;
* errors that every rank raises together (models that differ, mismatched versions) are marked
  ``raised_on_every_rank`` and end each process normally, with no abort.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import socket
import sys
import time

import numpy as np

from .. import backend
from ..tensor import Tensor
from .shared_memory import IDLE, map_node_buffer

DEFAULT_TIMEOUT_S = 300.0
TIMEOUT_ENV = "EMBER_DIST_TIMEOUT"
SHARED_MEMORY_ENV = "EMBER_DIST_SHARED_MEMORY"  # "0": all_reduce_buffer gives ordinary memory (MPI moves it)
MPI_EXTRA = "pip install 'ember[mpi]'"
# what launchers set: MPICH/Intel MPI/srun --mpi=pmi2 (PMI_*), PMIx (srun --mpi=pmix, Open MPI 5), Open MPI, MVAPICH
LAUNCHER_RANK_VARS = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
OPS = ("sum", "mean", "max", "min")
MAX_COUNT = 1 << 30  # elements per MPI call (MPI counts are C ints); longer buffers go in pieces
SPIN_S = 0.02  # a wait polls without pause this long, then naps between polls (a long wait leaves the core free)
NAP_S = 0.001
POLLS_PER_CHECK = 64  # polls between looks at the clock and at the notices of failed ranks
NOTICE_BYTES = 8192
FAILED, ACK = 1, 2  # tags of the notice channel


class DistributedError(RuntimeError):
    """A launch or misuse problem: no MPI launcher where one is needed, mpi4py missing, ranks that disagree."""

    raised_on_every_rank = False  # True: every rank raises it together, so no rank needs to end the others


class RanksDisagree(DistributedError):
    """The ranks do not run the same thing (a model of other shapes, another ember): found by a collective check,
    so every rank raises it with the same message."""

    raised_on_every_rank = True


# -- the launcher's environment ------------------------------------------------------------------------------------
def launched_by_mpi(environ=None) -> bool:
    """Whether an MPI launcher started this process (it sets a rank variable in the environment)."""
    environ = os.environ if environ is None else environ
    return any(name in environ for name in LAUNCHER_RANK_VARS)


def launcher_size(environ=None) -> int | None:
    """The number of processes the launcher says it started, or None when it does not say."""
    environ = os.environ if environ is None else environ
    for name in LAUNCHER_SIZE_VARS:
        value = environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def check_world_size(expected: int | None, actual: int, library: str) -> None:
    """Refuse a world smaller than what the launcher started: each process then runs alone as rank 0 of 1, which
    is what an ``mpirun`` of another MPI than mpi4py's library does (every rank would train the same model alone
    and write the same files)."""
    if expected is not None and expected > 1 and actual != expected:
        raise DistributedError(
            f"the launcher started {expected} processes but MPI sees a world of {actual}: the mpirun that "
            f"started them belongs to another MPI installation than the one mpi4py uses ({library}). Launch with "
            f"the mpirun of mpi4py's MPI (for the PyPI wheels: the one in the virtual environment's bin/)")


def import_mpi():
    """mpi4py's MPI module, or an error that names the extra to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise DistributedError(f"ember.distributed needs mpi4py and an MPI library ({MPI_EXTRA}, which installs "
                               f"mpi4py and MPICH): {exc}") from None
    return MPI


def default_timeout() -> float:
    text = os.environ.get(TIMEOUT_ENV, "")
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise DistributedError(f"{TIMEOUT_ENV}={text!r}: expected a number of seconds") from None
    if not value > 0:
        raise DistributedError(f"{TIMEOUT_ENV}={text!r}: expected a positive number of seconds")
    return value


# -- arrays ----------------------------------------------------------------------------------------------------------
def _check_op(op: str, array, what: str) -> None:
    if op not in OPS:
        raise ValueError(f"{what}: op must be one of {', '.join(OPS)}, got {op!r}")
    if op == "mean" and array.dtype.kind not in "fc":
        raise TypeError(f"{what}: op='mean' needs a floating-point array, got {array.dtype} (reduce with 'sum' "
                        "and divide)")


def _check_dtype(array, what: str) -> None:
    if array.dtype.kind not in "iufc":
        raise TypeError(f"{what}: expected a numeric array, got dtype {array.dtype}")


class _Label:
    """What a collective is, for messages (a rank that timed out, one that failed while another waited): formatted
    only when one is printed, since a dtype's name alone costs microseconds at every all-reduce of a step."""

    __slots__ = ("kind", "host", "count")

    def __init__(self, kind, host=None, count: int = 1):
        self.kind, self.host, self.count = kind, host, count

    def __str__(self) -> str:
        text = str(self.kind) if self.host is None else f"{self.kind} ({self.host.size:,} {self.host.dtype})"
        return text if self.count == 1 else f"{self.count} collectives ({text}, ...)"


class _InPlace:
    """A buffer reduced where it lies (one in shared memory): nothing to write back; a Tensor around it is told
    that its memory changed."""

    __slots__ = ("given",)

    def __init__(self, given):
        self.given = given

    def finish(self):
        if isinstance(self.given, Tensor):
            self.given._bump_version()
        return self.given


class _Staged:
    """The host buffer a collective works on: ``array`` itself when it is a writeable C-contiguous NumPy array,
    else a contiguous host copy that ``finish()`` writes back (a CuPy array, a strided view)."""

    def __init__(self, array, what: str, write: bool = True):
        self.tensor = array if isinstance(array, Tensor) else None
        self.array = array.data if self.tensor is not None else array
        if not hasattr(self.array, "dtype") or not hasattr(self.array, "shape"):
            raise TypeError(f"{what}: expected an array or a Tensor, got {type(array).__name__}")
        _check_dtype(self.array, what)
        self.direct = isinstance(self.array, np.ndarray) and type(self.array) is np.ndarray and \
            self.array.flags.c_contiguous and (self.array.flags.writeable or not write)
        if write and isinstance(self.array, np.ndarray) and not self.array.flags.writeable:
            raise ValueError(f"{what}: the array is read-only; the collective writes its result in place")
        self.host = self.array if self.direct else np.ascontiguousarray(backend.to_device(self.array, backend.CPU))
        self.flat = self.host.reshape(-1)

    def finish(self):
        """Write the result back where it came from; returns what the caller passed."""
        if not self.direct:
            xp = backend.array_module(self.array)
            self.array[...] = xp.asarray(backend.to_device(self.host, backend.device_of(self.array)))
        if self.tensor is not None:
            self.tensor._bump_version()
            return self.tensor
        return self.array


def _pieces(flat: np.ndarray):
    """Slices of a flat buffer short enough for one MPI call."""
    for start in range(0, max(flat.size, 1), MAX_COUNT):
        yield flat[start:start + MAX_COUNT]


# -- the world -------------------------------------------------------------------------------------------------------
class World:
    """This process's place among the job's processes, and the collectives over them.

    The base class is the world of one process (no MPI): collectives check their arguments as a real world does
    and return their input. ``MPIWorld`` runs them over MPI. Every rank must call the same collectives in the same
    order with arrays of the same shape and dtype.
    """

    def __init__(self, rank: int = 0, size: int = 1, local_rank: int = 0, local_size: int = 1,
                 timeout: float = DEFAULT_TIMEOUT_S):
        self.rank, self.size, self.local_rank, self.local_size = rank, size, local_rank, local_size
        self.timeout = float(timeout)
        self._shared: dict = {}  # id of a buffer from all_reduce_buffer -> its SharedAllReduce
        self._moving: list = []  # shared-memory all-reduces started and not yet finished here

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that prints, logs and writes checkpoints."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size}, local_rank={self.local_rank})"

    # -- collectives on arrays ---------------------------------------------------------------------------------------
    def all_reduce(self, array, op: str = "sum", timeout: float | None = None):
        """Combine ``array`` over all ranks with ``op`` (sum, mean, max, min), in place; returns ``array``."""
        return self.wait(self.all_reduce_start(array, op), timeout)

    def all_reduce_start(self, array, op: str = "sum") -> Pending:
        """Start an all-reduce in place and return at once; ``wait(pending)`` finishes it (``array`` must not be
        touched in between). The data-parallel wrapper starts buckets this way while backward goes on."""
        shared = self._shared.get(id(array.data if isinstance(array, Tensor) else array)) if self._shared else None
        if shared is not None:  # a buffer from all_reduce_buffer, as it was handed out: reduced where it lies
            _check_op(op, shared.array, "all_reduce")
            shared.start(op)
            self._moving.append(shared)
            return Pending([], _InPlace(array), _Label("all_reduce", shared.array), shared=shared)
        staged = _Staged(array, "all_reduce")
        _check_op(op, staged.host, "all_reduce")
        what = _Label("all_reduce", staged.host)  # formatted only for a message
        requests = self._start_allreduce(staged.flat, op) if self.size > 1 else []
        divide = self.size if op == "mean" and self.size > 1 else None
        return Pending(requests, staged, what, divide)

    def all_reduce_buffer(self, size: int, dtype=np.float32) -> np.ndarray:
        """A flat array of ``size`` elements to all-reduce again and again (the data-parallel wrapper's gradient
        buckets). When every rank runs on one node, it lies in memory the ranks share and ``all_reduce`` of the
        whole array adds the ranks' arrays in place there, without MPI's copies (``shared_memory.py``; off with
        ``EMBER_DIST_SHARED_MEMORY=0``); else it is ordinary memory. Collective: every rank asks for the same size
        and dtype, in the same order (checked)."""
        size, dtype = int(size), np.dtype(dtype)
        if size < 0:
            raise ValueError(f"all_reduce_buffer: size must be >= 0, got {size}")
        return np.empty(size, dtype=dtype)

    def in_shared_memory(self, array) -> bool:
        """Whether ``array`` (or the Tensor around it) is a buffer from ``all_reduce_buffer`` that the ranks reduce
        through shared memory: the array object handed out, not a view or a copy of it."""
        return id(array.data if isinstance(array, Tensor) else array) in self._shared

    def reduce(self, array, op: str = "sum", root: int = 0, timeout: float | None = None):
        """Combine ``array`` over all ranks into rank ``root``'s array, in place (the others' arrays are left as
        they were: their buffers only send)."""
        staged = _Staged(array, "reduce")
        _check_op(op, staged.host, "reduce")
        self._check_root(root, "reduce")
        requests = self._start_reduce(staged.flat, op, root) if self.size > 1 else []
        divide = self.size if op == "mean" and self.size > 1 and self.rank == root else None
        return self.wait(Pending(requests, staged, f"reduce ({staged.host.size:,} {staged.host.dtype})", divide),
                         timeout)

    def broadcast(self, array, root: int = 0, timeout: float | None = None):
        """Overwrite ``array`` on every rank with rank ``root``'s, in place; returns ``array``."""
        staged = _Staged(array, "broadcast")
        self._check_root(root, "broadcast")
        requests = self._start_bcast(staged.flat, root) if self.size > 1 else []
        return self.wait(Pending(requests, staged, f"broadcast ({staged.host.size:,} {staged.host.dtype})"),
                         timeout)

    def all_gather(self, array, timeout: float | None = None) -> np.ndarray:
        """Every rank's ``array`` stacked along a new first axis (size, *shape), on every rank (a host array)."""
        staged = _Staged(array, "all_gather", write=False)
        out = np.empty((self.size, *staged.host.shape), dtype=staged.host.dtype)
        if self.size == 1:
            out[0] = staged.host
            return out
        pending = Pending(self._start_allgather(staged.flat, out.reshape(self.size, -1)), None,
                          f"all_gather ({staged.host.size:,} {staged.host.dtype})")
        self.wait(pending, timeout)
        return out

    def barrier(self, timeout: float | None = None) -> None:
        """Wait until every rank has reached this call."""
        if self.size > 1:
            self.wait(Pending(self._start_barrier(), None, "barrier"), timeout)

    # -- collectives on Python objects (small: metadata, signatures, a fitted readout) ------------------------------
    def all_gather_object(self, obj, timeout: float | None = None) -> list:
        """Every rank's ``obj`` (picklable), as a list indexed by rank."""
        if self.size == 1:
            return [obj]
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
        lengths = self.all_gather(np.array([data.size], dtype=np.int64), timeout)[:, 0]
        out = np.empty(int(lengths.sum()), dtype=np.uint8)
        pending = Pending(self._start_allgatherv(data, out, lengths), None, f"all_gather_object ({data.size} bytes)")
        self.wait(pending, timeout)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return [pickle.loads(out[bounds[r]:bounds[r + 1]].tobytes()) for r in range(self.size)]

    def broadcast_object(self, obj, root: int = 0, timeout: float | None = None):
        """Rank ``root``'s ``obj`` (picklable) on every rank."""
        if self.size == 1:
            return obj
        data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8) if self.rank == root else None
        length = self.broadcast(np.array([0 if data is None else data.size], dtype=np.int64), root, timeout)
        buffer = np.array(data) if data is not None else np.empty(int(length[0]), dtype=np.uint8)
        self.broadcast(buffer, root, timeout)
        return obj if self.rank == root else pickle.loads(buffer.tobytes())

    # -- coordination -----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def rank_zero_first(self):
        """Rank 0 runs the block before the others (a download, a cache to fill), the others once it is done.
        An error in rank 0's block reaches the others as a failure notice while they wait."""
        if self.rank != 0:
            self.barrier()
        yield
        if self.rank == 0:
            self.barrier()

    def fail(self, reason: str) -> None:
        """Announce that this rank failed (``reason``: one line), so that the others stop; a world of one has
        nobody to tell."""

    def wait(self, pending: Pending, timeout: float | None = None):
        """Finish a started collective (a world of one has nothing to wait for); returns its array."""
        return pending.finish()

    def wait_all(self, pendings: list[Pending], timeout: float | None = None) -> None:
        for pending in pendings:
            self.wait(pending, timeout)

    def progress(self, pendings: list[Pending]) -> None:
        """Let started collectives move on (MPI moves data only inside its calls)."""

    def _check_root(self, root: int, what: str) -> None:
        if not 0 <= root < self.size:
            raise ValueError(f"{what}: root must be a rank in [0, {self.size}), got {root}")

    # -- the transport of a world of several processes (MPIWorld; the tests' simulated worlds) ----------------------
    def _start_allreduce(self, flat: np.ndarray, op: str) -> list:
        raise NotImplementedError(f"{type(self).__name__} has no transport for {self.size} ranks")

    def _start_reduce(self, flat: np.ndarray, op: str, root: int) -> list:
        raise NotImplementedError(f"{type(self).__name__} has no transport for {self.size} ranks")

    def _start_bcast(self, flat: np.ndarray, root: int) -> list:
        raise NotImplementedError(f"{type(self).__name__} has no transport for {self.size} ranks")

    def _start_allgather(self, flat: np.ndarray, out: np.ndarray) -> list:
        raise NotImplementedError(f"{type(self).__name__} has no transport for {self.size} ranks")

    def _start_allgatherv(self, data: np.ndarray, out: np.ndarray, lengths: np.ndarray) -> list:
        raise NotImplementedError(f"{type(self).__name__} has no transport for {self.size} ranks")

    def _start_barrier(self) -> list:
        raise NotImplementedError(f"{type(self).__name__} has no transport for {self.size} ranks")


class Pending:
    """A started collective: its MPI requests and the staged buffer its result lands in."""

    def __init__(self, requests: list, staged, what, divide: int | None = None, shared=None):
        self.requests, self.staged, self.what, self.divide = requests, staged, what, divide
        self.shared = shared  # a SharedAllReduce in flight, polled instead of MPI requests

    def finish(self):
        if self.staged is None:
            return None
        if self.divide:
            self.staged.host /= self.divide
        return self.staged.finish()


class MPIWorld(World):
    """A world of several processes over MPI: collectives on a communicator of ember's own (a duplicate of
    COMM_WORLD, so a user's MPI traffic cannot interleave with it) and the failure notices on another."""

    def __init__(self, MPI, comm, timeout: float):
        self.MPI = MPI
        self.comm = comm.Dup()
        self.alarm = comm.Dup()
        local = comm.Split_type(MPI.COMM_TYPE_SHARED)
        super().__init__(comm.Get_rank(), comm.Get_size(), local.Get_rank(), local.Get_size(), timeout)
        local.Free()
        self._ops = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
        self._notice = bytearray(NOTICE_BYTES)
        self._listen()
        self._sends: list = []  # notices in flight (kept alive until MPI is done with their buffers)
        self.failed: str | None = None  # why this rank failed, once it has announced it
        self._acked: set[int] = set()
        self._windows: list = []  # shared-memory windows of all_reduce_buffer

    # -- MPI calls --------------------------------------------------------------------------------------------------
    def _start_allreduce(self, flat, op):
        return [self.comm.Iallreduce(self.MPI.IN_PLACE, piece, self._ops[op]) for piece in _pieces(flat)]

    def _start_reduce(self, flat, op, root):
        if self.rank == root:
            return [self.comm.Ireduce(self.MPI.IN_PLACE, piece, self._ops[op], root) for piece in _pieces(flat)]
        return [self.comm.Ireduce(piece, None, self._ops[op], root) for piece in _pieces(flat)]

    def _start_bcast(self, flat, root):
        return [self.comm.Ibcast(piece, root) for piece in _pieces(flat)]

    def _start_allgather(self, flat, out):
        if flat.size > MAX_COUNT:
            raise ValueError(f"all_gather: {flat.size:,} elements per rank, at most {MAX_COUNT:,}")
        return [self.comm.Iallgather(flat, out)]

    def _start_allgatherv(self, data, out, lengths):
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return [self.comm.Iallgatherv(data, [out, lengths.tolist(), offsets.tolist(), self.MPI.BYTE])]

    def _start_barrier(self):
        return [self.comm.Ibarrier()]

    # -- shared memory -----------------------------------------------------------------------------------------------
    def all_reduce_buffer(self, size: int, dtype=np.float32) -> np.ndarray:
        array = super().all_reduce_buffer(size, dtype)
        switched_off = os.environ.get(SHARED_MEMORY_ENV, "1") == "0"
        asked = self.all_gather_object((array.size, array.dtype.str, switched_off))
        if any(a != asked[0] for a in asked):
            r = next(r for r, a in enumerate(asked) if a != asked[0])
            if asked[r][:2] == asked[0][:2]:  # a rank that mapped shared memory alone would wait for the others
                raise RanksDisagree(f"all_reduce_buffer: {SHARED_MEMORY_ENV} differs between rank {r} and rank 0; "
                                    "launch every rank with the same environment")
            raise RanksDisagree(f"all_reduce_buffer: rank {r} asked for {asked[r][0]:,} elements of {asked[r][1]}, "
                                f"rank 0 for {asked[0][0]:,} of {asked[0][1]}")
        if self.local_size != self.size or not array.size or array.dtype.kind not in "iuf" or switched_off:
            return array  # several nodes (or switched off): MPI moves the data
        try:
            reducer, window = map_node_buffer(self.MPI, self.comm, array.size, array.dtype)
        except Exception as exc:  # an MPI error, or no room: the job ends with this message on every rank
            raise DistributedError(f"all_reduce_buffer: could not map {array.nbytes:,} bytes of memory shared by "
                                   f"this node's ranks ({type(exc).__name__}: {exc}); make room in /dev/shm, or set "
                                   f"{SHARED_MEMORY_ENV}=0 to let MPI move these buffers") from exc
        self._windows.append(window)  # freed with MPI at the end (a collective free could hang a failing job)
        self.barrier()  # every rank's flags are zeroed before any rank reads them
        self._shared[id(reducer.array)] = reducer  # the reducer keeps the array, so its id is never reused
        return reducer.array

    # -- waiting with a deadline ------------------------------------------------------------------------------------
    def wait(self, pending: Pending, timeout: float | None = None):
        self._wait_pendings([pending], pending.what, timeout)
        return pending.finish()

    def wait_all(self, pendings: list[Pending], timeout: float | None = None) -> None:
        self._wait_pendings(pendings, _Label(pendings[0].what, count=len(pendings)) if pendings else "", timeout)
        for pending in pendings:
            pending.finish()

    def progress(self, pendings: list[Pending]) -> None:
        requests = [r for p in pendings for r in p.requests]
        if requests:
            self.MPI.Request.Testall(requests)
        self._move_shared()

    def _move_shared(self) -> None:
        """Let every started shared-memory all-reduce move on, not only the ones waited for: the other ranks may
        be waiting for this rank's slice of one while this rank waits in another collective (MPI's own
        collectives move inside any MPI call in the same way). The loss's agreement thus finishes during the
        gradients' wait."""
        if self._moving:
            self._moving = [s for s in self._moving if not s.poll()]

    def _wait_pendings(self, pendings: list[Pending], what: str, timeout: float | None) -> None:
        requests = [r for p in pendings for r in p.requests]
        shared = [p.shared for p in pendings if p.shared is not None]
        if not shared and not self._moving:
            self._wait_requests(requests, what, timeout)
            return
        test = self.MPI.Request.Testall

        def finished() -> bool:
            self._move_shared()
            return all(s.stage == IDLE for s in shared) and (not requests or test(requests))

        self._wait_until(finished, what, timeout)

    def _wait_requests(self, requests: list, what: str, timeout: float | None) -> None:
        """Poll until ``requests`` complete; meanwhile read failure notices, and end the job past the deadline."""
        if requests:
            test = self.MPI.Request.Testall
            self._wait_until(lambda: test(requests), what, timeout)

    def _wait_until(self, finished, what: str, timeout: float | None) -> None:
        """Poll ``finished()`` until it is true; meanwhile read failure notices, and end the job past the deadline."""
        limit = self.timeout if timeout is None else float(timeout)
        start = time.monotonic()
        polls = 0
        while not finished():
            polls += 1
            if polls % POLLS_PER_CHECK:
                continue
            self._read_notices(while_in=what)
            waited = time.monotonic() - start
            if waited > limit:
                self._timed_out(what, limit)
            if waited > SPIN_S:
                time.sleep(NAP_S)

    def _timed_out(self, what: str, limit: float) -> None:
        reason = (f"{what} did not complete within {limit:g} s: another rank has not joined it (it hung, ended, or "
                  f"calls a different collective)")
        self._say(f"{reason}; ending the job (the limit: init(timeout=...) or {TIMEOUT_ENV})")
        self.fail(f"rank {self.rank} timed out: {reason}", quiet=True)
        self._end_failed_job(wait_s=min(self.timeout, 3.0))  # the waiting ranks answer at once

    # -- failure notices ----------------------------------------------------------------------------------------------
    def _listen(self) -> None:
        self._notice_request = self.alarm.Irecv([self._notice, self.MPI.BYTE], source=self.MPI.ANY_SOURCE,
                                                tag=self.MPI.ANY_TAG)

    def _next_notice(self) -> tuple[int, int, str] | None:
        """(tag, sender, text) of a notice that has arrived, or None; listens again for the next one."""
        status = self.MPI.Status()
        if not self._notice_request.Test(status):
            return None
        count = status.Get_count(self.MPI.BYTE)
        message = json.loads(bytes(self._notice[:count]).decode("utf-8"))
        self._listen()
        return status.Get_tag(), status.Get_source(), message.get("text", "")

    def _read_notices(self, while_in: str = "") -> None:
        """Handle what has arrived: an acknowledgement is counted; another rank's failure is reported here,
        acknowledged, and this rank waits to be ended with the job."""
        while (notice := self._next_notice()) is not None:
            tag, sender, text = notice
            if tag == ACK:
                self._acked.add(sender)
                continue
            self._send(sender, ACK, "")
            if self.failed is None:
                where = f" while waiting in {while_in}" if while_in else ""
                self._say(f"rank {sender} failed ({text}){where}; ending the job")
                self.failed = f"rank {sender} failed"
                self._await_the_end()

    def _send(self, dest: int, tag: int, text: str) -> None:
        data = json.dumps({"text": text[:NOTICE_BYTES // 2]}).encode("utf-8")[:NOTICE_BYTES]
        buffer = bytearray(data)
        self._sends.append((buffer, self.alarm.Isend([buffer, self.MPI.BYTE], dest=dest, tag=tag)))

    def fail(self, reason: str, quiet: bool = False) -> None:
        """Tell every other rank that this one failed (``reason``: one line); the job ends when they have read it
        (``atexit``: the failed rank aborts once all acknowledged, or after the timeout)."""
        if self.failed is not None:
            return
        self.failed = reason
        if not quiet:
            self._say(f"failed ({reason}); ending the job on every rank")
        for dest in range(self.size):
            if dest != self.rank:
                self._send(dest, FAILED, reason)

    def _end_failed_job(self, wait_s: float | None = None) -> None:
        """Wait until every other rank acknowledged the failure (or ``wait_s``), answering their notices, then
        abort the whole job."""
        deadline = time.monotonic() + (self.timeout if wait_s is None else wait_s)
        others = set(range(self.size)) - {self.rank}
        while not others <= self._acked and time.monotonic() < deadline:
            self._read_failed_job_notices()
            time.sleep(0.01)
        self._abort()

    def _read_failed_job_notices(self) -> None:
        while (notice := self._next_notice()) is not None:
            tag, sender, _ = notice
            if tag == ACK:
                self._acked.add(sender)
            else:
                self._send(sender, ACK, "")

    def _await_the_end(self) -> None:
        """After acknowledging another rank's failure: that rank aborts the job; if it does not within the timeout
        (it died first), abort it from here."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self._read_failed_job_notices()
            time.sleep(0.01)
        self._abort()

    def _abort(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.MPI.COMM_WORLD.Abort(1)

    def _say(self, text: str) -> None:
        print(f"ember.distributed: rank {self.rank} of {self.size} ({socket.gethostname()}, pid {os.getpid()}): "
              f"{text}", file=sys.stderr, flush=True)

    def at_exit(self) -> None:
        """A failed rank ends the job; otherwise stop listening, so MPI can finalize."""
        if self.failed is not None:
            self._end_failed_job()
            return
        with contextlib.suppress(Exception):
            self._read_failed_job_notices()  # a rank that failed as this one finished still gets its answer
            self._notice_request.Cancel()
            self._notice_request.Wait()


# -- the process's world ---------------------------------------------------------------------------------------------
_world: World | None = None


def init(timeout: float | None = None, require_launcher: bool = False) -> World:
    """This process's World, set up once: from the MPI launcher's environment when there is one, else a world of
    one process (no MPI needed).

    Args:
        timeout: seconds a collective may wait for the other ranks before the job is ended (default:
            $EMBER_DIST_TIMEOUT, else 300).
        require_launcher: refuse to run as a world of one (``ember train --distributed`` outside ``mpirun``).

    Raises DistributedError when mpi4py is missing under a launcher, when the launcher started more processes than
    MPI sees (an ``mpirun`` of another MPI), or when the ranks run different versions of ember or NumPy.
    """
    global _world
    limit = default_timeout() if timeout is None else float(timeout)
    if not limit > 0:
        raise ValueError(f"init: timeout must be a positive number of seconds, got {timeout}")
    if _world is not None:
        _world.timeout = limit
        if require_launcher and _world.size == 1 and not launched_by_mpi():
            raise _no_launcher()
        return _world
    if not launched_by_mpi():
        if require_launcher:
            raise _no_launcher()
        _world = World(timeout=limit)
        return _world
    MPI = import_mpi()
    check_world_size(launcher_size(), MPI.COMM_WORLD.Get_size(), MPI.Get_library_version().splitlines()[0])
    if MPI.COMM_WORLD.Get_size() == 1:
        _world = World(timeout=limit)
        return _world
    world = MPIWorld(MPI, MPI.COMM_WORLD, limit)
    atexit.register(world.at_exit)
    _check_same_software(world)
    _share_the_cores(world)
    _install_excepthook(world)
    _world = world
    return world


def _no_launcher() -> DistributedError:
    return DistributedError("this process was not started by an MPI launcher, so it would run alone: start every "
                            "process with one, e.g. `mpirun -np 2 <command>` (MPICH's and Open MPI's mpirun, "
                            "mpiexec, srun)")


def get_world() -> World:
    """The World that ``init()`` set up; an error naming the fix before it."""
    if _world is None:
        raise DistributedError("ember.distributed is not initialised: call ember.distributed.init() first")
    return _world


def is_initialized() -> bool:
    return _world is not None


def _software() -> dict:
    import ember

    return {"ember": getattr(ember, "__version__", "?"), "numpy": np.__version__,
            "python": ".".join(map(str, sys.version_info[:3]))}


def _check_same_software(world: World) -> None:
    """Every rank must run the same ember, NumPy and Python: numbers that differ in the last bit from one rank to
    the next would let the replicas of a model drift apart."""
    found = world.all_gather_object(_software())
    differ = [r for r in range(world.size) if found[r] != found[0]]
    if differ:
        r = differ[0]
        raise RanksDisagree(f"rank {r} runs {found[r]} but rank 0 runs {found[0]}: every rank must run the same "
                            "software (one environment, one checkout)")


def _share_the_cores(world: World) -> None:
    """Give each rank its share of this machine's cores for BLAS, unless the environment fixes the count (the
    adaptive policy of ember/threads.py would read the other ranks' busy waiting as other work)."""
    if os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("EMBER_BLAS_THREADS"):
        return
    from ..threads import set_blas_threads

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    set_blas_threads(max(1, cores // world.local_size))


def _install_excepthook(world: MPIWorld) -> None:
    """An uncaught exception announces the failure; the job then ends at exit (``MPIWorld.at_exit``)."""
    previous = sys.excepthook

    def excepthook(kind, exc, tb):
        previous(kind, exc, tb)
        if not getattr(exc, "raised_on_every_rank", False):
            world.fail(f"{kind.__name__}: {exc}".strip().splitlines()[0] if str(exc) else kind.__name__)

    sys.excepthook = excepthook
