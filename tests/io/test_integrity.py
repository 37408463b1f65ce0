"""Files that lose nothing and load nothing damaged: content hashes, orphaned temporaries, permissions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ember
from ember.io import CheckpointError, load_into, load_model, read_checkpoint, save_checkpoint
from ember.io.atomic import atomic_path, orphaned_temporaries, write_text_atomic
from ember.io.train_state import load_train_state, read_train_state, save_train_state
from ember.kan.baked import BakedKAN, BakedKANError
from ember.models import KAN, MLP, KANConfig, MLPConfig


def tensor_ranges(path) -> dict[str, tuple[int, int]]:
    """Absolute byte ranges of each tensor's data in a safetensors file, from its header."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    return {k: (8 + n + v["data_offsets"][0], 8 + n + v["data_offsets"][1])
            for k, v in header.items() if k != "__metadata__"}


def flip_bit(path, name: str, rng) -> None:
    start, end = tensor_ranges(path)[name]
    data = bytearray(path.read_bytes())
    at = int(rng.integers(start, end))
    data[at] ^= 1 << int(rng.integers(0, 8))
    path.write_bytes(bytes(data))


@pytest.fixture
def mlp():
    ember.manual_seed(3)
    return MLP(MLPConfig(sizes=(12, 7, 3)))


def test_every_bit_flip_in_any_tensor_is_refused_naming_file_and_tensor(tmp_path, mlp):
    rng = np.random.default_rng(0)
    clean = save_checkpoint(tmp_path / "clean.safetensors", mlp).read_bytes()
    names = sorted(mlp.state_dict())
    for trial in range(24):
        name = names[trial % len(names)]
        path = tmp_path / f"flip{trial}.safetensors"
        path.write_bytes(clean)
        flip_bit(path, name, rng)
        target = MLP(MLPConfig(sizes=(12, 7, 3)))
        before = {k: v.numpy().copy() for k, v in target.state_dict().items()}
        with pytest.raises(CheckpointError, match=rf"flip{trial}\.safetensors: tensor '{name}' is corrupt"):
            load_into(target, path)
        for k, v in target.state_dict().items():  # a refused load changes nothing
            np.testing.assert_array_equal(v.numpy(), before[k])
        with pytest.raises(CheckpointError, match=name):
            load_model(path)


def test_no_verify_loads_the_damaged_file_as_it_is(tmp_path, mlp):
    path = save_checkpoint(tmp_path / "m.safetensors", mlp)
    flip_bit(path, "net.1.weight", np.random.default_rng(1))
    arrays, _ = read_checkpoint(path, verify=False)
    original = mlp.state_dict()["net.1.weight"].numpy()
    assert (arrays["net.1.weight"] != original).sum() == 1
    model, _ = load_model(path, verify=False)
    np.testing.assert_array_equal(model.state_dict()["net.1.weight"].numpy(), arrays["net.1.weight"])


def test_hashes_cover_added_and_removed_tensors(tmp_path, mlp):
    from safetensors.numpy import save_file

    path = save_checkpoint(tmp_path / "m.safetensors", mlp)
    arrays, meta = read_checkpoint(path)
    raw_meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    fewer = {k: v for k, v in arrays.items() if k != "net.1.bias"}
    save_file(fewer, str(tmp_path / "fewer.safetensors"), metadata=raw_meta)
    with pytest.raises(CheckpointError, match=r"missing \['net.1.bias'\]"):
        read_checkpoint(tmp_path / "fewer.safetensors")
    del raw_meta["sha256"]
    save_file(arrays, str(tmp_path / "stripped.safetensors"), metadata=raw_meta)
    with pytest.raises(CheckpointError, match="stripped.safetensors: no content hashes"):
        read_checkpoint(tmp_path / "stripped.safetensors")
    raw_meta["format_version"] = "1"  # files from before hashes existed still load
    save_file(arrays, str(tmp_path / "v1.safetensors"), metadata=raw_meta)
    loaded, _ = read_checkpoint(tmp_path / "v1.safetensors")
    assert set(loaded) == set(arrays)


