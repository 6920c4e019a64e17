"""The NOTIFY_SOCKET listener: sd_notify datagrams from children, sender checked by kernel creds.

SO_PASSCRED makes the kernel attach the sender's real pid to each datagram. Its ancestry is
read from /proc the moment the datagram is received: a short-lived sender (`systemd-notify`
as an ordinary user, a helper that sends and exits) is still there then, or a zombie, and
its parent chain proves which service it belongs to. Read 20 ms later it was gone, and its
READY=1 was dropped. Attribution itself is `senders.Senders`, at the batch's hand-off.

`BARRIER=1` (sd_notify_barrier, which `systemd-notify` 252 sends after each message) carries
one fd: it is held until the owner has handled what came before it, then closed; the
sender waits for that close.

Wake-ups are moderated, like a NIC's interrupts: a blocking recvmsg costs ~50 us with its
wake-up, most of this thread's CPU under 200 heartbeats a second. While datagrams keep
coming (the last read found some less than MODERATE ago), the thread sleeps out the rest
of the window and then takes everything queued with MSG_DONTWAIT, in one wake-up and one
hand-off. When the socket has been quiet for a window, the next datagram is read and
handed off at once. Either way nothing waits longer than COALESCE, the bound a batch had.
"""

from __future__ import annotations

import array
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from pathlib import Path

from unified_system.core.policy import HEARTBEAT_HOLD, MAX_EXTEND, usec_seconds  # noqa: F401  (pure: they live in core)
from unified_system.proc.senders import Senders

_CREDS = struct.Struct("3i")  # struct ucred: pid, uid, gid
COALESCE = 0.02               # seconds a datagram may wait to be read and handed off
MODERATE = COALESCE           # while datagrams flow, one wake-up per this window
MAX_BATCH = 256
_MAX_DEPTH = 32
NOTIFY_BUFFER_MAX = 4096      # systemd's limit: a longer datagram is refused whole, not cut
MAX_FDS = 16                  # fds one datagram may bring; the kernel closes any beyond
_ANCILLARY = socket.CMSG_SPACE(_CREDS.size) + socket.CMSG_SPACE(MAX_FDS * 4)
MAX_BARRIERS = 64             # barrier fds held at once; past it one is closed at arrival
# Plain ints: socket's are IntFlag members, and one `&` on them cost ~2 us per datagram.
_SOL, _SCM_CREDS, _SCM_RIGHTS = int(socket.SOL_SOCKET), int(socket.SCM_CREDENTIALS), int(socket.SCM_RIGHTS)
_TRUNC, _DONTWAIT = int(socket.MSG_TRUNC), int(socket.MSG_DONTWAIT)
_RECV_FLAGS = int(socket.MSG_CMSG_CLOEXEC)
_HEARTBEAT = (("WATCHDOG", "1"),)


