"""Raw-byte rotating log for child output.

logging.RotatingFileHandler works on records and text; a child's output is bytes in
arbitrary chunks at up to hundreds of MB/s, so the writer stays a thin layer over os.write.
Only the I/O thread writes, so no lock is needed.
"""

from __future__ import annotations

import os
from pathlib import Path

from unified_system.logsetup import get_logger

CUT = b" [line cut here: longer than the log's max_bytes]\n"  # ends a line split across files
SPLICE_TAIL = 64 << 10  # this close to max_bytes, output is copied, to end the file at a line


class RotatingLog:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self.backups = max(0, backups)
        try:
            self._fd = self._open()
        except FileNotFoundError:  # the directory first (once: not a mkdir per service)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._done = 0                  # bytes of the current write() on disk so far
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

    def write(self, data: bytes | memoryview) -> None:
        """Append, rotating first when `data` would take the file past max_bytes: a file
        never grows past it. It ends at the last whole line that fits; a line longer than
        a whole file is cut, and the cut is marked."""
        self._done = 0
        try:
            if self._fd < 0:  # a rotation failed half way
                self._fd = self._open()
                self._size = os.fstat(self._fd).st_size
            if self._size + len(data) <= self.max_bytes:
                self._put(memoryview(data))
            else:
                self._write_across(bytes(data))
        except OSError as exc:  # ENOSPC, EDQUOT, EIO, or a rotation that failed
            self._failed(exc, len(data) - self._done)
            return
        if self.error is not None:
            self.error = None
            get_logger().info("a child's log is written again", path=str(self.path),
                              dropped_bytes=self.dropped)

    def _put(self, view: memoryview) -> None:
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
            self._size += n
            self._done += n

    def _write_across(self, whole: bytes) -> None:
        """`whole` does not fit in what is left of this file: whole lines up to the limit,
        then a fresh file. Each turn writes a byte or rotates a non-empty file: it ends."""
        done, view = 0, memoryview(whole)
        while done < len(whole):
            room = self.max_bytes - self._size
            if len(whole) - done <= room:
                self._put(view[done:])
                return
            end = whole.rfind(b"\n", done, done + room) + 1
            if end > done:          # whole lines fit: they end this file
                self._put(view[done:end])
                done = end
            elif self._size == 0:   # one line longer than a whole file: cut, and say so
                take = max(1, room - len(CUT))
                self._put(view[done:done + take])
                self._done -= len(CUT)  # the mark is ours, not the child's
                self._put(memoryview(CUT))
                done += take
            self.rotate()

    def splice_from(self, pipe_fd: int, most: int) -> int | None:
        """Move up to `most` bytes from a pipe into the log inside the kernel (no copy through
        Python). Returns the count, 0 at end of file; BlockingIOError when the pipe is empty.
        None near max_bytes: the caller copies instead, so the file ends at a whole line
        (a splice cannot look for one) and never passes the limit."""
        room = self.max_bytes - self._size
        if room <= SPLICE_TAIL or self._fd < 0:
            return None
        moved = os.splice(pipe_fd, self._fd, min(most, room - SPLICE_TAIL))
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
