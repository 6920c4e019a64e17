"""The notify listener's wake-ups are moderated while datagrams flow (proc/notify.py): a
stream of heartbeats wakes it about once per window, not once per datagram, and nothing is
lost, reordered or held past the window."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness import wait_until
from unified_system.core.policy import HEARTBEAT_HOLD
from unified_system.proc.notify import COALESCE, MAX_BATCH, NotifyListener, private_dir


def voluntary_switches(tid: int) -> int:
    """How often the thread blocked and was woken: one per wake-up."""
    with open(f"/proc/self/task/{tid}/status") as fh:
        for line in fh:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches")


class Received:
    def __init__(self) -> None:
        self.batches: list[list[tuple[str, float, float]]] = []   # (fields, arrival stamp, handed)
        self.lock = threading.Lock()

    def __call__(self, batch: list) -> None:
        now = time.monotonic()
        with self.lock:
            self.batches.append([(";".join(f"{k}={v}" for k, v in d.fields), d.at, now)
                                 for d, found in batch if found])

    def messages(self) -> list[str]:
        with self.lock:
            return [m for b in self.batches for m, _, _ in b]


def paced(sender: socket.socket, path: str, messages: list[bytes], every: float) -> float:
    """Send one message every `every` seconds (bounded by the list); the time it began."""
    t0 = time.monotonic()
    for i, message in enumerate(messages):
        wait = t0 + i * every - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sender.sendto(message, path)
    return t0


def listening(received: Received) -> NotifyListener:
    me = os.getpid()
    listener = NotifyListener(received, lambda: {me: 1})
    listener.start()
    return listener


@pytest.fixture
def channel() -> Iterator[tuple[Received, NotifyListener, socket.socket]]:
    """A listening NotifyListener, what it handed off, and a socket to send to it."""
    received = Received()
    listener = listening(received)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        yield received, listener, sender
    finally:
        sender.close()
        listener.close()


def test_a_stream_wakes_the_listener_once_a_window_not_once_a_datagram(channel):
    received, listener, sender = channel
    tid = listener.native_id or 0
    before = voluntary_switches(tid)
    count = 150   # one every 2 ms, 0.3 s
    t0 = paced(sender, listener.path, [b"WATCHDOG=1" if i % 10 else f"STATUS={i}".encode()
                                       for i in range(count)], 0.002)
    wait_until(lambda: len(received.messages()) == count, timeout=20, what="all handed off",
               seen=lambda: len(received.messages()))
    elapsed = time.monotonic() - t0
    wakes = voluntary_switches(tid) - before
    # Unmoderated, each datagram was a wake-up (~150). Moderated: a sleep and a drain per
    # window, so about 2 * elapsed / COALESCE, whatever the machine's load.
    assert wakes < count / 2 and wakes <= 2 * elapsed / COALESCE + 10, (wakes, elapsed)
    statuses = [m for m in received.messages() if m.startswith("STATUS")]
    assert statuses == [f"STATUS={i}" for i in range(0, count, 10)]   # none lost or reordered


def test_a_lone_datagram_after_quiet_goes_at_once_and_a_stream_within_the_window(channel):
    received, listener, sender = channel
    sender.sendto(b"READY=1", listener.path)
    wait_until(lambda: received.messages() == ["READY=1"], timeout=10, what="READY=1",
               seen=received.messages)
    assert len(received.batches) == 1   # alone after a quiet socket: a batch of its own
    for _ in range(40):
        sender.sendto(b"WATCHDOG=1", listener.path)
    sender.sendto(b"STOPPING=1", listener.path)
    wait_until(lambda: len(received.messages()) == 42, timeout=10, what="the stream",
               seen=lambda: len(received.messages()))
    assert received.messages()[-1] == "STOPPING=1"


def test_a_flood_is_read_at_full_speed_in_bounded_batches(channel):
    received, listener, sender = channel
    sender.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 2.0
    while sent < 5000 and time.monotonic() < deadline:   # bounded in count and time
        try:
            sender.sendto(b"WATCHDOG=1", listener.path)
            sent += 1
        except BlockingIOError:   # the queue is full: the listener is behind for now
            time.sleep(0.001)
    wait_until(lambda: len(received.messages()) == sent, timeout=30, what="the flood drained",
               seen=lambda: (len(received.messages()), sent))
    assert max(len(b) for b in received.batches) <= MAX_BATCH


def test_bare_heartbeats_are_held_for_one_owner_turn_and_anything_else_takes_them_along(channel):
    """Heartbeats only stamp a time: a stream of them reaches the owner about once per
    HEARTBEAT_HOLD (one turn for many services'), where it was once per 20 ms window; any
    other message goes at once, with the heartbeats held before it, in order."""
    received, listener, sender = channel
    count = 100   # one every 4 ms, 0.4 s
    t0 = paced(sender, listener.path, [b"WATCHDOG=1"] * count, 0.004)
    wait_until(lambda: len(received.messages()) == count, timeout=20, what="all handed off",
               seen=lambda: len(received.messages()))
    elapsed = time.monotonic() - t0
    # Held: about elapsed / HEARTBEAT_HOLD hand-offs (+1 for the last); a 20 ms window
    # alone made about elapsed / COALESCE (20 here).
    assert len(received.batches) <= elapsed / HEARTBEAT_HOLD + 3, (len(received.batches), elapsed)
    # Never held past the hold (with a window's read delay and a busy machine's slack).
    firsts = [batch[0] for batch in received.batches]
    assert all(handed - at < HEARTBEAT_HOLD + COALESCE + 0.5 for _, at, handed in firsts)
    batches = len(received.batches)
    for _ in range(5):
        sender.sendto(b"WATCHDOG=1", listener.path)
    sender.sendto(b"READY=1", listener.path)
    wait_until(lambda: len(received.messages()) == count + 6, timeout=10, what="READY=1",
               seen=received.messages)
    assert received.messages()[-6:] == ["WATCHDOG=1"] * 5 + ["READY=1"]
    # READY=1 took the held ones along (a hold may run out first on a busy machine)
    assert len(received.batches) in (batches + 1, batches + 2)


def test_the_socket_dir_passes_over_an_unusable_temporary_directory(tmp_path, monkeypatch):
    """As tempfile.mkdtemp would: a $TMPDIR that is missing, or not a directory, or a
    read-only /tmp (systemd's ProtectSystem with the checkout under /tmp) is passed over."""
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    for unusable in (str(tmp_path / "missing"), str(not_a_dir)):
        monkeypatch.setenv("TMPDIR", unusable)
        where = private_dir()
        try:
            assert where.is_dir() and not str(where).startswith(unusable)
            assert where.stat().st_mode & 0o777 == 0o700
        finally:
            where.rmdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    where = private_dir()
    assert where.parent == tmp_path
    where.rmdir()
