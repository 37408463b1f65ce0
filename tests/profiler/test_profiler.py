"""ember.profiler: op counts of a known model, regions, self times, the table, the Chrome trace, memory, and hooks
that are gone once the profile ends (the non-profiling path is untouched)."""

from __future__ import annotations

import json
import sys
import threading
import time
import tracemalloc
import types
from collections import Counter

import numpy as np
import pytest

import ember
import ember.nn.functional as F
from ember import autograd, kernels, ops, profiler
from ember.autograd import Function
from ember.cli.main import main
from ember.models import MLP
from ember.optim.optimizer import Optimizer
from ember.tensor import apply  # a module outside ember holding the dispatcher by name: swapped and restored too

BATCH, HIDDEN, CLASSES = 16, 32, 10


class Sleep(Function):
    """An op that takes a known time: its forward sleeps ``seconds``; its gradient is the identity."""

    saves = ()

    def forward(ctx, x, seconds):
        time.sleep(seconds)
        return x.copy()

    def backward(ctx, g):
        return g


def two_layer_mlp():
    """Flatten -> Linear(784, 32) -> ReLU -> Linear(32, 10), trained with Adam on one fixed random batch."""
    model = MLP(sizes=(784, HIDDEN, CLASSES))
    opt = ember.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = ember.tensor(rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32))
    y = ember.tensor(rng.integers(0, CLASSES, BATCH))

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def profiled_steps(step, n: int, **options) -> profiler.profile:
    step()  # warm-up: the kernels' first-call compilation and the optimizer's state
    with profiler.profile(**options) as prof:
        for _ in range(n):
            step()
            prof.step()
    return prof


def counts(prof, kind: str) -> Counter:
    return Counter(e.name for e in prof.events() if e.kind == kind)


# ------------------------------------------------------------------------------------------ what is recorded
def test_op_counts_of_a_two_layer_mlp_are_exact():
    """Counted by hand from the model: Flatten is one Reshape (of the input, which needs no gradient, so no
    backward node), two Linears, one ReLU, one fused cross-entropy; backward runs a node for each op that
    recorded one; Adam's zero_grad and step are regions."""
    steps = 3
    prof = profiled_steps(two_layer_mlp(), steps)
    assert counts(prof, "forward") == {"Reshape": steps, "Linear": 2 * steps, "ReLU": steps, "CrossEntropy": steps}
    assert counts(prof, "backward") == {"CrossEntropyBackward": steps, "LinearBackward": 2 * steps,
                                        "ReLUBackward": steps}
    assert counts(prof, "region") == {"Optimizer.zero_grad#Adam.zero_grad": steps, "Optimizer.step#Adam.step": steps}
    assert counts(prof, "step") == {f"ProfilerStep#{i}": 1 for i in range(steps)}
    rows = {r.key: r.count for r in prof.key_averages()}
    assert rows["Linear"] == 2 * steps and rows["LinearBackward"] == 2 * steps


def test_a_backward_that_calls_another_ops_backward_is_one_event():
    """Softmin's backward calls Softmax.backward (its parent class's): one SoftminBackward event."""
    x = ember.randn(4, 5, requires_grad=True)
    with profiler.profile() as prof:
        F.softmin(x, dim=1).sum().backward()
    assert counts(prof, "backward") == {"SumBackward": 1, "SoftminBackward": 1}


def test_self_and_total_times_follow_known_durations():
    """A region holding 30 ms of its own sleep and an op that sleeps 50 ms: the op's self time is its 50 ms, the
    region's self time its own 30 ms, its total both."""
    x = ember.ones(3, requires_grad=True)
    with profiler.profile() as prof:
        with profiler.record("outer"):
            time.sleep(0.03)
            y = apply(Sleep, x, seconds=0.05)
        y.sum().backward()
    rows = {r.key: r for r in prof.key_averages()}
    op, region = rows["Sleep"], rows["outer"]
    assert 50e3 <= op.self_cpu_time_total < 80e3 and op.cpu_time_total == op.self_cpu_time_total
    assert 30e3 <= region.self_cpu_time_total < 80e3  # 80 ms or more: the op's time counted as the region's own
    assert region.cpu_time_total == pytest.approx(region.self_cpu_time_total + op.cpu_time_total, abs=1e-3)
    assert rows["SleepBackward"].count == 1


