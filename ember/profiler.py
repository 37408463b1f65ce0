"""Where a training step's time and memory go: every op's forward and backward, named regions, a table like
``torch.profiler``'s and a Chrome trace (Perfetto, ``chrome://tracing``)::

    with ember.profiler.profile(record_shapes=True, profile_memory=True) as prof:
        for x, y in batches:
            with ember.profiler.record("forward"):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            prof.step()                     # closes "ProfilerStep#N"; the step's peak memory is kept
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    prof.export_chrome_trace("trace.json")

Zero cost when off: nothing in the dispatcher asks whether a profiler runs, and the graph walk only whether
anyone watches it. ``profile`` installs its hooks on entry and removes them on exit, exception or not:

* ``ember.tensor.apply``, in every module that holds it by name: a wrapper that times each op's forward;
* a watcher of every graph walk (``ember.autograd.walk_observers``): a node's backward event runs from the end of
  the previous node's (or the walk's start) to the end of its own: its backward, the adding of the gradients it
  hands out, the release of what it saved. (Wrapping ``backward`` in every op class instead cost a third of a
  millisecond at each entry and exit, and made Python drop its cached lookups on those classes.) A bucket
  all-reduce that data-parallel training starts after a node counts in the next node's time;
* ``step`` and ``zero_grad`` of every ``Optimizer`` subclass: regions named as torch names them.

Times are wall-clock (``time.perf_counter_ns``), per thread: an event's self time is its duration minus its
direct children's (ops nest in regions; ops do not nest in ops). Memory (``profile_memory=True``): an op's
output array counts as allocated unless the op returns a view of its input; a backward's gradient arrays count
unless they are (views of) the incoming gradient. Each counted array is followed by a weak reference, so the
live total goes down when it is freed; the peak of that total is the step's peak memory. It covers activations
and gradients, not parameters, optimizer state, input batches or an op's internal temporaries (``tracemalloc``
sees those too, but slows every Python allocation; ``tests/profiler`` checks that this peak never exceeds
``tracemalloc``'s).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import operator
import os
import sys
import threading
import time
import weakref

from . import autograd
from .autograd import Function

_tensor = importlib.import_module(".tensor", __package__)  # the module: ``ember.tensor`` is the function

FORWARD, BACKWARD, REGION, STEP = "forward", "backward", "region", "step"
_RANK = {STEP: 0, REGION: 1, FORWARD: 2, BACKWARD: 2}  # the outer event first when two start together
SORT_KEYS = ("self_cpu_time_total", "cpu_time_total", "cpu_time", "count", "self_cpu_memory_usage",
             "cpu_memory_usage")
BACKWARD_TID_OFFSET = 1 << 30  # backward rows' synthetic tids: above any Linux thread id (pid_max <= 2**22)

_clock = time.perf_counter_ns
_shape_of = operator.attrgetter("data.shape")  # a tensor's shape, read in C (cheaper than a comprehension)
_thread_id = threading.get_native_id
_active: profile | None = None  # the running profile (one per process at a time)
_active_apply: list = [None]  # the running profile's wrapper of ``tensor.apply`` (where a stale wrapper sends ops)
_active_lock = threading.Lock()


# ----------------------------------------------------------------------------------------------- events
@dataclasses.dataclass
class Event:
    """One op's forward or backward, a region or a step, on one thread; times in ns from ``perf_counter_ns``."""

    name: str
    kind: str  # "forward", "backward", "region" or "step"
    start_ns: int
    end_ns: int
    thread: int  # the native thread id
    input_shapes: list | None = None  # forward: the inputs' shapes; backward: the incoming gradient's
    bytes: int = 0  # allocated by the op itself (outputs or gradients), when memory is profiled
    self_ns: int = 0  # the duration minus its direct children's, set when the events are nested
    total_bytes: int = 0  # ``bytes`` plus its children's
    args: dict = dataclasses.field(default_factory=dict)

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