def private_dir() -> Path:
    """A new 0700 directory in the first usable temporary directory, where
    tempfile.mkdtemp would make it ($TMPDIR, $TEMP, $TMP, /tmp, /var/tmp, /usr/tmp, the
    working directory; one that is read-only or missing is passed over: under systemd with
    a read-only /tmp, /var/tmp). Without tempfile, which brings shutil (~0.9 MB resident)."""
    bases = [os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")]
    failed: list[str] = []
    for base in [b for b in bases if b] + ["/tmp", "/var/tmp", "/usr/tmp", os.getcwd()]:
        for _ in range(100):
            where = Path(base) / f"unified-{os.urandom(6).hex()}"
            try:
                os.mkdir(where, 0o700)
                return where
            except FileExistsError:
                continue
            except OSError as exc:
                failed.append(f"{base}: {exc.strerror}")
                break
    raise OSError(f"no usable temporary directory for the notify socket ({'; '.join(failed)})")


def parse(datagram: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in datagram.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key.strip()] = value
    return fields


def lineage(pid: int, known: Container[int] = ()) -> tuple[int, ...]:
    """`pid` then its ancestors, nearest first, read from /proc now; () if `pid` is gone.

    The walk stops at a pid in `known` (a main process: nothing above it matters), so a main
    process's own datagram costs no read at all. A zombie still has its stat, so a sender
    that exited but is not yet reaped counts."""
    chain = [pid]
    current = pid
    for _ in range(_MAX_DEPTH):
        if current in known:
            break
        try:
            with open(f"/proc/{current}/stat", "rb") as fh:
                stat = fh.read()
            # comm may hold spaces and parentheses: the fields after it start past the last ')'
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            return () if current == pid else tuple(chain)
        if ppid <= 0:
            break
        chain.append(ppid)
        if ppid == 1:
            break
        current = ppid
    return tuple(chain)


@dataclass(frozen=True)
class Datagram:
    pid: int                          # the sender, from SCM_CREDENTIALS
    lineage: tuple[int, ...]          # it and its ancestors at arrival; () if already gone
    fields: tuple[tuple[str, str], ...]
    at: float                         # monotonic arrival time: heartbeats are stamped here
    barrier: int | None = None        # BARRIER=1's fd: close once what came before is handled


#: A batch's hand-off: each accepted datagram with its (main pid, incarnation), and each
#: refusal worth logging (the first from its sender) with None.
Handoff = Callable[[list[tuple[Datagram, tuple[int, int] | None]]], None]


class NotifyListener(threading.Thread):
    def __init__(self, on_batch: Handoff, mains: Callable[[], Mapping[int, int]]) -> None:
        super().__init__(name="notify", daemon=True)
        # sun_path is limited to 108 bytes, so the socket lives in a short private dir.
        self._dir = private_dir()
        self.path = str(self._dir / "notify.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.bind(self.path)
        self._on_batch = on_batch
        self._mains = mains
        self.senders = Senders()      # touched on this thread only
        self._barriers = threading.BoundedSemaphore(MAX_BARRIERS)
        self._closing = False

    def run(self) -> None:
        # A quiet socket is read blocking, so a lone datagram (READY=1 after a while) costs
        # one wake-up and goes over at once. While a stream flows, each wake-up sleeps out
        # the window first, then drains what gathered: two syscalls per datagram, no wake-up.
        # Bare heartbeats are held up to HEARTBEAT_HOLD for the next (one owner turn for
        # many services'); anything else goes at once and takes the held ones with it.
        recvmsg, monotonic, sleep = self._sock.recvmsg, time.monotonic, time.sleep
        last_read = -MODERATE   # when a read last found datagrams
        held: list[Datagram] = []
        held_until = 0.0
        while not self._closing:
            now = monotonic()
            if held and (now >= held_until or len(held) >= MAX_BATCH):   # a flood: bounded
                self._hand_off(held)
                held = []
            wait = last_read + MODERATE - now
            if held:   # never block with heartbeats held: they must go within the hold
                wait = max(wait, min(MODERATE, held_until - now))
            if wait > 0:
                sleep(wait)
                flags = _RECV_FLAGS | _DONTWAIT
            else:
                flags = _RECV_FLAGS
            batch: list[Datagram] = []
            read = 0
            while read < MAX_BATCH and not self._closing:
                try:
                    data, ancdata, msg_flags, _addr = recvmsg(NOTIFY_BUFFER_MAX, _ANCILLARY, flags)
                except BlockingIOError:
                    break
                except OSError:
                    if self._closing:
                        return
                    break
                read += 1
                flags = _RECV_FLAGS | _DONTWAIT
                got = self._receive(data, ancdata, msg_flags)
                if got is not None:
                    batch.append(got)
            if batch:
                if all(d.fields is _HEARTBEAT for d in batch):
                    if not held:
                        held_until = monotonic() + HEARTBEAT_HOLD
                    held += batch
                else:
                    self._hand_off(held + batch)
                    held = []
            if read >= MAX_BATCH:
                last_read = -MODERATE   # a flood: keep reading at full speed, as before
            elif read:
                last_read = monotonic()
        if held:
            self._hand_off(held)

    def _receive(self, data: bytes, ancdata: list, flags: int) -> Datagram | None:
        now = time.monotonic()  # heartbeats are stamped on arrival, by our clock
        pid, fds = 0, None
        for level, kind, cdata in ancdata:
            if level != _SOL:
                continue
            if kind == _SCM_CREDS and len(cdata) >= _CREDS.size:
                pid = _CREDS.unpack_from(cdata)[0]
            elif kind == _SCM_RIGHTS:
                fds = fds if fds is not None else array.array("i")
                fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
        if pid <= 0 or not data or flags & _TRUNC:
            if fds:
                self._close_all(fds)   # empty (our own wake-up), over 4 KiB, or no sender
            return None
        mains = self._mains()
        if data == b"WATCHDOG=1" and fds is None and pid in mains:
            return Datagram(pid, (pid,), _HEARTBEAT, now)   # most of the traffic: nothing to parse
        chain = lineage(pid, mains)   # first: a short-lived sender is gone a moment later
        barrier = None
        if fds:
            if data.strip() == b"BARRIER=1" and len(fds) == 1 and self._barriers.acquire(blocking=False):
                barrier = fds.pop()
            self._close_all(fds)  # no fd store here: any other fd goes back at once
        return Datagram(pid, chain, tuple(parse(data).items()), now, barrier)

    def _hand_off(self, batch: list[Datagram]) -> None:
        mains = self._mains()
        out: list[tuple[Datagram, tuple[int, int] | None]] = []
        for datagram in batch:
            found = self.senders.attribute(datagram, mains)
            if found is not None:
                out.append((datagram, found))
                continue
            if datagram.barrier is not None:
                self.release(datagram.barrier)
            if self.senders.first_refusal(datagram.pid):
                out.append((datagram, None))
        if out:
            self._on_batch(out)

    def release(self, fd: int) -> None:
        """Close a barrier's fd: its sender's sd_notify_barrier() returns."""
        try:
            os.close(fd)
        except OSError:
            pass
        self._barriers.release()

    @staticmethod
    def _close_all(fds: array.array) -> None:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass

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
        for gone in (lambda: os.unlink(self.path), lambda: os.rmdir(self._dir)):
            try:
                gone()
            except OSError:
                pass