def test_regions_nest_and_record_nothing_outside_a_profile():
    x = ember.randn(8, 8)

    @profiler.record("load")
    def load():
        return x * 2.0

    with profiler.record("ignored"):  # no profile running: nothing to record, no error
        load()
    with profiler.profile() as prof:
        with profiler.record("data"):
            with profiler.record("inner"):
                y = load()
            (y + 1.0).exp()
    events = {e.name: e for e in prof.events()}
    assert set(events) == {"data", "inner", "load", "MulScalar", "AddScalar", "Exp"}
    data, inner, load_region = events["data"], events["inner"], events["load"]
    assert data.start_ns <= inner.start_ns <= load_region.start_ns <= events["MulScalar"].start_ns
    assert events["MulScalar"].end_ns <= load_region.end_ns <= inner.end_ns <= data.end_ns
    assert inner.self_ns == inner.duration_ns - load_region.duration_ns
    assert data.self_ns == data.duration_ns - inner.duration_ns - events["AddScalar"].duration_ns \
        - events["Exp"].duration_ns
    with pytest.raises(TypeError, match="name must be a non-empty string"):
        profiler.record("")


def test_shapes_are_recorded_per_op_and_grouped_by_input_shape():
    prof = profiled_steps(two_layer_mlp(), 2, record_shapes=True)
    linear = [e.input_shapes for e in prof.events() if e.name == "Linear"]
    assert linear[:2] == [[[BATCH, 784], [HIDDEN, 784], [HIDDEN]], [[BATCH, HIDDEN], [CLASSES, HIDDEN], [CLASSES]]]
    backward = [e.input_shapes for e in prof.events() if e.name == "LinearBackward"]
    assert backward[:2] == [[[BATCH, CLASSES]], [[BATCH, HIDDEN]]]  # the incoming gradient: the output's shape
    grouped = {(r.key, r.input_shapes): r.count for r in prof.key_averages(group_by_input_shape=True)}
    assert grouped[("Linear", str([[BATCH, 784], [HIDDEN, 784], [HIDDEN]]))] == 2
    assert grouped[("Linear", str([[BATCH, HIDDEN], [CLASSES, HIDDEN], [CLASSES]]))] == 2
    table = prof.key_averages(group_by_input_shape=True).table(sort_by="count")
    assert "Input Shapes" in table.splitlines()[1] and f"[[{BATCH}, 784], [{HIDDEN}, 784], [{HIDDEN}]]" in table


def test_grouping_by_shape_needs_recorded_shapes():
    with profiler.profile() as prof:
        ember.ones(2).exp()
    with pytest.raises(ValueError, match="record_shapes=True"):
        prof.key_averages(group_by_input_shape=True)


def test_ops_on_another_thread_carry_that_thread():
    """The worker lives past the profile's end (as a data loader would): its rows carry its name."""
    x = ember.randn(3, 3, requires_grad=True)
    seen, done, release = {}, threading.Event(), threading.Event()

    def worker():
        seen["id"] = threading.get_native_id()
        (x * 3.0).sum().backward()
        done.set()
        release.wait(10)

    thread = threading.Thread(target=worker, name="loader")
    with profiler.profile() as prof:
        thread.start()
        done.wait(10)
        x.exp()
    release.set()
    thread.join()
    by_name = {e.name: e.thread for e in prof.events()}
    assert by_name["MulScalar"] == by_name["MulScalarBackward"] == seen["id"]
    assert by_name["Exp"] == threading.get_native_id() != seen["id"]
    rows = {e["tid"]: e["args"]["name"] for e in prof.chrome_trace()["traceEvents"] if e["name"] == "thread_name"}
    assert rows[seen["id"]] == "forward (loader)"
    assert rows[seen["id"] + profiler.BACKWARD_TID_OFFSET] == "backward (loader)"
    assert rows[threading.get_native_id()] == "forward"


# ------------------------------------------------------------------------------------------ table and totals
def test_table_total_matches_the_measured_steps_within_10_percent():
    step = two_layer_mlp()
    step()
    seconds = []
    with profiler.profile(record_shapes=True) as prof:
        for _ in range(5):
            start = time.perf_counter()
            step()
            prof.step()
            seconds.append(time.perf_counter() - start)
    wall_us = sum(seconds) * 1e6
    averages = prof.key_averages()
    assert averages.self_cpu_time_total == pytest.approx(wall_us, rel=0.10)
    ops_us = sum(r.self_cpu_time_total for r in averages if r.kind in ("forward", "backward"))
    assert 0 < ops_us < wall_us
    footer = averages.table().splitlines()
    assert footer[-1].startswith("Self CPU time total: ")


