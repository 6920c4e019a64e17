"""The parts of bench/probes_cpu.py's load, each alone, against its floor (issue 20).

    python bench/probes_parts.py [--seconds 10] [--part prober|listener|all]

prober: probes/runner.py's thread, 100 HTTP targets (one asyncio process; --http 1.1, the
default, keeps connections alive, 1.0 closes each), 200 probes/s on a 50 ms grid as the
owner submits them; then the floor: a thread doing a blocking socket,
connect, send, recv and close per probe, the same 200/s, and nothing else.
listener: proc/notify.py's thread, 100 senders of WATCHDOG=1 every 0.5 s (200 datagrams/s);
then the floor: a thread whose only work is one blocking recvmsg per datagram.
CPU is the thread's own, from /proc/self/task/TID/schedstat (ns), so the senders and the
servers do not count.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from _common import ROOT

sys.path.insert(0, str(ROOT / "src"))

SERVERS = r'''
import asyncio, sys
keep = sys.argv[1] == "1.1"
async def handle(r, w):
    try:
        while True:
            await r.readuntil(b"\r\n\r\n")
            if keep:
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            else:
                w.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await w.drain()
            if not keep:
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    w.close()
async def main():
    servers = [await asyncio.start_server(handle, "127.0.0.1", 0) for _ in range(100)]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
'''
SENDERS = r'''
import socket, sys, time
path, secs = sys.argv[1], float(sys.argv[2])
socks = [socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(100)]
t0 = time.monotonic(); n = 0
while time.monotonic() - t0 < secs:
    for i, s in enumerate(socks):
        wait = t0 + n * 0.5 + i * 0.005 - time.monotonic()
        if wait > 0: time.sleep(wait)
        # one in 100 is not a bare heartbeat: it carries its send time, for the hand-off delay
        s.sendto(b"WATCHDOG=1" if i else f"STATUS={time.monotonic()!r}".encode(), path)
    n += 1
'''


def thread_cpu(tid: int) -> float:
    with open(f"/proc/self/task/{tid}/schedstat") as fh:
        return int(fh.read().split()[0]) / 1e9


def report(name: str, tid: int, count: object, seconds: float) -> None:
    c0, t0 = thread_cpu(tid), time.monotonic()
    n0 = count()  # type: ignore[operator]
    time.sleep(seconds)
    c1, t1, n1 = thread_cpu(tid), time.monotonic(), count()  # type: ignore[operator]
    used = c1 - c0
    print(f"{name}: {n1 - n0} in {t1 - t0:.1f} s, {100 * used / (t1 - t0):.2f} % of a core, "
          f"{1e6 * used / max(1, n1 - n0):.0f} us each")


def prober(seconds: float, http: str = "1.1") -> None:
    from unified_system.config.schema import Probe
    from unified_system.probes.runner import ProbeRunner
    from unified_system.proc.seam import ProcessSeam

    servers = subprocess.Popen([sys.executable, "-c", SERVERS, http], stdout=subprocess.PIPE, text=True)
    try:
        assert servers.stdout is not None
        ports = [int(p) for p in servers.stdout.readline().split()]
        probes = [Probe.model_validate({"http": {"url": f"http://127.0.0.1:{p}/health"}}) for p in ports]
        results, posts = [0], [0]

        def post(event: object) -> None:
            posts[0] += 1
            results[0] += len(getattr(event, "events", (event,)))

        seam = ProcessSeam()
        runner = ProbeRunner(seam, post)
        stop = threading.Event()

        def owner() -> None:   # 10 submissions a 50 ms tick: 200 a second
            tick = 0
            while not stop.wait(0.05):
                for j in range(10):
                    i = (tick * 10 + j) % 200
                    runner.submit(i, "readiness" if i < 100 else "liveness", probes[i % 100], ROOT, {})
                tick += 1

        driver = threading.Thread(target=owner)
        driver.start()
        time.sleep(1.0)
        p0 = posts[0]
        report("prober (probes/runner.py)", runner._thread.native_id, lambda: results[0], seconds)
        print(f"  hand-offs to the owner: {posts[0] - p0} for the results above")
        stop.set()
        driver.join()
        runner.close()
        seam.close()

        request = (b"GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent: unified-system-probe\r\n"
                   b"Connection: close\r\n\r\n")

        def fresh(k: int) -> None:
            with socket.create_connection(("127.0.0.1", ports[k % 100])) as s:
                s.send(request)
                s.recv(4096)

        paced_floor(fresh, "  floor (blocking socket, connect, send, recv, close)", seconds)
        if http == "1.1":
            kept_floor(ports, seconds)
    finally:
        servers.kill()
        servers.wait()


def paced_floor(exchange: Callable[[int], None], label: str, seconds: float) -> None:
    """A plain thread doing `exchange(k)` 200 times a second, 10 a 50 ms tick: the floor
    the part in question is measured against."""
    done = [0]
    stop = threading.Event()

    def floor() -> None:
        t0, k = time.monotonic(), 0
        while not stop.is_set():
            for j in range(10):
                exchange(k + j)
                done[0] += 1
            k += 10
            wait = t0 + k / 200 - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    thread = threading.Thread(target=floor)
    thread.start()
    time.sleep(1.0)
    try:
        report(label, thread.native_id or 0, lambda: done[0], seconds)
    finally:
        stop.set()
        thread.join()


def kept_floor(ports: list[int], seconds: float) -> None:
    """The keep-alive floor: a blocking send and recv on one kept connection per server."""
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent: unified-system-probe\r\n\r\n"
    socks = [socket.create_connection(("127.0.0.1", p)) for p in ports]

    def kept(k: int) -> None:
        s = socks[k % 100]
        s.send(request)
        s.recv(4096)

    try:
        paced_floor(kept, "  floor with keep-alive (blocking send, recv on a kept connection)", seconds)
    finally:
        for s in socks:
            s.close()


def listener(seconds: float) -> None:
    from unified_system.core.events import Batch, Notify
    from unified_system.proc.notify import NotifyListener

    got = [0]
    delays: list[float] = []   # send to hand-off of the STATUS= datagrams, in seconds

    def on_batch(batch: list) -> None:   # what proc/runtime.py makes of a batch
        events = tuple(Notify(found[1], d.pid, d.fields, d.at) for d, found in batch if found)
        got[0] += len(events)
        Batch(events)
        now = time.monotonic()
        for d, _ in batch:
            if d.fields[0][0] == "STATUS":
                delays.append(now - float(d.fields[0][1]))

    mains: dict[int, int] = {}
    notify = NotifyListener(on_batch, lambda: mains)
    notify.start()
    senders = subprocess.Popen([sys.executable, "-c", SENDERS, notify.path, str(seconds + 2)])
    mains = {senders.pid: 1}
    try:
        time.sleep(1.0)
        report("listener (proc/notify.py)", notify.native_id or 0, lambda: got[0], seconds)
    finally:
        senders.wait()
        notify.close()
    if delays:
        delays.sort()
        print(f"  a STATUS= datagram from send to hand-off: median {1e3 * delays[len(delays) // 2]:.1f} ms, "
              f"p90 {1e3 * delays[int(len(delays) * 0.9)]:.1f} ms, max {1e3 * delays[-1]:.1f} ms "
              f"({len(delays)} datagrams)")

    path = os.path.join(tempfile.mkdtemp(prefix="unified-floor-"), "s")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    count = [0]

    def floor() -> None:
        while True:
            try:
                sock.recvmsg(4096, 256)
            except OSError:
                return
            count[0] += 1

    thread = threading.Thread(target=floor, daemon=True)
    thread.start()
    senders = subprocess.Popen([sys.executable, "-c", SENDERS, path, str(seconds + 2)])
    try:
        time.sleep(1.0)
        report("  floor (one blocking recvmsg a datagram)", thread.native_id or 0,
               lambda: count[0], seconds)
    finally:
        senders.wait()
        sock.close()
        os.unlink(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--part", choices=("prober", "listener", "all"), default="all")
    parser.add_argument("--http", choices=("1.1", "1.0"), default="1.1",
                        help="1.1: the servers keep connections alive; 1.0: they close each")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    if args.part in ("prober", "all"):
        prober(args.seconds, args.http)
    if args.part in ("listener", "all"):
        listener(args.seconds)


if __name__ == "__main__":
    main()