def _nest(events: list[Event]) -> None:
    """Set each event's self time and total bytes from how the events of one thread nest in time.

    Events are sorted by start (the longer first); an event is a child of the innermost open event that
    contains it. A region that straddles another's end (opened before ``step()`` and closed after) is
    closed early rather than breaking the nesting of what follows.
    """
    events.sort(key=lambda e: (e.thread, e.start_ns, -e.end_ns, _RANK[e.kind]))
    parent_of: list[int] = []
    stack: list[int] = []
    for i, e in enumerate(events):
        e.self_ns, e.total_bytes = e.duration_ns, e.bytes
        while stack and (events[stack[-1]].thread != e.thread or events[stack[-1]].end_ns < e.end_ns
                         or events[stack[-1]].end_ns <= e.start_ns):
            stack.pop()
        parent = stack[-1] if stack else -1
        if parent >= 0:
            events[parent].self_ns -= e.duration_ns
        parent_of.append(parent)
        stack.append(i)
    for i in range(len(events) - 1, -1, -1):  # children come after their parent: add totals bottom-up
        if parent_of[i] >= 0:
            events[parent_of[i]].total_bytes += events[i].total_bytes


# ----------------------------------------------------------------------------------------------- memory
def _shares_memory(a, b) -> bool:
    return a is b or _tensor._xp_of(a).may_share_memory(a, b)


class _LiveBytes:
    """Bytes of op outputs and gradients still alive, and the peak since the last ``reset_peak``.

    Each counted array gets a weak reference whose callback subtracts its bytes when the array is freed.
    NumPy scalars (0-d reduction results) cannot be weakly referenced; their few bytes are counted as
    allocated but not as live.
    """

    def __init__(self):
        self.now = 0
        self.peak = 0
        self._refs: dict[int, tuple] = {}  # id(ref) -> (ref, bytes): keeps each ref (and its callback) alive

    def track(self, array, nbytes: int) -> None:
        try:
            ref = weakref.ref(array, self._freed)
        except TypeError:
            return
        self._refs[id(ref)] = (ref, nbytes)
        self.now += nbytes
        if self.now > self.peak:
            self.peak = self.now

    def _freed(self, ref) -> None:
        entry = self._refs.pop(id(ref), None)
        if entry is not None:
            self.now -= entry[1]

    def reset_peak(self) -> int:
        """The peak since the last reset; the next period starts from what is alive now."""
        peak, self.peak = self.peak, self.now
        return peak

    def stop(self) -> None:
        """Drop the weak references (and their callbacks): arrays freed after the profile change nothing."""
        self._refs.clear()

    def output(self, cls, data, inputs) -> int:
        """Bytes an op's forward allocated: its output's, unless the output is a view of input 0."""
        if cls.returns_view and _shares_memory(data, inputs[0].data):
            return 0
        nbytes = data.nbytes
        self.track(data, nbytes)
        return nbytes

    def gradients(self, grads, g) -> int:
        """Bytes a backward allocated: the gradients it returned that are not ``g`` or views of it."""
        total = 0
        for tg in grads if type(grads) is tuple else (grads,):
            if tg is None or tg is g or (tg.base is not None and _shares_memory(tg, g)):
                continue
            total += tg.nbytes
            self.track(tg, tg.nbytes)
        return total


# ----------------------------------------------------------------------------------------------- hooks
def _function_classes(root=Function):
    """Every subclass of ``root`` defined so far, at any depth."""
    found, seen, todo = [], set(), [root]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                found.append(sub)
                todo.append(sub)
    return found


def _modules_holding(obj, name: str, since: int = 0):
    """The loaded modules whose global ``name`` is ``obj`` (every ``from ember.tensor import apply``), among
    ``sys.modules`` from position ``since`` (imports append to it, so a later scan need not repeat an earlier one)."""
    for module in list(sys.modules.values())[since:]:
        namespace = getattr(module, "__dict__", None)
        if isinstance(namespace, dict) and namespace.get(name) is obj:
            yield module


class _ApplyHolders:
    """The modules that hold ``tensor.apply`` by name, remembered between profiles: scanning every loaded module
    (thousands once PyTorch is imported beside ember) cost about 1 ms at each start and each exit; now a profile
    starts by scanning only the modules imported since the last one, and ends by scanning only those imported
    while it ran (``_Hooks.remove``)."""

    def __init__(self):
        self.scanned = 0  # how many entries of sys.modules have been looked at
        self.modules: list = []

    def find(self, apply) -> list:
        count = len(sys.modules)
        if count < self.scanned:  # modules were removed: positions moved, start over
            self.scanned, self.modules = 0, []
        self.modules += [m for m in _modules_holding(apply, "apply", self.scanned) if m not in self.modules]
        self.scanned = count
        return [m for m in self.modules if getattr(m, "apply", None) is apply]