@pytest.mark.parametrize("key", profiler.SORT_KEYS)
def test_table_sorts_by_each_key_descending(key):
    prof = profiled_steps(two_layer_mlp(), 2, record_shapes=True, profile_memory=True)
    averages = prof.key_averages()
    lines = averages.table(sort_by=key, row_limit=6).splitlines()
    rows = {r.key: r for r in averages}
    shown = [getattr(rows[line.split("  ")[0].strip()], key) for line in lines[3:9]]
    assert shown == sorted(shown, reverse=True) and shown[0] == max(getattr(r, key) for r in averages)
    assert lines[9].startswith("---") and lines[1].split()[:3] == ["Name", "Self", "CPU"]


def test_table_refuses_an_unknown_sort_key_naming_the_known_ones():
    with profiler.profile() as prof:
        ember.ones(2).exp()
    with pytest.raises(ValueError, match="sort_by='cuda_time_total'.*self_cpu_time_total, cpu_time_total"):
        prof.key_averages().table(sort_by="cuda_time_total")


# ------------------------------------------------------------------------------------------ the Chrome trace
def test_chrome_trace_is_valid_json_with_forward_and_backward_on_their_own_rows(tmp_path):
    prof = profiled_steps(two_layer_mlp(), 2, record_shapes=True, profile_memory=True)
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    trace = json.loads(path.read_text())
    assert trace["displayTimeUnit"] == "ms"
    complete = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    meta = [e for e in trace["traceEvents"] if e["ph"] == "M"]
    assert len(complete) == len(prof.events())
    for e in complete:
        assert {"name", "cat", "ph", "ts", "dur", "pid", "tid", "args"} <= set(e)
        assert isinstance(e["ts"], float) and e["ts"] >= 0 and e["dur"] >= 0
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
    tids = {cat: {e["tid"] for e in complete if e["cat"] == cat} for cat in ("forward", "backward", "region", "step")}
    assert len(tids["forward"]) == len(tids["backward"]) == 1 and tids["forward"].isdisjoint(tids["backward"])
    assert tids["region"] == tids["step"] == tids["forward"]
    names = {e["tid"]: e["args"]["name"] for e in meta if e["name"] == "thread_name"}
    assert names == {next(iter(tids["forward"])): "forward", next(iter(tids["backward"])): "backward"}
    linear = next(e for e in complete if e["name"] == "Linear")
    assert linear["args"]["shapes"] == [[BATCH, 784], [HIDDEN, 784], [HIDDEN]]
    assert linear["args"]["bytes"] == BATCH * HIDDEN * 4
    # µs timestamps: each op lies inside its step, and the steps follow each other
    steps = sorted((e for e in complete if e["cat"] == "step"), key=lambda e: e["ts"])
    assert steps[1]["ts"] == pytest.approx(steps[0]["ts"] + steps[0]["dur"], abs=1e-3)
    for e in complete:
        if e["cat"] in ("forward", "backward"):
            assert any(s["ts"] <= e["ts"] and e["ts"] + e["dur"] <= s["ts"] + s["dur"] + 1e-3 for s in steps)
    assert [s["args"]["peak_memory_bytes"] for s in steps] == prof.step_peak_memory


# ------------------------------------------------------------------------------------------ memory
def test_peak_memory_of_hand_counted_steps():
    """Step 0 holds a, b and c = a + b at once (3 arrays of n float32); step 1 one array and a view of it."""
    n = 4096
    x = ember.tensor(np.ones(n, dtype=np.float32))
    with profiler.profile(profile_memory=True) as prof:
        a = x * 2.0
        b = a * 3.0
        c = a + b
        del a, b, c
        prof.step()
        d = x * 4.0
        v = d.reshape(64, 64)
        prof.step()
    assert prof.step_peak_memory == [3 * n * 4, n * 4]
    assert prof.peak_memory == 3 * n * 4
    rows = {r.key: r.self_cpu_memory_usage for r in prof.key_averages()}
    assert rows == {"MulScalar": 3 * n * 4, "Add": n * 4, "Reshape": 0, "ProfilerStep#0": 0, "ProfilerStep#1": 0}
    del d, v


