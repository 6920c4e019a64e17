"""Raw-byte rotating log for child output.

logging.RotatingFileHandler works on records and text; a child's output is bytes in
arbitrary chunks at up to hundreds of MB/s, so the writer stays a thin layer over os.write.
Only the I/O thread writes, so no lock is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

from unified_system.logsetup import get_logger


class RotatingLog:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self.backups = max(0, backups)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self.dropped = 0                # bytes lost to a write error (a full disk)
        self.error: OSError | None = None  # the first such error, until a write succeeds

    def _failed(self, exc: OSError, lost: int) -> None:
        # The child must never block on us: its output is read and dropped, and counted.
        self.dropped += lost
        if self.error is None:
            self.error = exc
            get_logger().error("cannot write a child's log: its output is dropped until a write "
                               "succeeds", path=str(self.path), error=str(exc))

    def _open(self) -> int:
        # Not O_APPEND: splice(2) refuses append-mode files, and we are the only writer.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
        os.lseek(fd, 0, os.SEEK_END)
        return fd

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            if self._fd < 0:  # a rotation failed half way
                self._fd = self._open()
                self._size = os.fstat(self._fd).st_size
            if self._size and self._size + len(data) > self.max_bytes:
                self.rotate()
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
                self._size += n
        except OSError as exc:  # ENOSPC, EDQUOT, EIO, or a rotation that failed
            self._failed(exc, len(view))
            return
        if self.error is not None:
            self.error = None
            get_logger().info("a child's log is written again", path=str(self.path),
                              dropped_bytes=self.dropped)

    def splice_from(self, pipe_fd: int, most: int) -> int:
        """Move up to `most` bytes from a pipe into the log inside the kernel (no copy through
        Python). Returns the count, 0 at end of file; BlockingIOError when the pipe is empty."""
        if self._size and self._size + most > self.max_bytes:
            self.rotate()  # an OSError here (or from splice) makes the caller copy instead
        moved = os.splice(pipe_fd, self._fd, most)
        self._size += moved
        return moved

    def rotate(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self.backups == 0:
            os.truncate(self.path, 0)
        else:
            for i in range(self.backups - 1, 0, -1):
                src = self.path.with_name(f"{self.path.name}.{i}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._fd = self._open()
        self._size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def tail(path: Path, lines: int, max_bytes: int = 1 << 20) -> list[str]:
    """The last `lines` lines of a log, reading at most `max_bytes` from its end."""
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read(max_bytes)  # the file may grow meanwhile (or be a device)
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", "replace").splitlines()
    return text[-lines:]