_apply_holders = _ApplyHolders()
class _Hooks:
    """The swapped function objects of one profile, and how to put every original back."""

    def __init__(self, prof: profile):
        self.prof = prof
        self.original_apply = _tensor.apply
        self.profiled_apply = None
        self.swapped: list[tuple[object, str, object]] = []  # (module or class, attribute, original)
        self.observer = None  # the walk observer that records backward events
        self.busy: set[tuple[int, str]] = set()  # (thread, hook) inside a hooked call: nested calls pass through
        self.recording = [True]  # cleared at removal: a stale copy of the profiled apply then hands ops on
        self.modules_before = 0  # len(sys.modules) at install, and its last key then (to see if positions moved)
        self.last_key_before = None

    def install(self) -> None:
        self.modules_before = len(sys.modules)
        self.last_key_before = next(reversed(sys.modules), None)
        self.profiled_apply = self._make_apply()
        _active_apply[0] = self.profiled_apply
        for module in _apply_holders.find(self.original_apply):
            self._swap(module, "apply", self.profiled_apply)
        self.observer = self._make_observer()
        autograd.walk_observers.insert(0, self.observer)  # first: another watcher's work counts in the next node
        from .optim.optimizer import Optimizer

        for cls in [Optimizer, *_function_classes(Optimizer)]:
            for method in ("step", "zero_grad"):
                if method in cls.__dict__:
                    self._swap(cls, method, self._region_method(cls.__dict__[method], method))

    def remove(self) -> None:
        """Put every original back (modules that imported ``apply`` during the profile too); raise the first
        failure only after trying them all.

        Only the modules imported since ``install`` are scanned for the profiled apply: an older module got it
        only if it was swapped (restored above) or re-executed meanwhile (``importlib.reload``), and for that
        rare case the profiled apply hands every op to the running profile's apply from now on (or to the
        dispatcher when none runs): no event is lost, none is recorded twice. When modules were removed from
        sys.modules meanwhile (positions moved), every module is scanned."""
        self.recording[0] = False
        if _active_apply[0] is self.profiled_apply:
            _active_apply[0] = None
        if self.observer in autograd.walk_observers:
            autograd.walk_observers.remove(self.observer)
        failures = []
        for owner, name, original in reversed(self.swapped):
            try:
                setattr(owner, name, original)
            except Exception as exc:  # noqa: BLE001 - keep restoring the others
                failures.append(exc)
        if self.profiled_apply is not None:
            keys = list(sys.modules)
            since = self.modules_before
            if not (0 < since <= len(keys) and keys[since - 1] == self.last_key_before):
                since = 0
            for module in _modules_holding(self.profiled_apply, "apply", since):
                module.apply = self.original_apply
        self.swapped.clear()
        if failures:
            raise failures[0]

    def _swap(self, owner, name: str, replacement) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        setattr(owner, name, replacement)
        self.swapped.append((owner, name, original))

    def _make_apply(self):
        apply, prof = self.original_apply, self.prof
        append, live, shapes_on = prof._records.append, prof._live, prof.record_shapes
        recording = self.recording

        def profiled_apply(cls, *inputs, **attrs):
            if not recording[0]:  # a stale copy, kept by a module re-executed during its profile: hand the op on
                return (_active_apply[0] or apply)(cls, *inputs, **attrs)
            start = _clock()
            out = apply(cls, *inputs, **attrs)
            end = _clock()
            shapes = tuple(map(_shape_of, inputs)) if shapes_on else None
            nbytes = live.output(cls, out.data, inputs) if live is not None else 0
            append((FORWARD, cls, start, end, _thread_id(), shapes, nbytes))
            return out

        profiled_apply.__wrapped__ = apply
        return profiled_apply

    def _make_observer(self):
        """The walk observer: a watcher per graph walk that records one backward event per node that ran."""
        prof = self.prof
        append, live, shapes_on = prof._records.append, prof._live, prof.record_shapes

        class Walk:
            __slots__ = ("order", "thread", "last")

            def __init__(self, order):
                self.order, self.thread, self.last = order, _thread_id(), _clock()

            def node_done(self, index, g, grads):
                end = _clock()
                nbytes = live.gradients(grads, g) if live is not None else 0
                append((BACKWARD, type(self.order[index]), self.last, end, self.thread,
                        (g.shape,) if shapes_on else None, nbytes))
                self.last = _clock()

            def walk_done(self):
                pass

        return Walk

    def _region_method(self, original, method: str):
        """An optimizer method recorded as a region, named as torch names it: ``Optimizer.step#Adam.step``."""
        prof, busy = self.prof, self.busy

        @functools.wraps(original)
        def region(opt, *args, **kwargs):
            key = (_thread_id(), method)
            if key in busy:  # a subclass's step calling super().step(): one region
                return original(opt, *args, **kwargs)
            busy.add(key)
            start = _clock()
            try:
                return original(opt, *args, **kwargs)
            finally:
                busy.discard(key)
                prof._records.append((REGION, f"Optimizer.{method}#{type(opt).__name__}.{method}", start,
                                      _clock(), key[0], None, 0))

        return region