def test_peak_memory_of_an_mlp_step_lies_between_its_saved_activations_and_tracemalloc():
    """Lower bound, by hand: at the end of the forward pass the graph holds both Linear outputs, the ReLU output
    and the loss. Upper bound: tracemalloc (NumPy reports its allocations to it) counts every array allocated since
    it started, temporaries included (the NumPy kernels, so that no array comes from numba's allocator)."""
    step = two_layer_mlp()
    with kernels.use("numpy"):
        step()
        tracemalloc.start()
        try:
            with profiler.profile(profile_memory=True) as prof:
                step()
                prof.step()
            traced_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    saved = 4 * BATCH * (HIDDEN + HIDDEN + CLASSES) + 4
    assert saved <= prof.peak_memory <= traced_peak


def test_memory_is_not_followed_without_profile_memory():
    with profiler.profile() as prof:
        ember.ones(4).exp()
    assert prof.peak_memory is None and all(e.bytes == 0 for e in prof.events())
    assert "Mem" not in prof.key_averages().table()


# ------------------------------------------------------------------------------------------ the hooks
def hook_targets() -> dict:
    """Every function object a profile swaps, as it is now."""
    targets = {("module", name): module.apply for name, module in sys.modules.items()
               if name.startswith("ember") and isinstance(getattr(module, "__dict__", None), dict)
               and "apply" in module.__dict__ and callable(module.__dict__["apply"])}
    for cls in profiler._function_classes():
        if "backward" in cls.__dict__:
            targets[(cls, "backward")] = cls.__dict__["backward"]
    for cls in [Optimizer, *profiler._function_classes(Optimizer)]:
        for method in ("step", "zero_grad"):
            if method in cls.__dict__:
                targets[(cls, method)] = cls.__dict__[method]
    return targets


def assert_hooks_gone(before: dict) -> None:
    after = hook_targets()
    changed = [key for key, fn in before.items() if after.get(key) is not fn]
    assert not changed, f"not restored: {changed[:5]}"
    assert sys.modules["ember.tensor"].apply.__qualname__ == "apply"  # the dispatcher itself, not a wrapper
    assert sys.modules["ember.nn.functional.dense"].apply is sys.modules["ember.tensor"].apply is apply


def test_hooks_are_installed_only_inside_the_profile():
    before = hook_targets()
    dense = sys.modules["ember.nn.functional.dense"]
    with profiler.profile():
        assert dense.apply is not before[("module", "ember.nn.functional.dense")]
        assert sys.modules["ember.tensor"].apply is dense.apply is globals()["apply"]  # this module's too
        assert ember.nn.Linear  # (unchanged classes keep working)
    assert_hooks_gone(before)
    assert not profiler.is_profiling()


def test_hooks_are_removed_after_an_exception():
    before = hook_targets()
    with pytest.raises(ZeroDivisionError):
        with profiler.profile(record_shapes=True, profile_memory=True):
            (ember.ones(2, requires_grad=True) * 2.0).sum().backward()
            1 / 0  # noqa: B018
    assert_hooks_gone(before)
    with profiler.profile() as again:  # and a new profile can start
        ember.ones(2).exp()
    assert counts(again, "forward") == {"Exp": 1}


def test_a_module_imported_during_the_profile_gets_the_original_back(monkeypatch):
    """A module imported inside the profile that runs ``from ember.tensor import apply`` holds the wrapper then;
    the exit finds it (among the modules imported since the start) and puts the dispatcher back."""
    dispatcher = apply  # (this module's ``apply`` is swapped too while the profile runs)
    late = types.ModuleType("late_user_of_apply")
    with profiler.profile():
        monkeypatch.setitem(sys.modules, late.__name__, late)
        exec("from ember.tensor import apply", late.__dict__)
        assert late.apply is not dispatcher and late.apply.__wrapped__ is dispatcher
    assert late.apply is dispatcher


def test_a_module_re_executed_during_the_profile_keeps_a_wrapper_that_loses_no_event(monkeypatch):
    """An older module that re-imports ``apply`` inside the profile (``importlib.reload``) is not scanned at the
    exit; its stale wrapper hands each op to the running profile, or to the dispatcher when none runs: the ops it
    runs later are recorded by the profile that runs then, once, and by no other."""
    older = types.ModuleType("older_user_of_apply")
    monkeypatch.setitem(sys.modules, older.__name__, older)
    exec("from ember.tensor import apply", older.__dict__)
    with profiler.profile() as first:
        exec("from ember.tensor import apply", older.__dict__)  # what a reload does
        stale = older.apply
        older.apply(ops.elementwise.Exp, ember.ones(2))
    assert stale is not apply and stale.__wrapped__ is apply
    x = ember.ones(3)
    np.testing.assert_array_equal(older.apply(ops.elementwise.Exp, x).data, np.exp(x.data))  # no profile: the op
    with profiler.profile() as second:
        older.apply(ops.elementwise.Exp, x)
        older.apply(ops.elementwise.Exp, x)
    assert counts(first, "forward") == {"Exp": 1} and counts(second, "forward") == {"Exp": 2}


