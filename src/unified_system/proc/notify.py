"""The NOTIFY_SOCKET listener: sd_notify datagrams from children, sender checked by kernel creds.

SO_PASSCRED makes the kernel attach the sender's real pid to each datagram, so a message
is attributed by walking that pid's ancestry up to a service's main process: a child cannot
speak for another service.
"""

from __future__ import annotations

import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid
COALESCE = 0.02               # seconds a batch may wait for company; stamps are taken on arrival
MAX_BATCH = 256
_MAX_DEPTH = 32


def parse(datagram: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in datagram.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key.strip()] = value
    return fields


def owner_of(pid: int, mains: Mapping[int, int]) -> tuple[int, int] | None:
    """(main pid, incarnation) of the service process tree that contains `pid`."""
    import psutil  # imported on the first datagram: off the start-up path

    current = pid
    for _ in range(_MAX_DEPTH):
        if current in mains:
            return current, mains[current]
        if current <= 1:
            return None
        try:
            current = psutil.Process(current).ppid()
        except psutil.Error:
            return None
    return None


class NotifyListener(threading.Thread):
    def __init__(self, on_batch: Callable[[list[tuple[int, dict[str, str], float]]], None]) -> None:
        super().__init__(name="notify", daemon=True)
        # sun_path is limited to 108 bytes, so the socket lives in a short private dir.
        self._dir = Path(tempfile.mkdtemp(prefix="unified-"))
        self.path = str(self._dir / "notify.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.bind(self.path)
        self._on_batch = on_batch
        self._closing = False

    def run(self) -> None:
        space = socket.CMSG_SPACE(_CREDS.size)
        while not self._closing:
            batch: list[tuple[int, dict[str, str], float]] = []
            self._sock.settimeout(None)
            deadline = None
            while len(batch) < MAX_BATCH:
                try:
                    data, ancdata, _flags, _addr = self._sock.recvmsg(4096, space)
                except TimeoutError:
                    break
                except OSError:
                    if self._closing:
                        return
                    continue
                now = time.monotonic()  # heartbeats are stamped on arrival, by our clock
                pid = next((_CREDS.unpack_from(cdata)[0] for level, kind, cdata in ancdata
                            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS), 0)
                if pid > 0 and data:
                    batch.append((pid, parse(data), now))
                if self._closing:
                    break
                # Keep listening a moment: what arrives meanwhile goes over in one hand-off.
                deadline = deadline or now + COALESCE
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._sock.settimeout(remaining)
            if batch:
                self._on_batch(batch)

    def close(self) -> None:
        self._closing = True
        try:
            # Wake the blocking recvmsg with an empty datagram of our own.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(b"", self.path)
        except OSError:
            pass
        self.join(2)
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)
