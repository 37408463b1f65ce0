"""Find the known datasets on disk, or download and verify them into the cache.

Lookup (first hit wins): ``--data-dir`` (as ``DIR/<name>/`` and ``DIR`` itself; it must exist, and when
given it replaces ``$EMBER_DATA``, which is only its default), else ``$EMBER_DATA/<name>``,
the cache ``~/.cache/ember/datasets/<name>`` (``$EMBER_CACHE_DIR`` moves it), and
``/usr/share/datasets/<name>`` (where Debian's dataset packages install). In each folder a file may
be gzipped (``<file>.gz``) or raw (``<file>``).

Downloads go to the cache, and reach their final name only once verified: the body is streamed
into a staging folder inside the destination folder, checked (length, gzip stream, checksum), and
then moved into place with ``os.replace``, which is atomic on one filesystem. On any failure the
staging folder is deleted, so an interrupted or corrupt download never leaves a file that a
later run would trust. ``$EMBER_DATASET_MIRROR`` (one or more base URLs, separated by spaces or
commas) replaces the canonical mirrors with servers laid out like a data folder:
``<base>/<name>/<file>.gz``.

Checksums, and why each dataset uses the kind it does:

- mnist, fashion-mnist: SHA-256 of the *decompressed* files, as recorded in the project's
  shared data README. Copies of these files are often recompressed (the project's own copies
  were), which changes the .gz bytes but not the content, so a digest of the content verifies
  every faithful copy, from any mirror.
- kmnist: SHA-256 of the *compressed* .gz files exactly as codh.rois.ac.jp serves them, as published
  by torchvision (pytorch/vision, torchvision/prototype/datasets/_builtin/mnist.py, ``KMNIST._CHECKSUMS``;
  torchvision's stable ``KMNIST`` lists MD5s of the same files). No digest of the decompressed
  content is published, so only the canonical .gz bytes verify.
- tinyshakespeare: SHA-256 of ``input.txt`` (from the project's shared data README), served
  uncompressed by Karpathy's char-rnn repository.
- cifar10: MD5 of ``cifar-10-binary.tar.gz`` as served, the only checksum its authors publish
  (https://www.cs.toronto.edu/~kriz/cifar.html). The six batch files are taken from the verified
  archive; MD5 is no defence against a forger, but it does catch corrupt and truncated downloads,
  and the transfer itself is over HTTPS.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import re
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tqdm import tqdm

from . import cifar
from .errors import DatasetError, DatasetNotFoundError
from .idx import GZIP_MAGIC, read_idx_pair

ENV_DATA = "EMBER_DATA"
ENV_CACHE = "EMBER_CACHE_DIR"
ENV_MIRROR = "EMBER_DATASET_MIRROR"
DEFAULT_CACHE = "~/.cache/ember/datasets"
SYSTEM_DIR = Path("/usr/share/datasets")
TIMEOUT_S = 30.0
CHUNK_BYTES = 1 << 20
USER_AGENT = "ember-datasets (Python urllib)"


@dataclass(frozen=True)
class Checksum:
    """An expected digest and what it covers.

    ``of="content"``: the decompressed bytes, so recompressed copies still verify.
    ``of="download"``: the bytes exactly as the mirror serves them, for datasets whose publishers
    give only that.
    """

    algorithm: str  # a hashlib name: "sha256" or "md5"
    digest: str
    of: str  # "content" or "download"


@dataclass(frozen=True)
class DatasetInfo:
    """One entry of the registry: what the files are called, where to get them, how to check them."""

    name: str
    format: str  # "idx" (MNIST-like: images and labels files), "cifar10" (binary batches) or "text"
    files: tuple[str, ...]  # the files as stored locally, without ".gz"
    mirrors: tuple[str, ...]  # base URLs; a file's URL is base + its remote name
    checksums: dict[str, Checksum]  # keyed by remote name: "<file>.gz", or the archive's name
    archive: str | None = None  # when set, every file comes out of this one archive
    archive_dir: str = ""  # the folder inside the archive holding the files (also searched locally)
    num_classes: int = 10
    compressed: bool = True  # the mirror serves "<file>.gz"; False: the file itself (plain text)

    def remote_name(self, filename: str) -> str:
        """The name a mirror serves ``filename`` under (the archive's, when there is one)."""
        return self.archive or (f"{filename}.gz" if self.compressed else filename)


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_checksums(of: str, *sha256: str) -> dict[str, Checksum]:
    return {f"{name}.gz": Checksum("sha256", digest, of) for name, digest in zip(IDX_FILES, sha256, strict=True)}


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        "idx",
        IDX_FILES,
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        _idx_checksums(
            "content",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        "idx",
        IDX_FILES,
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        _idx_checksums(
            "content",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ),
    "kmnist": DatasetInfo(
        "kmnist",
        "idx",
        IDX_FILES,
        ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        _idx_checksums(
            "download",
            "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        ),
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        "cifar10",
        cifar.TRAIN_FILES + cifar.TEST_FILES,
        ("https://www.cs.toronto.edu/~kriz/",),
        {"cifar-10-binary.tar.gz": Checksum("md5", "c32a1d4ab5d03f1284b67883e8d87530", "download")},
        archive="cifar-10-binary.tar.gz",
        archive_dir=cifar.ARCHIVE_DIR,
    ),
    "tinyshakespeare": DatasetInfo(
        "tinyshakespeare",
        "text",
        ("input.txt",),
        ("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/",),
        {"input.txt": Checksum("sha256", "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                               "content")},
        num_classes=0,
        compressed=False,
    ),
}


# ----------------------------------------------------------------------------- lookup


def cache_dir() -> Path:
    """The root that downloads go to: ``$EMBER_CACHE_DIR``, else ``~/.cache/ember/datasets``."""
    return Path(os.environ.get(ENV_CACHE) or DEFAULT_CACHE).expanduser()


def search_paths(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for dataset ``name``, in order of precedence.

    An explicit ``data_dir`` must be an existing folder (a typo must not silently fall back to another
    copy of the data), and it takes the place of ``$EMBER_DATA``."""
    paths = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(f"--data-dir {data_dir}: no such directory")
        paths += [root / name, root]
    elif os.environ.get(ENV_DATA):
        paths.append(Path(os.environ[ENV_DATA]).expanduser() / name)
    return paths + [cache_dir() / name, SYSTEM_DIR / name]


def _info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}") from None


def _candidates(info: DatasetInfo, folder: Path, filename: str) -> list[Path]:
    folders = [folder, folder / info.archive_dir] if info.archive_dir else [folder]
    return [f / n for f in folders for n in (f"{filename}.gz", filename)]


def locate(name: str, filename: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return the path of ``filename`` of dataset ``name``: the first local copy, else a verified download.

    Raises DatasetNotFoundError listing every folder searched and every URL tried with its reason.
    """
    info = _info(name)
    if filename not in info.files:
        raise DatasetError(f"{name}: no file named {filename!r}; its files are {', '.join(info.files)}")
    folders = search_paths(name, data_dir)
    for folder in folders:
        for path in _candidates(info, folder, filename):
            if path.is_file():
                return path
    failures: list[str] = []
    if download:
        path = _download(info, filename, failures)
        if path is not None:
            return path
    raise _not_found(info, filename, folders, failures, download)


def _not_found(
    info: DatasetInfo, filename: str, folders: list[Path], failures: list[str], download: bool
) -> DatasetNotFoundError:
    local = info.remote_name(filename) if not info.archive else filename
    also = f" (and their {info.archive_dir}/ subfolders)" if info.archive_dir else ""
    lines = [f"{info.name}: cannot find {filename} (as {filename}.gz or {filename}). Looked in{also}:"]
    lines += [f"  {folder}" for folder in folders]
    if download:
        lines += ["Download failed:"] + [f"  {failure}" for failure in failures]
    else:
        lines.append("Downloading is disabled (download=False).")
    lines.append(f"To use local files, pass --data-dir DIR or set EMBER_DATA=DIR, with DIR/{info.name}/{local}.")
    return DatasetNotFoundError("\n".join(lines))


# ----------------------------------------------------------------------------- download


def mirror_urls(info: DatasetInfo, remote: str) -> list[str]:
    """The URLs to try for ``remote``, in order: ``$EMBER_DATASET_MIRROR`` if set, else the canonical mirrors."""
    override = [base for base in re.split(r"[\s,]+", os.environ.get(ENV_MIRROR, "")) if base]
    if override:
        return [f"{base.rstrip('/')}/{info.name}/{remote}" for base in override]
    return [base + remote for base in info.mirrors]


def _download(info: DatasetInfo, filename: str, failures: list[str]) -> Path | None:
    """Try each mirror in turn; return the verified file in the cache, or None with a reason per URL."""
    dest = cache_dir() / info.name
    created = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        failures.append(f"{dest}: cannot create the cache folder: {exc}")
        return None
    remote = info.remote_name(filename)
    for url in mirror_urls(info, remote):
        try:
            _fetch(info, url, remote, dest)
        except (ValueError, OSError, http.client.HTTPException) as exc:  # ValueError covers DatasetError
            failures.append(f"{url}: {_reason(exc)}")
        else:
            return dest / (filename if info.archive else remote)
    if created:  # leave no empty dataset folder behind a failed download
        with contextlib.suppress(OSError):
            dest.rmdir()
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect: {exc.reason}"
    if isinstance(exc, DatasetError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _fetch(info: DatasetInfo, url: str, remote: str, dest: Path) -> None:
    """Download ``url`` into a staging folder inside ``dest``, verify it, then move the file(s) into place."""
    with tempfile.TemporaryDirectory(dir=dest, prefix=".staging-") as staging:
        download = Path(staging) / remote
        with open(download, "wb") as out:
            _stream(url, out)
        _verify(download, info.checksums[remote])
        names = [remote]
        if info.archive:
            _extract(download, info, Path(staging))
            names = list(info.files)
        for name in names:
            os.replace(Path(staging) / name, dest / name)


def _stream(url: str, out: BinaryIO) -> None:
    """Copy the body of ``url`` into ``out`` with a progress bar; raise if it is shorter than announced."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        announced = response.headers.get("Content-Length")
        expected = int(announced) if announced and announced.isdigit() else None
        received = 0
        bar = tqdm(
            total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=url.rsplit("/", 1)[-1],
            file=sys.stderr, disable=not sys.stderr.isatty(), leave=False,
        )
        with bar:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise DatasetError(f"truncated download: the server announced {expected} bytes but sent {received}")


def _verify(path: Path, checksum: Checksum) -> None:
    """Raise DatasetError naming the file and both digests unless ``path`` matches ``checksum``."""
    actual = _digest(path, checksum)
    if actual != checksum.digest.lower():
        what = "of the decompressed content" if checksum.of == "content" else "of the file as served"
        raise DatasetError(
            f"checksum mismatch for {path.name}: expected {checksum.algorithm} {checksum.digest} {what}, got {actual}"
        )


def _digest(path: Path, checksum: Checksum) -> str:
    """Hash the file, or for a content checksum its gunzipped stream (which also proves the gzip is whole)."""
    digest = hashlib.new(checksum.algorithm)
    with open(path, "rb") as raw:
        gzipped = checksum.of == "content" and raw.read(2) == GZIP_MAGIC
    try:
        with (gzip.open if gzipped else open)(path, "rb") as stream:
            while chunk := stream.read(CHUNK_BYTES):
                digest.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DatasetError(f"{path.name}: truncated or corrupt gzip stream: {exc}") from exc
    return digest.hexdigest()


def _extract(archive: Path, info: DatasetInfo, folder: Path) -> None:
    """Copy ``info.files`` out of the verified archive into ``folder``, by name: nothing else is unpacked."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for name in info.files:
                member = tar.getmember(f"{info.archive_dir}/{name}" if info.archive_dir else name)
                source = tar.extractfile(member)
                if source is None:
                    raise DatasetError(f"{archive.name}: {member.name} is not a regular file")
                with source, open(folder / name, "wb") as out:
                    while chunk := source.read(CHUNK_BYTES):
                        out.write(chunk)
    except KeyError as exc:
        raise DatasetError(f"{archive.name}: the archive has no member {exc}") from None
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{archive.name}: cannot unpack: {exc}") from exc


# ----------------------------------------------------------------------------- loading


def load(
    name: str, split: str = "train", data_dir: str | os.PathLike | None = None, download: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of a known dataset's split ("train" or "test"), found or downloaded.

    Returns uint8 images, (N, 28, 28) for the MNIST family and (N, 3, 32, 32) for CIFAR-10, and
    int64 labels (N,).
    """
    info = _info(name)
    if split not in ("train", "test"):
        raise DatasetError(f"{name}: unknown split {split!r}; expected 'train' or 'test'")
    if info.format == "text":
        raise DatasetError(f"{name} is a text corpus, not images and labels: use ember.data.text.load_corpus")
    if info.format == "cifar10":
        return cifar.read_cifar10_batches([locate(name, f, data_dir, download) for f in cifar.cifar10_files(split)])
    prefix = "train" if split == "train" else "t10k"
    images = locate(name, f"{prefix}-images-idx3-ubyte", data_dir, download)
    labels = locate(name, f"{prefix}-labels-idx1-ubyte", data_dir, download)
    return read_idx_pair(images, labels, info.num_classes)
