"""Training scalars: TensorBoard event files read back by TensorBoard's own reader, the CSV beside them, a resumed
run that appends without showing a step twice, the step meter, the curves' PNG, and the missing extras."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from ember.nn import Parameter
from ember.optim import SGD
from ember.tensor import Tensor
from ember.train.plot import plot_training_curves
from ember.train.scalars import (
    CSV_FILE,
    EVENTS_PREFIX,
    StepMeter,
    TensorBoardSink,
    check_log_dir,
    lm_record_scalars,
    open_scalar_logger,
    read_scalars_csv,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tensorboard_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as TensorBoard's event reader shows the folder (purges applied)."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = accumulator.EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def raw_steps(folder, tag: str) -> list[int]:
    """Every step logged for ``tag`` in the folder's event files, purged or not, in file order."""
    loader = pytest.importorskip("tensorboard.backend.event_processing.event_file_loader")
    steps = []
    for path in sorted(folder.glob(EVENTS_PREFIX + "*")):
        for event in loader.EventFileLoader(str(path)).Load():
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return steps


def csv_scalars(folder) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for row in read_scalars_csv(folder / CSV_FILE):
        out.setdefault(row.tag, []).append((row.step, row.value))
    return out


def as_float32(series: dict[str, list[tuple[int, float]]]) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard keeps scalars as float32."""
    return {tag: [(step, float(np.float32(v))) for step, v in points] for tag, points in series.items()}


RECORDS = [  # (step, scalars): what a loop would log, None where it had nothing
    (1, {"train/loss": 2.302585092994046, "lr": 1e-3, "grad_norm": 0.7071067811865476}),
    (2, {"train/loss": 1.25, "lr": 5e-4, "grad_norm": None}),
    (3, {"train/loss": 0.1 + 0.2, "lr": 1e-4, "test/accuracy": 0.9375}),
]
EXPECTED = {
    "train/loss": [(1, 2.302585092994046), (2, 1.25), (3, 0.1 + 0.2)],
    "lr": [(1, 1e-3), (2, 5e-4), (3, 1e-4)],
    "grad_norm": [(1, 0.7071067811865476)],
    "test/accuracy": [(3, 0.9375)],
}


def test_scalars_are_read_back_by_tensorboard_and_from_the_csv(tmp_path):
    pytest.importorskip("tensorboardX")
    with open_scalar_logger(tmp_path / "logs") as logger:
        for step, scalars in RECORDS:
            logger.log(step, scalars)
    assert tensorboard_scalars(tmp_path / "logs") == as_float32(EXPECTED)
    assert csv_scalars(tmp_path / "logs") == EXPECTED  # the CSV keeps every bit of the float64 value
    assert logger.series == EXPECTED
    rows = read_scalars_csv(tmp_path / "logs" / CSV_FILE)
    assert len({r.wall_time for r in rows}) == len(RECORDS)  # one wall time per record, shared by its tags


def test_records_reach_the_csv_before_the_logger_is_closed(tmp_path):
    logger = open_scalar_logger(tmp_path)
    logger.log(4, {"train/loss": 0.5})
    assert csv_scalars(tmp_path) == {"train/loss": [(4, 0.5)]}  # flushed: a crash now would keep it
    logger.close()


def test_a_running_tensorboard_sees_the_events_within_seconds_before_the_logger_closes(tmp_path):
    pytest.importorskip("tensorboardX")
    logger = open_scalar_logger(tmp_path)
    logger.log(4, {"train/loss": 0.5})
    deadline = time.monotonic() + 10 * TensorBoardSink.FLUSH_SECONDS
    while tensorboard_scalars(tmp_path) != {"train/loss": [(4, 0.5)]} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tensorboard_scalars(tmp_path) == {"train/loss": [(4, 0.5)]}  # written by the writer's own thread
    logger.close()


def test_without_tensorboardx_only_the_csv_is_written_with_a_warning_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # `import tensorboardX` now fails as if not installed
    with pytest.warns(RuntimeWarning, match=r"tensorboardX is not installed.*pip install 'ember\[tensorboard\]'"):
        logger = open_scalar_logger(tmp_path / "logs")
    with logger:
        for step, scalars in RECORDS:
            logger.log(step, scalars)
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [CSV_FILE]
    assert csv_scalars(tmp_path / "logs") == EXPECTED


def test_a_resumed_run_appends_after_its_saved_step_and_no_step_shows_twice(tmp_path):
    pytest.importorskip("tensorboardX")
    folder = tmp_path / "logs"
    with open_scalar_logger(folder) as first:  # an interrupted run: logged steps 1..7, its last save was at 5
        for step in range(1, 8):
            first.log(step, {"train/loss": 10.0 + step})
    with open_scalar_logger(folder, resume_after=5) as resumed:
        for step in range(6, 10):
            resumed.log(step, {"train/loss": 20.0 + step})
    expected = [(s, 10.0 + s) for s in range(1, 6)] + [(s, 20.0 + s) for s in range(6, 10)]
    assert raw_steps(folder, "train/loss") == [1, 2, 3, 4, 5, 6, 7, 6, 7, 8, 9]  # both runs' 6 and 7 are on disk
    assert tensorboard_scalars(folder) == {"train/loss": expected}  # but the reader shows each step once
    assert csv_scalars(folder) == {"train/loss": expected}
    assert resumed.replaced == []


def test_a_new_run_replaces_an_earlier_runs_logs_and_nothing_else(tmp_path):
    pytest.importorskip("tensorboardX")
    folder = tmp_path / "logs"
    with open_scalar_logger(folder) as first:
        first.log(1, {"train/loss": 1.0})
        first.log(2, {"train/loss": 0.5})
    (folder / "notes.txt").write_text("mine")
    earlier = sorted(p.name for p in folder.iterdir() if p.name != "notes.txt")
    with open_scalar_logger(folder) as second:
        second.log(1, {"train/loss": 3.0})
    assert [p.name for p in second.replaced] == earlier
    assert tensorboard_scalars(folder) == {"train/loss": [(1, 3.0)]}
    assert csv_scalars(folder) == {"train/loss": [(1, 3.0)]}
    assert (folder / "notes.txt").read_text() == "mine"


def test_a_last_csv_line_cut_short_is_dropped_with_a_warning_and_damage_elsewhere_raises(tmp_path):
    path = tmp_path / CSV_FILE
    path.write_text("step,tag,value,wall_time\n1,train/loss,0.5,1700000000.0\n2,train/loss,0.2")
    with pytest.warns(RuntimeWarning, match="incomplete"):
        rows = read_scalars_csv(path)
    assert [(r.step, r.tag, r.value) for r in rows] == [(1, "train/loss", 0.5)]
    path.write_text("step,tag,value,wall_time\n1,train/loss,oops,1.0\n2,train/loss,0.2,2.0\n")
    with pytest.raises(ValueError, match=r"scalars.csv, line 2: expected step,tag,value,wall_time"):
        read_scalars_csv(path)
    path.write_text("a,b\n")
    with pytest.raises(ValueError, match="not a scalars file"):
        read_scalars_csv(path)


def test_a_log_dir_that_is_a_file_is_refused_naming_it(tmp_path):
    (tmp_path / "logs").write_text("")
    with pytest.raises(NotADirectoryError, match=r"--log-dir .*logs: exists and is not a directory"):
        check_log_dir(tmp_path / "logs")


def test_logging_to_tensorboard_does_not_import_torch(tmp_path):
    pytest.importorskip("tensorboardX")
    code = ("import sys; from ember.train.scalars import open_scalar_logger\n"
            f"with open_scalar_logger({str(tmp_path)!r}) as log: log.log(1, {{'train/loss': 0.5}})\n"
            "import tensorboardX\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert sys.modules['tensorboardX'].SummaryWriter\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert any(p.name.startswith(EVENTS_PREFIX) for p in tmp_path.iterdir())


def two_parameters():
    a = Parameter(Tensor(np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float64)))
    b = Parameter(Tensor(np.array([0.25, -1.0, 2.0], dtype=np.float64)))
    return a, b


def set_grads(params, grads) -> None:
    for p, g in zip(params, grads):
        p.grad = Tensor(np.array(g, dtype=np.float64))


def test_step_meter_measures_the_gradient_norm_and_lr_of_each_step_and_steps_as_the_optimizer(tmp_path):
    grads = [([[3.0, 0.0], [0.0, 4.0]], [0.0, 12.0, 0.0]), ([[1.0, 1.0], [1.0, 1.0]], [1.0, 1.0, 1.0])]
    measured, bare = two_parameters(), two_parameters()
    meter = StepMeter(SGD(measured, lr=0.1, momentum=0.9))
    reference = SGD(bare, lr=0.1, momentum=0.9)
    for g in grads:
        set_grads(measured, g)
        set_grads(bare, g)
        meter.step()
        reference.step()
    for p, q in zip(measured, bare):
        np.testing.assert_array_equal(p.numpy(), q.numpy())  # the meter only watched
    norms = [math.sqrt(sum(np.square(np.asarray(x)).sum() for x in g)) for g in grads]  # 13 and sqrt(7)
    assert norms[0] == 13.0
    assert meter.take_grad_norm() == pytest.approx((norms[0] + norms[1]) / 2, rel=1e-12)
    assert meter.take_grad_norm() is None  # nothing since the last take
    assert meter.lr == 0.1
    assert meter.state_dict()["param_groups"] == reference.state_dict()["param_groups"]  # the optimizer's own
    meter.zero_grad()
    assert all(p.grad is None for p in measured)


def test_a_step_meter_told_not_to_measure_the_norm_reports_none():
    params = two_parameters()
    meter = StepMeter(SGD(params, lr=0.5), grad_norm=False)
    set_grads(params, ([[1.0, 0.0], [0.0, 0.0]], [0.0, 0.0, 0.0]))
    meter.step()
    assert meter.take_grad_norm() is None and meter.lr == 0.5


def test_an_lm_record_uses_its_own_gradient_norm_when_the_trainer_reports_one():
    params = two_parameters()
    meter = StepMeter(SGD(params, lr=0.5))
    set_grads(params, ([[3.0, 4.0], [0.0, 0.0]], [0.0, 0.0, 0.0]))
    meter.step()
    record = {"event": "train", "iter": 3, "loss": 1.5, "lr": 0.5, "tokens_per_s": 100.0, "ms_per_iter": 1.0}
    assert lm_record_scalars({**record, "grad_norm": 9.0}, meter)["grad_norm"] == 9.0
    assert lm_record_scalars(record, meter)["grad_norm"] == pytest.approx(5.0)
    assert lm_record_scalars({"event": "eval", "iter": 3, "train_loss": 1.0, "val_loss": 2.0, "lr": 0.1}) == {
        "train/eval_loss": 1.0, "val/loss": 2.0}  # no lr at an evaluation: it is the next step's


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # IHDR width, height


def test_the_plot_is_a_png_with_an_accuracy_panel_only_when_there_is_accuracy(tmp_path):
    pytest.importorskip("matplotlib")
    losses = {"train/loss": [(1, 2.0), (2, 1.0), (3, 0.5)], "lr": [(1, 1e-3), (2, 1e-3), (3, 1e-3)]}
    both = {**losses, "test/accuracy": [(1, 0.5), (2, 0.8), (3, 0.9)]}
    one_panel = plot_training_curves(losses, tmp_path / "loss.png", "epoch")
    two_panels = plot_training_curves(both, tmp_path / "both.png", "epoch")
    (w1, h1), (w2, h2) = png_size(one_panel), png_size(two_panels)
    assert h1 == h2 and w2 > 1.8 * w1  # a second panel of the same size beside the first
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left behind


def test_the_plot_refuses_series_without_loss_or_accuracy(tmp_path):
    with pytest.raises(ValueError, match=r"no loss or accuracy to draw \(tags: \['lr'\]\)"):
        plot_training_curves({"lr": [(1, 0.1)]}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_the_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"needs matplotlib: pip install 'ember\[plot\]'"):
        plot_training_curves({"train/loss": [(1, 1.0)]}, tmp_path / "x.png")


def test_the_csv_is_appended_to_by_one_run_and_each_tag_gets_one_row_per_step(tmp_path):
    with open_scalar_logger(tmp_path) as logger:
        for step in range(1, 4):
            logger.log(step, {"train/loss": 1.0 / step, "lr": 0.1})
    counts = Counter((r.tag, r.step) for r in read_scalars_csv(tmp_path / CSV_FILE))
    assert set(counts.values()) == {1} and len(counts) == 6
    assert (tmp_path / CSV_FILE).read_text().splitlines()[0] == "step,tag,value,wall_time"