# ----------------------------------------------------------------------------------------------- profile
class profile:
    """Record every op's forward and backward, regions and steps while the ``with`` block runs.

    Args:
        record_shapes: keep each op's input shapes (for ``key_averages(group_by_input_shape=True)`` and the trace).
        profile_memory: count the bytes each op allocates and follow the live total (``peak_memory``).

    One profile at a time per process (the hooks are global); a profile records once.
    """

    def __init__(self, record_shapes: bool = False, profile_memory: bool = False):
        self.record_shapes = bool(record_shapes)
        self.profile_memory = bool(profile_memory)
        self.step_peak_memory: list[int] = []  # bytes, one per completed step (profile_memory only)
        self._records: list[tuple] = []  # (kind, op class or name, start, end, thread, shapes, bytes)
        self._steps: list[tuple[int, int, int]] = []  # (start, end, thread) of each completed step
        self._overall_peak = 0
        self._thread_names: dict[int, str] = {}  # native id -> name, of the threads alive at a step or at the end
        self._live = _LiveBytes() if self.profile_memory else None
        self._hooks: _Hooks | None = None
        self._state = "new"
        self._start_ns = self._step_start_ns = 0
        self._thread = _thread_id()
        self._events: list[Event] | None = None

    def __enter__(self) -> profile:
        global _active
        with _active_lock:
            if _active is not None:
                raise RuntimeError("ember.profiler.profile: a profile is already running; nested profiles are not "
                                   "supported (the hooks are process-wide): use ember.profiler.record(name) for a "
                                   "region inside the running one")
            if self._state != "new":
                raise RuntimeError("ember.profiler.profile: this profile has already recorded; create a new one")
            _active, self._state = self, "running"
        hooks = _Hooks(self)
        try:
            hooks.install()
        except BaseException:
            hooks.remove()
            self._state, _active = "done", None
            raise
        self._hooks, self._thread = hooks, _thread_id()
        self._start_ns = self._step_start_ns = _clock()
        return self

    def __exit__(self, *exc) -> bool:
        global _active
        self._note_thread_names()
        try:
            self._hooks.remove()
        finally:
            self._hooks, self._state, _active = None, "done", None
            if self._live is not None:
                self._overall_peak = max(self._live.peak, *self.step_peak_memory, 0)
                self._live.stop()
        return False

    # -- recording ----------------------------------------------------------------------------------
    def step(self) -> None:
        """End the current step (begun at entry or at the previous ``step()``): a ``ProfilerStep#N`` region,
        and, with ``profile_memory``, that step's peak memory."""
        if self._state != "running":
            raise RuntimeError("ember.profiler.profile.step: the profile is not running (call it inside the with "
                               "block)")
        now = _clock()
        self._steps.append((self._step_start_ns, now, _thread_id()))
        self._note_thread_names()
        if self._live is not None:
            self.step_peak_memory.append(self._live.reset_peak())
        self._step_start_ns = now

    def _note_thread_names(self) -> None:
        """Thread names for the trace's rows, read while the threads live (a worker may end before the export)."""
        self._thread_names.update((t.native_id, t.name) for t in threading.enumerate() if t.native_id is not None)

    def _region(self, name: str, start_ns: int, end_ns: int) -> None:
        self._records.append((REGION, name, start_ns, end_ns, _thread_id(), None, 0))

    # -- results ------------------------------------------------------------------------------------
    @property
    def peak_memory(self) -> int | None:
        """The highest live total of op outputs and gradients in one step (in the whole profile when ``step()``
        was never called), in bytes; None without ``profile_memory``."""
        if self._live is None:
            return None
        if self.step_peak_memory:
            return max(self.step_peak_memory)
        return self._overall_peak if self._state == "done" else self._live.peak

    def events(self) -> list[Event]:
        """Every recorded event, nested (self times set), sorted by thread and start time."""
        if self._events is not None:
            return self._events
        events = [self._event(r) for r in list(self._records)]
        for n, (start, end, thread) in enumerate(list(self._steps)):
            args = {"peak_memory_bytes": self.step_peak_memory[n]} if self._live is not None else {}
            events.append(Event(f"ProfilerStep#{n}", STEP, start, end, thread, args=args))
        _nest(events)
        if self._state == "done":
            self._events = events
        return events

    @staticmethod
    def _event(record: tuple) -> Event:
        kind, what, start, end, thread, shapes, nbytes = record
        name = what if isinstance(what, str) else what.__name__ + ("Backward" if kind == BACKWARD else "")
        shapes = [list(s) for s in shapes] if shapes is not None else None
        return Event(name, kind, start, end, thread, shapes, nbytes)

    def key_averages(self, group_by_input_shape: bool = False) -> EventList:
        """The events grouped by name (and input shapes), as ``torch.profiler``'s ``key_averages``."""
        if group_by_input_shape and not self.record_shapes:
            raise ValueError("key_averages(group_by_input_shape=True) needs the shapes: profile with "
                             "record_shapes=True")
        groups: dict[tuple, EventAverage] = {}
        for e in self.events():
            shapes = str(e.input_shapes) if group_by_input_shape and e.input_shapes is not None else ""
            key = (e.name, shapes)
            if key not in groups:
                groups[key] = EventAverage(e.name, e.kind, input_shapes=shapes or None)
            groups[key].add(e)
        return EventList(groups.values(), profile_memory=self.profile_memory, peak_memory=self.peak_memory)

    def export_chrome_trace(self, path) -> None:
        """Write the Chrome trace event format (Perfetto and ``chrome://tracing`` open it), atomically."""
        from .io.atomic import write_text_atomic

        write_text_atomic(path, json.dumps(self.chrome_trace()))

    def chrome_trace(self) -> dict:
        """The trace as a dict: complete ("X") events in µs from the profile's start, forward and backward on
        rows of their own per thread (backward's tid is synthetic), rows named by "M" metadata events."""
        pid, rows, trace = os.getpid(), {}, []
        for e in sorted(self.events(), key=lambda e: e.start_ns):
            tid = e.thread + (BACKWARD_TID_OFFSET if e.kind == BACKWARD else 0)
            rows.setdefault(tid, (e.thread, e.kind == BACKWARD))
            args = {"thread": e.thread, **e.args}
            if e.input_shapes is not None:
                args["shapes"] = e.input_shapes
            if self.profile_memory and e.kind in (FORWARD, BACKWARD):
                args["bytes"] = e.bytes
            trace.append({"name": e.name, "cat": e.kind, "ph": "X", "ts": (e.start_ns - self._start_ns) / 1e3,
                          "dur": e.duration_ns / 1e3, "pid": pid, "tid": tid, "args": args})
        return {"traceEvents": self._metadata(pid, rows) + trace, "displayTimeUnit": "ms"}

    def _metadata(self, pid: int, rows: dict) -> list[dict]:
        names = {**self._thread_names, **{t.native_id: t.name for t in threading.enumerate()}}
        meta = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": "ember"}}]
        order = sorted(rows.items(), key=lambda r: (r[1][0] != self._thread, r[1][0], r[1][1]))
        for index, (tid, (thread, is_backward)) in enumerate(order):
            lane = BACKWARD if is_backward else FORWARD
            name = lane if thread == self._thread else f"{lane} ({names.get(thread, f'thread {thread}')})"
            meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}})
            meta.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid, "args": {"sort_index": index}})
        return meta


