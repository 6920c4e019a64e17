"""A service of the soak (bench/soak.py): it does what a real one does, and takes faults.

- READY=1 once up, WATCHDOG=1 every 0.5 s (a SIGSTOP makes it miss them: a hard freeze);
- with CHECKPOINT_DIR: a counter saved every 0.5 s, resumed from the last checkpoint, so a
  restart must never send it back;
- with LISTEN_FDS: accepts on the inherited socket and answers each connection "ok";
- keeps a `sleep` grandchild and exits 3 when it dies (a worker pool's master would);
- SOAK_STUBBORN=1: ignores SIGTERM (and outlives its grandchild);
- SIGUSR1: floods ~16 MB of output in lines of random length (one over 1 MB);
- SIGUSR2: allocates and touches 96 MB (over its limits.max_memory).
Signal handlers only set flags; the main loop acts on them.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

from unified_system.child import notify
from unified_system.child.checkpoint import Checkpoint

flags: set[int] = set()


def _flag(signum: int, _frame: object) -> None:
    flags.add(signum)


def _serve(sock: socket.socket) -> None:
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        with conn:
            try:
                conn.sendall(b"ok\n")
            except OSError:
                pass


def _grandchild(stubborn: bool) -> None:
    sleeper = subprocess.Popen(["sleep", "100000"], stdin=subprocess.DEVNULL)
    sleeper.wait()
    print(f"grandchild {sleeper.pid} died ({sleeper.returncode})", flush=True)
    if not stubborn:  # a stubborn one outlives a group-wide SIGTERM: only SIGKILL ends it
        os._exit(3)


def _flood(rand: random.Random) -> None:
    out, total = sys.stdout.buffer, 0
    long_done = False
    while total < 16 << 20:
        if not long_done and total > 4 << 20:
            line, long_done = b"L" * (1_100_000) + b"\n", True
        else:
            line = b"flood %d " % total + b"x" * rand.randrange(10, 400) + b"\n"
        out.write(line)
        total += len(line)
    out.flush()


def main() -> None:
    signal.signal(signal.SIGUSR1, _flag)
    signal.signal(signal.SIGUSR2, _flag)
    stubborn = bool(os.environ.get("SOAK_STUBBORN"))
    if stubborn:  # only SIGKILL ends it (the leftover of issue 16)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    rand = random.Random(os.getpid())
    name = os.environ.get("UNIFIED_SERVICE", "?")
    if int(os.environ.get("LISTEN_FDS", "0") or 0):
        for sock in notify.listen_sockets():
            threading.Thread(target=_serve, args=(sock,), daemon=True).start()
    threading.Thread(target=_grandchild, args=(stubborn,), daemon=True).start()
    store = Checkpoint() if os.environ.get("CHECKPOINT_DIR") else None
    count = int((store.load() or {}).get("count", 0)) if store is not None else 0
    print(f"{name} up, pid {os.getpid()}, count {count}", flush=True)
    notify.ready()
    hog: bytearray | None = None
    while True:
        notify.heartbeat()
        if store is not None:
            count += 1
            store.save({"count": count})
        if signal.SIGUSR1 in flags:
            flags.discard(signal.SIGUSR1)
            _flood(rand)
        if signal.SIGUSR2 in flags:
            flags.discard(signal.SIGUSR2)
            hog = bytearray(96 << 20)
            for i in range(0, len(hog), 4096):  # touched: resident, not just reserved
                hog[i] = 1
        if rand.random() < 0.2:
            print(f"{name} tick {count} " + "." * rand.randrange(0, 200), flush=True)
        time.sleep(0.5)  # the service's own pace, not a synchronisation


if __name__ == "__main__":
    main()