def test_an_op_defined_during_the_profile_is_timed_and_no_op_class_is_touched():
    before = hook_targets()
    with profiler.profile() as prof:

        class Twice(Function):
            def forward(ctx, x):
                return x * 2

            def backward(ctx, g):
                return g * 2

        original = Twice.__dict__["backward"]
        x = ember.ones(3, requires_grad=True)
        y = apply(Twice, x)
        y.sum().backward()
        assert Twice.__dict__["backward"] is original  # backward is timed from the walk, not by wrapping classes
        assert all(cls.__dict__["backward"] is fn for (cls, name), fn in before.items()
                   if isinstance(cls, type) and name == "backward")
    assert counts(prof, "forward")["Twice"] == 1 and counts(prof, "backward")["TwiceBackward"] == 1
    assert_hooks_gone(before)


def test_a_graph_built_before_the_profile_is_timed_when_walked_inside_it():
    x = ember.ones(3, requires_grad=True)
    loss = (x.exp() * 2.0).sum()
    with profiler.profile(record_shapes=True) as prof:
        loss.backward()
    assert counts(prof, "forward") == {}
    assert counts(prof, "backward") == {"SumBackward": 1, "MulScalarBackward": 1, "ExpBackward": 1}
    shapes = {e.name: e.input_shapes for e in prof.events() if e.kind == "backward"}
    assert shapes["SumBackward"] == [[]] and shapes["ExpBackward"] == [[3]]  # the gradient each received


def test_the_walk_observer_is_there_only_inside_the_profile():
    before = list(autograd.walk_observers)
    with profiler.profile():
        assert len(autograd.walk_observers) == len(before) + 1
    assert autograd.walk_observers == before
    with pytest.raises(ZeroDivisionError), profiler.profile():
        1 / 0  # noqa: B018
    assert autograd.walk_observers == before


def test_nested_profiles_are_refused():
    before = hook_targets()
    with profiler.profile() as outer:
        with pytest.raises(RuntimeError, match="already running; nested profiles are not supported"):
            with profiler.profile():
                pass
        ember.ones(2).exp()
    assert counts(outer, "forward") == {"Exp": 1}
    assert_hooks_gone(before)
    with pytest.raises(RuntimeError, match="already recorded; create a new one"):
        with outer:
            pass
    with pytest.raises(RuntimeError, match="not running"):
        outer.step()


# ------------------------------------------------------------------------------------------ the command
@pytest.mark.parametrize("model, batch", [("mlp", 4), ("lenet", 2), ("kan", 2), ("gpt", 1)])
def test_cli_profiles_each_model(model, batch, tmp_path, capsys):
    trace = tmp_path / "out" / f"{model}.json"
    before = hook_targets()
    assert main(["profile", model, "--steps", "2", "--batch-size", str(batch), "--trace", str(trace),
                 "--sort-by", "count", "--row-limit", "5"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].split()[0] == "Name" and len([line for line in lines[3:] if not line.startswith("---")]) >= 5
    assert "Self CPU time total:" in out and "Peak memory of a step" in out
    assert f"{model}, batch {batch}: 2 profiled steps" in out
    events = json.loads(trace.read_text())["traceEvents"]
    assert {e["cat"] for e in events if e["ph"] == "X"} == {"forward", "backward", "region", "step"}
    assert sum(e["name"].startswith("ProfilerStep#") for e in events) == 2
    assert_hooks_gone(before)


def test_cli_refuses_a_trace_path_that_is_a_folder_before_profiling(tmp_path, capsys):
    assert main(["profile", "mlp", "--steps", "1", "--trace", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "is a directory" in captured.err and "Self CPU" not in captured.out


def test_cli_refuses_an_unknown_sort_key(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "mlp", "--sort-by", "cuda_time_total"])
    assert exit_info.value.code == 2 and "invalid choice: 'cuda_time_total'" in capsys.readouterr().err