def test_train_state_bit_flips_name_the_tensor_and_touch_nothing(tmp_path, mlp):
    opt = ember.optim.AdamW(mlp.parameters(), lr=1e-2)
    x = ember.tensor(np.random.default_rng(0).standard_normal((5, 12)).astype(np.float32))
    mlp(x).sum().backward()
    opt.step()
    path = save_train_state(tmp_path / "state.safetensors", mlp, opt, {"iter": 1})
    clean = path.read_bytes()
    rng = np.random.default_rng(2)
    for name in sorted(tensor_ranges(path)):
        path.write_bytes(clean)
        flip_bit(path, name, rng)
        target = MLP(MLPConfig(sizes=(12, 7, 3)))
        target_opt = ember.optim.AdamW(target.parameters(), lr=1e-2)
        before = {k: v.numpy().copy() for k, v in target.state_dict().items()}
        with pytest.raises(CheckpointError, match=rf"state\.safetensors: tensor '{name}' is corrupt"):
            load_train_state(path, target, target_opt)
        assert target_opt.state_dict()["state"] == {}
        for k, v in target.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), before[k])
    arrays, _, state = read_train_state(path, verify=False)
    assert state == {"iter": 1}


def test_baked_kan_bit_flip_is_refused(tmp_path):
    ember.manual_seed(0)
    baked = BakedKAN.from_model(KAN(KANConfig(widths=(3, 4, 2))))
    path = baked.save(tmp_path / "b.safetensors")
    flip_bit(path, "layers.1.weight", np.random.default_rng(4))
    with pytest.raises(BakedKANError, match="b.safetensors: tensor 'layers.1.weight' is corrupt"):
        BakedKAN.load(path)
    assert BakedKAN.load(path, verify=False).widths == (3, 4, 2)


# -- atomic writes ---------------------------------------------------------------------------------
KILLED_WRITER = """
import os, sys
from ember.io.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"x" * 4096)
    os._exit(9)  # killed mid-write: no cleanup runs
"""


def test_orphans_of_killed_writes_are_removed_by_the_next_save(tmp_path, mlp):
    target = tmp_path / "m.safetensors"
    seen = set()
    for _ in range(3):  # each killed write leaves one temporary and removes the one before it
        done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], capture_output=True)
        assert done.returncode == 9, done.stderr
        orphans = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(orphans) == 1 and orphans[0] not in seen and not target.exists()
        assert orphaned_temporaries(tmp_path) == orphans
        seen.add(orphans[0])
    unrelated = tmp_path / ".notes.tmp"  # not ours: never touched
    unrelated.write_text("keep")
    save_checkpoint(target, mlp)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.tmp", "m.safetensors"]


def test_a_write_in_progress_is_not_an_orphan(tmp_path):
    with atomic_path(tmp_path / "a.txt") as tmp_a:
        tmp_a.write_text("a")
        write_text_atomic(tmp_path / "b.txt", "b")  # cleans the folder, must spare a.txt's temporary
        assert tmp_a.exists()
        assert orphaned_temporaries(tmp_path) == []
    assert (tmp_path / "a.txt").read_text() == "a"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_live_process_temporary_is_kept(tmp_path):
    """A temporary of another live process on this host (a concurrent save) is not deleted."""
    from ember.io.atomic import _host

    live = tmp_path / f".x.safetensors.{_host()}-{os.getppid()}.abcd1234.tmp"
    live.write_bytes(b"in progress")
    write_text_atomic(tmp_path / "y.txt", "y")
    assert live.exists()


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "a.txt", "a")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
    write_text_atomic(tmp_path / "b.txt", "b")
    assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o666 & ~old


def test_writing_onto_a_directory_is_refused_and_keeps_it(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "inside").write_text("kept")
    with pytest.raises(IsADirectoryError, match="ckpt: is a directory"):
        write_text_atomic(folder, "x")
    assert (folder / "inside").read_text() == "kept"