class record:
    """A named region: ``with ember.profiler.record("data"):`` (or ``@record("data")`` on a function).

    Outside a profile it records nothing (one global read on entry and exit)."""

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise TypeError(f"ember.profiler.record: name must be a non-empty string, got {name!r}")
        self.name = name
        self._prof = None
        self._start_ns = 0

    def __enter__(self) -> record:
        self._prof = _active
        if self._prof is not None:
            self._start_ns = _clock()
        return self

    def __exit__(self, *exc) -> bool:
        if self._prof is not None:
            self._prof._region(self.name, self._start_ns, _clock())
            self._prof = None
        return False

    def __call__(self, fn):
        name = self.name

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with record(name):
                return fn(*args, **kwargs)

        return wrapper


def is_profiling() -> bool:
    return _active is not None


# ----------------------------------------------------------------------------------------------- averages
@dataclasses.dataclass
class EventAverage:
    """One row of ``key_averages()``: the events of one name (and input shapes). Times in µs, as torch's."""

    key: str
    kind: str
    count: int = 0
    self_ns: int = 0
    total_ns: int = 0
    self_cpu_memory_usage: int = 0  # bytes
    cpu_memory_usage: int = 0  # bytes, children included
    input_shapes: str | None = None

    def add(self, e: Event) -> None:
        self.count += 1
        self.self_ns += e.self_ns
        self.total_ns += e.duration_ns
        self.self_cpu_memory_usage += e.bytes
        self.cpu_memory_usage += e.total_bytes

    @property
    def self_cpu_time_total(self) -> float:
        return self.self_ns / 1e3

    @property
    def cpu_time_total(self) -> float:
        return self.total_ns / 1e3

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / self.count if self.count else 0.0


