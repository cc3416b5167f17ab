"""One broker per data directory: an exclusive lock on `<data_dir>/.lock`, as Kafka takes.

Two brokers on one directory append to the same segment files at the same offsets, and each
acknowledges writes the other then overwrites; the second one's shutdown also marks the first
one's logs clean, so a crash of the first would skip recovery. The lock is an advisory `flock`,
held for the life of the LogManager and released by the kernel if the process dies, so a crash
never leaves a stale lock behind. The file holds the owner's pid, for the error message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from klamm.storage.errors import StorageError

try:
    import fcntl
except ImportError:  # Windows: no flock; the directory is not protected there
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class DataDirInUse(StorageError):
    """Another process (or LogManager) holds the data directory."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        if self._file is not None or fcntl is None:
            return
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirInUse(
                f"data directory {self.path.parent} is in use by another klamm broker "
                f"(pid {owner}); one directory serves one broker"
            ) from None
        except OSError:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor drops the flock
            self._file = None
