"""Dataset registry against a real HTTP server on 127.0.0.1: lookup order, verified atomic downloads, failures.

A test-only dataset "ember-test-toy" (IDX, 3 classes) is added to the registry with the checksums
of the files the server holds; $EMBER_CACHE_DIR points into tmp_path, so the real cache is never touched.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ember.data import DATASETS, DatasetError, DatasetNotFoundError, load, locate, registry, search_paths
from ember.data.registry import IDX_FILES, Checksum, DatasetInfo

TOY = "ember-test-toy"
RNG = np.random.default_rng(0)
TRAIN_X = RNG.integers(0, 256, size=(6, 4, 4), dtype=np.uint8)
TRAIN_Y = np.array([0, 1, 2, 2, 1, 0], dtype=np.uint8)
TEST_X = RNG.integers(0, 256, size=(3, 4, 4), dtype=np.uint8)
TEST_Y = np.array([2, 0, 1], dtype=np.uint8)
TOY_ARRAYS = dict(zip(IDX_FILES, (TRAIN_X, TRAIN_Y, TEST_X, TEST_Y)))
TRAIN_IMAGES = "/ember-test-toy/train-images-idx3-ubyte.gz"


@dataclass
class Server:
    """A static file server whose handler records every request path and can cut bodies short."""

    root: Path
    url: str = ""
    requests: list[str] = field(default_factory=list)
    truncate: dict[str, int] = field(default_factory=dict)  # request path -> bytes actually sent


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    state = Server(tmp_path / "www")
    state.root.mkdir()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state.requests.append(self.path)
            file = (state.root / self.path.lstrip("/")).resolve()
            if not file.is_relative_to(state.root) or not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: state.truncate.get(self.path, len(body))])

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def sha256_content(idx_bytes):
    """sha256_content(array): the SHA-256 of the array's IDX encoding, as the registry's content checksums are."""
    return lambda array: hashlib.sha256(idx_bytes(array)).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch, sha256_content) -> Path:
    """An empty cache in tmp_path, no $EMBER_DATA, and the toy dataset in the registry."""
    root = tmp_path / "cache"
    monkeypatch.setenv("EMBER_CACHE_DIR", str(root))
    monkeypatch.delenv("EMBER_DATA", raising=False)
    monkeypatch.delenv("EMBER_DATASET_MIRROR", raising=False)
    checksums = {f"{n}.gz": Checksum("sha256", sha256_content(array), "content") for n, array in TOY_ARRAYS.items()}
    monkeypatch.setitem(DATASETS, TOY, DatasetInfo(TOY, "idx", IDX_FILES, (), checksums, num_classes=3))
    return root


@pytest.fixture
def mirror(server, cache, monkeypatch, write_idx) -> Server:
    """The server holding good copies of the toy files, set as $EMBER_DATASET_MIRROR."""
    write_toy(server.root / TOY, write_idx)
    monkeypatch.setenv("EMBER_DATASET_MIRROR", server.url)
    return server


def write_toy(folder: Path, write_idx, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in TOY_ARRAYS.items():
        write_idx(folder / (f"{name}.gz" if gz else name), array, gz=gz)


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder`` (hidden ones included), relative; an absent folder has none."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# ----------------------------------------------------------------------------- lookup


def test_search_paths_order(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("EMBER_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "flag").mkdir()
    assert search_paths("mnist", tmp_path / "flag") == [  # an explicit --data-dir replaces $EMBER_DATA
        tmp_path / "flag" / "mnist",
        tmp_path / "flag",
        tmp_path / "cache" / "mnist",
        Path("/usr/share/datasets/mnist"),
    ]
    assert search_paths("mnist") == [tmp_path / "env" / "mnist", tmp_path / "cache" / "mnist",
                                     Path("/usr/share/datasets/mnist")]
    monkeypatch.delenv("EMBER_DATA")
    monkeypatch.delenv("EMBER_CACHE_DIR")
    assert search_paths("mnist") == [Path.home() / ".cache/ember/datasets/mnist", Path("/usr/share/datasets/mnist")]


@pytest.mark.parametrize("layout", ["data_dir/name", "data_dir", "EMBER_DATA", "raw files"])
def test_local_files_take_precedence(tmp_path, mirror, monkeypatch, write_idx, layout):
    local = tmp_path / "local"
    data_dir = local
    if layout == "data_dir/name":
        write_toy(local / TOY, write_idx)
    elif layout == "data_dir":
        write_toy(local, write_idx)
    elif layout == "EMBER_DATA":
        write_toy(local / TOY, write_idx)
        monkeypatch.setenv("EMBER_DATA", str(local))
        data_dir = None
    else:
        write_toy(local / TOY, write_idx, gz=False)
    images, labels = load(TOY, "train", data_dir=data_dir)
    np.testing.assert_array_equal(images, TRAIN_X)
    np.testing.assert_array_equal(labels, TRAIN_Y)
    assert mirror.requests == []
    assert files_under(Path(registry.cache_dir())) == []


def test_data_dir_beats_ember_data(tmp_path, mirror, monkeypatch, write_idx):
    write_toy(tmp_path / "env" / TOY, write_idx)
    write_toy(tmp_path / "flag" / TOY, write_idx)
    monkeypatch.setenv("EMBER_DATA", str(tmp_path / "env"))
    found = locate(TOY, "t10k-labels-idx1-ubyte", data_dir=tmp_path / "flag")
    assert found == tmp_path / "flag" / TOY / "t10k-labels-idx1-ubyte.gz"
    assert locate(TOY, "t10k-labels-idx1-ubyte") == tmp_path / "env" / TOY / "t10k-labels-idx1-ubyte.gz"
    assert mirror.requests == []


def test_unknown_dataset_and_file(cache):
    with pytest.raises(DatasetError, match="unknown dataset 'mnsit'; known datasets: .*mnist"):
        locate("mnsit", "train-images-idx3-ubyte")
    with pytest.raises(DatasetError, match=f"{TOY}: no file named '../../etc/passwd'"):
        locate(TOY, "../../etc/passwd")
    with pytest.raises(DatasetError, match="unknown split 'val'"):
        load(TOY, "val")


# ----------------------------------------------------------------------------- downloads


def test_download_lands_in_cache_and_loads(mirror, cache):
    images, labels = load(TOY, "test")
    np.testing.assert_array_equal(images, TEST_X)
    np.testing.assert_array_equal(labels, TEST_Y)
    assert labels.dtype == np.int64
    assert sorted(mirror.requests) == [f"/{TOY}/t10k-images-idx3-ubyte.gz", f"/{TOY}/t10k-labels-idx1-ubyte.gz"]
    assert files_under(cache) == [f"{TOY}/t10k-images-idx3-ubyte.gz", f"{TOY}/t10k-labels-idx1-ubyte.gz"]
    load(TOY, "test")  # now from the cache
    assert len(mirror.requests) == 2


def test_content_checksum_accepts_a_recompressed_copy(mirror, cache):
    """The checksum covers the decompressed bytes, so a copy gzipped differently still verifies."""
    path = mirror.root / TOY / "train-images-idx3-ubyte.gz"
    content = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(content, compresslevel=1, mtime=12345))
    assert locate(TOY, "train-images-idx3-ubyte") == cache / TOY / "train-images-idx3-ubyte.gz"


def test_download_checksum_rejects_a_recompressed_copy(mirror, cache, monkeypatch):
    """A checksum of the bytes as served (KMNIST, CIFAR-10) verifies those bytes exactly."""
    path = mirror.root / TOY / "train-labels-idx1-ubyte.gz"
    served = path.read_bytes()
    info = DATASETS[TOY]
    checksums = dict(info.checksums, **{path.name: Checksum("md5", hashlib.md5(served).hexdigest(), "download")})
    monkeypatch.setitem(DATASETS, TOY, dataclasses.replace(info, checksums=checksums))
    assert locate(TOY, "train-labels-idx1-ubyte").read_bytes() == served
    (cache / TOY / path.name).unlink()
    path.write_bytes(gzip.compress(gzip.decompress(served), compresslevel=1, mtime=12345))
    with pytest.raises(DatasetNotFoundError, match="of the file as served"):
        locate(TOY, "train-labels-idx1-ubyte")
    assert files_under(cache) == []


def test_corrupted_file_is_rejected_and_not_kept(mirror, cache, write_idx, sha256_content):
    bad = TRAIN_X.copy()
    bad[2, 1, 3] ^= 0x40
    write_idx(mirror.root / TOY / "train-images-idx3-ubyte.gz", bad, gz=True)
    with pytest.raises(DatasetNotFoundError) as info:
        locate(TOY, "train-images-idx3-ubyte")
    message = str(info.value)
    assert f"{mirror.url}{TRAIN_IMAGES}: checksum mismatch for train-images-idx3-ubyte.gz" in message
    expected, actual = sha256_content(TRAIN_X), sha256_content(bad)
    assert f"expected sha256 {expected} of the decompressed content, got {actual}" in message
    assert files_under(cache) == []


def test_short_body_is_rejected_and_not_kept(mirror, cache):
    mirror.truncate[TRAIN_IMAGES] = 10
    size = (mirror.root / TRAIN_IMAGES.lstrip("/")).stat().st_size
    with pytest.raises(DatasetNotFoundError) as info:
        locate(TOY, "train-images-idx3-ubyte")
    assert f"{mirror.url}{TRAIN_IMAGES}: truncated download: the server announced {size} bytes but sent 10" in str(
        info.value
    )
    assert files_under(cache) == []


def test_cut_gzip_is_rejected_and_not_kept(mirror, cache):
    path = mirror.root / TRAIN_IMAGES.lstrip("/")
    path.write_bytes(path.read_bytes()[:-12])  # drops the gzip trailer and some data; Content-Length agrees
    with pytest.raises(DatasetNotFoundError) as info:
        locate(TOY, "train-images-idx3-ubyte")
    assert f"{mirror.url}{TRAIN_IMAGES}: train-images-idx3-ubyte.gz: truncated or corrupt gzip stream" in str(
        info.value
    )
    assert files_under(cache) == []


def test_next_mirror_after_a_404(mirror, cache, monkeypatch):
    monkeypatch.setenv("EMBER_DATASET_MIRROR", f"{mirror.url}/gone, {mirror.url}")
    path = locate(TOY, "train-labels-idx1-ubyte")
    assert path == cache / TOY / "train-labels-idx1-ubyte.gz"
    assert mirror.requests == [f"/gone/{TOY}/train-labels-idx1-ubyte.gz", f"/{TOY}/train-labels-idx1-ubyte.gz"]


def test_next_mirror_after_a_corrupt_copy(mirror, cache, monkeypatch, write_idx):
    (mirror.root / "bad" / TOY).mkdir(parents=True)
    write_idx(mirror.root / "bad" / TOY / "train-labels-idx1-ubyte.gz", TRAIN_Y[::-1].copy(), gz=True)
    monkeypatch.setenv("EMBER_DATASET_MIRROR", f"{mirror.url}/bad {mirror.url}")
    _, labels = load(TOY, "train")
    np.testing.assert_array_equal(labels, TRAIN_Y)


def test_nothing_reachable_lists_everything(tmp_path, cache, monkeypatch):
    dead = closed_port_url()
    monkeypatch.setenv("EMBER_DATASET_MIRROR", f"{dead}/a {dead}/b")
    monkeypatch.setenv("EMBER_DATA", str(tmp_path / "env"))
    (tmp_path / "flag").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load(TOY, "train", data_dir=tmp_path / "flag")
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    for folder in search_paths(TOY, tmp_path / "flag"):
        assert f"  {folder}\n" in message
    assert len(search_paths(TOY, tmp_path / "flag")) == 4
    assert f"{dead}/a/{TOY}/train-images-idx3-ubyte.gz: cannot connect:" in message
    assert f"{dead}/b/{TOY}/train-images-idx3-ubyte.gz: cannot connect:" in message
    assert "--data-dir DIR" in message and "EMBER_DATA=DIR" in message
    assert f"DIR/{TOY}/train-images-idx3-ubyte.gz" in message
    assert files_under(cache) == []
    assert not (cache / TOY).exists()  # the failed download leaves no empty dataset folder


def test_an_explicit_data_dir_must_exist_and_wins_over_ember_data(tmp_path, cache, monkeypatch, write_idx):
    write_toy(tmp_path / "env" / TOY, write_idx)
    monkeypatch.setenv("EMBER_DATA", str(tmp_path / "env"))
    assert load(TOY, "train")[1].tolist() == TRAIN_Y.tolist()  # $EMBER_DATA is the default
    with pytest.raises(DatasetNotFoundError, match=r"--data-dir .*nonexistent: no such directory"):
        load(TOY, "train", data_dir=tmp_path / "nonexistent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="empty"):
        load(TOY, "train", data_dir=tmp_path / "empty", download=False)


def test_download_disabled(mirror, cache):
    with pytest.raises(DatasetNotFoundError, match=r"Downloading is disabled \(download=False\)"):
        load(TOY, "train", download=False)
    assert mirror.requests == []


def test_canonical_mirrors_when_no_override(monkeypatch):
    monkeypatch.delenv("EMBER_DATASET_MIRROR", raising=False)
    info = DATASETS["mnist"]
    assert registry.mirror_urls(info, "t10k-labels-idx1-ubyte.gz") == [
        "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
        "https://storage.googleapis.com/cvdf-datasets/mnist/t10k-labels-idx1-ubyte.gz",
    ]
    assert registry.mirror_urls(DATASETS["cifar10"], "cifar-10-binary.tar.gz") == [
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    ]


def test_registry_table():
    assert set(DATASETS) == {"mnist", "fashion-mnist", "kmnist", "cifar10", "tinyshakespeare"}
    for name in ("mnist", "fashion-mnist", "kmnist"):
        info = DATASETS[name]
        assert info.format == "idx" and set(info.checksums) == {f"{f}.gz" for f in IDX_FILES}
        assert all(c.algorithm == "sha256" and len(c.digest) == 64 for c in info.checksums.values())
    assert {c.of for c in DATASETS["mnist"].checksums.values()} == {"content"}
    assert {c.of for c in DATASETS["kmnist"].checksums.values()} == {"download"}
    assert DATASETS["cifar10"].checksums == {
        "cifar-10-binary.tar.gz": Checksum("md5", "c32a1d4ab5d03f1284b67883e8d87530", "download")
    }


# ----------------------------------------------------------------------------- CIFAR-10 from its archive


def test_cifar10_archive_download(server, cache, monkeypatch, write_cifar, tmp_path):
    """The batches come out of one verified tar.gz; only they are kept, and nothing else is unpacked."""
    batches = tmp_path / "batches"
    batches.mkdir()
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for i, name in enumerate(names):
        write_cifar(batches / name, [i], np.full((1, 3, 32, 32), 10 * i, np.uint8))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in names:
            tar.add(batches / name, arcname=f"cifar-10-batches-bin/{name}")
        tar.add(batches / names[0], arcname="cifar-10-batches-bin/readme.html")
    archive = buffer.getvalue()
    (server.root / "cifar10").mkdir()
    (server.root / "cifar10" / "cifar-10-binary.tar.gz").write_bytes(archive)
    checksum = Checksum("md5", hashlib.md5(archive).hexdigest(), "download")
    info = dataclasses.replace(DATASETS["cifar10"], checksums={"cifar-10-binary.tar.gz": checksum})
    monkeypatch.setitem(DATASETS, "cifar10", info)
    monkeypatch.setenv("EMBER_DATASET_MIRROR", server.url)

    images, labels = load("cifar10", "train")
    assert images.shape == (5, 3, 32, 32) and labels.tolist() == [0, 1, 2, 3, 4]
    assert images[:, 2, 31, 31].tolist() == [0, 10, 20, 30, 40]
    assert files_under(cache) == sorted(f"cifar10/{n}" for n in names)
    images, labels = load("cifar10", "test")
    assert labels.tolist() == [5] and images.max() == 50
    assert server.requests == ["/cifar10/cifar-10-binary.tar.gz"]


def test_cifar10_corrupt_archive_leaves_nothing(server, cache, monkeypatch):
    (server.root / "cifar10").mkdir()
    (server.root / "cifar10" / "cifar-10-binary.tar.gz").write_bytes(b"not an archive")
    monkeypatch.setenv("EMBER_DATASET_MIRROR", server.url)
    expected = "expected md5 c32a1d4ab5d03f1284b67883e8d87530 of the file as served, got"
    with pytest.raises(DatasetNotFoundError, match=expected):
        load("cifar10", "test")
    assert files_under(cache) == []


# ----------------------------------------------------------------------------- uncompressed text datasets


def test_a_plain_text_dataset_downloads_verified_and_uncompressed(server, cache, monkeypatch):
    body = b"First Citizen:\nBefore we proceed any further, hear me speak.\n"
    monkeypatch.setitem(DATASETS, "toy-text", DatasetInfo(
        "toy-text", "text", ("input.txt",), (), {"input.txt": Checksum("sha256", hashlib.sha256(body).hexdigest(),
                                                                       "content")}, num_classes=0, compressed=False))
    (server.root / "toy-text").mkdir()
    (server.root / "toy-text" / "input.txt").write_bytes(body)
    monkeypatch.setenv("EMBER_DATASET_MIRROR", server.url)
    path = locate("toy-text", "input.txt")
    assert path == cache / "toy-text" / "input.txt" and path.read_bytes() == body
    assert server.requests == ["/toy-text/input.txt"]
    with pytest.raises(DatasetError, match="text corpus"):
        load("toy-text")
    (server.root / "toy-text" / "input.txt").write_bytes(body[:-5])
    path.unlink()
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch for input.txt"):
        locate("toy-text", "input.txt")
    assert files_under(cache) == []


def test_tinyshakespeare_is_registered_with_its_checksum():
    info = DATASETS["tinyshakespeare"]
    assert info.remote_name("input.txt") == "input.txt"
    assert info.checksums["input.txt"].digest.startswith("86c4e6aa")
