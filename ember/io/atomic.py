"""Atomic file writes: write beside the target, flush to disk, then rename into place.

A write that is killed (SIGKILL, power loss) before the rename leaves its temporary file behind,
never a half-written target. Temporary files are named ``.<target>.<host>-<pid>.<random>.tmp`` so
that the next write into the same folder can tell an orphan (its process on this host is gone) from
a write still in progress (its process lives, or it runs on another host) and delete only orphans.
The finished file gets the permissions ``open()`` would give it (0666 minus the umask), not
``mkstemp``'s private 0600.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

_TMP_NAME = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9_-]*)-(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_active: set[Path] = set()  # temporary files this process is writing right now


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:32]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def orphaned_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporary files of interrupted atomic writes in ``folder``: written on this host by a process that is gone
    (or by this process, but no longer in progress)."""
    folder, host, found = Path(folder), _host(), []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = _TMP_NAME.match(entry.name)
        if not match or match["host"] != host:
            continue
        pid = int(match["pid"])
        in_progress = entry in _active if pid == os.getpid() else _process_alive(pid)
        if not in_progress:
            found.append(entry)
    return found


def remove_orphaned_temporaries(folder: str | os.PathLike) -> int:
    """Delete what :func:`orphaned_temporaries` finds; returns how many were removed."""
    removed = 0
    for path in orphaned_temporaries(folder):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


def check_destination(path: str | os.PathLike) -> Path:
    """Raise, naming ``path``, if a file could not be written there later: it is a directory, a folder on its way
    is a file, or the nearest existing folder refuses a new file (tried for real, so permissions, read-only
    mounts and full quotas all show). Checked before a long run, so that its result is not lost at the end."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, cannot write a file there")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(f"{path}: cannot create it, {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise PermissionError(f"{path}: cannot write in {folder} ({exc.strerror or exc})") from None
    return path


def _default_mode() -> int:
    """0666 minus the umask; read from /proc where possible, since setting the umask to read it is not thread-safe."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; on success it replaces ``path`` atomically.

    If the body raises, the temporary file is removed and ``path`` is left as it was. Orphans of
    earlier interrupted writes into the same folder are removed first.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, cannot write a file there")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphaned_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host()}-{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    _active.add(tmp_path)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, _default_mode())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    finally:
        _active.discard(tmp_path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