class EventList(list):
    """The rows of ``key_averages()``, with ``table()``."""

    def __init__(self, rows, profile_memory: bool = False, peak_memory: int | None = None):
        super().__init__(rows)
        self.profile_memory = profile_memory
        self.peak_memory = peak_memory

    @property
    def self_cpu_time_total(self) -> float:
        """The sum of every row's self time (µs): the wall time the outermost events cover."""
        return sum(r.self_cpu_time_total for r in self)

    def table(self, sort_by: str | None = None, row_limit: int = 100, max_name_column_width: int = 55,
              max_shapes_column_width: int = 80) -> str:
        """The rows as text, like ``torch.profiler``'s table, sorted (descending) by one of ``SORT_KEYS``."""
        rows = list(self)
        if sort_by is not None:
            if sort_by not in SORT_KEYS:
                raise ValueError(f"table: sort_by={sort_by!r} is not a column; use one of {', '.join(SORT_KEYS)}")
            rows.sort(key=lambda r: getattr(r, sort_by), reverse=True)
        if row_limit is not None and row_limit > 0:
            rows = rows[:row_limit]
        return _render(rows, self, max_name_column_width, max_shapes_column_width)


def _format_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _format_memory(nbytes: int) -> str:
    for unit, size in (("Gb", 1 << 30), ("Mb", 1 << 20), ("Kb", 1 << 10)):
        if abs(nbytes) >= size:
            return f"{nbytes / size:.2f} {unit}"
    return f"{nbytes} b"


def _render(rows: list[EventAverage], every: EventList, name_width: int, shapes_width: int) -> str:
    total_us = every.self_cpu_time_total or 1.0
    shapes = any(r.input_shapes for r in every)
    name_width = min(name_width, max([len("Name"), *(len(r.key) for r in rows)]))
    headers = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
    if every.profile_memory:
        headers += ["Self CPU Mem", "CPU Mem"]
    headers.append("# of Calls")
    if shapes:
        headers.append("Input Shapes")
    cells = []
    for r in rows:
        line = [_clip(r.key, name_width), f"{r.self_cpu_time_total / total_us:.2%}",
                _format_time(r.self_cpu_time_total), f"{r.cpu_time_total / total_us:.2%}",
                _format_time(r.cpu_time_total), _format_time(r.cpu_time)]
        if every.profile_memory:
            line += [_format_memory(r.self_cpu_memory_usage), _format_memory(r.cpu_memory_usage)]
        line.append(str(r.count))
        if shapes:
            line.append(_clip(r.input_shapes or "[]", shapes_width))
        cells.append(line)
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    widths[0] = max(widths[0], name_width)

    def join(values):
        return "  ".join(v.ljust(w) if i == 0 or headers[i] == "Input Shapes" else v.rjust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [rule, join(headers), rule, *(join(c) for c in cells), rule,
             f"Self CPU time total: {_format_time(every.self_cpu_time_total)}"]
    if every.peak_memory is not None:
        lines.append(f"Peak memory of a step (op outputs and gradients alive): {_format_memory(every.peak_memory)}")
    return "\n".join(lines) + "\n"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


__all__ = ["Event", "EventAverage", "EventList", "SORT_KEYS", "is_profiling", "profile", "record"]
