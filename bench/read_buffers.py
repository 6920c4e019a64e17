"""Issue 16, item 1: what a fresh 1 MiB bytes per pipe read does to a long-lived process's
memory, against one reused buffer (readv), with and without the arena cap and trim of
proc/malloc.py. Each variant runs in a fresh interpreter for the same time:

    python bench/read_buffers.py --seconds 60

A reader thread drains a pipe that a flooding child fills (what the I/O thread does); other
threads come and go allocating and freeing (what API requests and pools do); the console's
part is a framed copy of part of each read handed to another thread, as output.py does.
Prints RSS, and glibc's mallinfo2 (arena = bytes the arenas got from the kernel, fordblks =
free bytes held inside them) at the start and the end of each variant.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 1 << 20


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]


def mallinfo() -> dict[str, int]:
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    info = libc.mallinfo2()
    return {"arena_mib": round(info.arena / 2**20, 1), "mmapped_mib": round(info.hblkhd / 2**20, 1),
            "in_use_mib": round(info.uordblks / 2**20, 1), "free_inside_mib": round(info.fordblks / 2**20, 1)}


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def variant(mode: str, seconds: float) -> dict[str, object]:
    sys.path.insert(0, str(ROOT / "src"))
    from unified_system.proc import malloc

    if "capped" in mode:
        malloc.limit_arenas()
    read_fd, write_fd = os.pipe()
    flood = subprocess.Popen([sys.executable, "-c",
                              "import os,sys\nb=(b'x'*99+b'\\n')*655\n"
                              "while True: os.write(1,b)"], stdout=write_fd)
    os.close(write_fd)
    console: queue.Queue[bytes | None] = queue.Queue(512)
    stop = threading.Event()

    def consume() -> None:   # the console thread frees what the reader allocated
        while console.get() is not None:
            pass

    def reader() -> None:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while not stop.is_set():
            if "reused" in mode:
                n = os.readv(read_fd, [view])
                chunk: bytes | memoryview = view[:n]
            else:
                chunk = os.read(read_fd, CHUNK)
                n = len(chunk)
            if not n:
                return
            framed = b"svc | " + bytes(chunk[: n // 4]).replace(b"\n", b"\nsvc | ")
            try:
                console.put_nowait(framed)
            except queue.Full:
                pass

    def visitor(seed: int) -> None:   # a short-lived thread, as a request's
        junk = [bytes(200 + (seed * i) % 5000) for i in range(400)]
        del junk[::2]

    threads = [threading.Thread(target=consume), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    start = {"rss_mib": round(rss_mib(), 1), **mallinfo()}
    deadline, last_trim, n = time.monotonic() + seconds, time.monotonic(), 0
    while time.monotonic() < deadline:
        batch = [threading.Thread(target=visitor, args=(n + i,)) for i in range(4)]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
        n += 4
        if "trimmed" in mode and time.monotonic() - last_trim >= malloc.TRIM_EVERY:
            malloc.trim()
            last_trim = time.monotonic()
        time.sleep(0.01)   # the pace of visitors, not a synchronisation
    end = {"rss_mib": round(rss_mib(), 1), **mallinfo()}
    stop.set()
    flood.kill()
    flood.wait()
    threads[1].join(5)
    console.put(None)
    threads[0].join(5)
    return {"mode": mode, "start": start, "end": end, "visitor_threads": n}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(variant(args.mode, args.seconds)))
        return 0
    for mode in ("fresh", "reused", "reused+capped+trimmed"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--seconds", str(args.seconds)],
                             capture_output=True, text=True, check=True).stdout
        result = json.loads(out)
        s, e = result["start"], result["end"]
        print(f"{mode:<24} RSS {s['rss_mib']:6.1f} -> {e['rss_mib']:6.1f} MiB   arenas {s['arena_mib']:6.1f} -> "
              f"{e['arena_mib']:6.1f} MiB   free inside {s['free_inside_mib']:6.1f} -> {e['free_inside_mib']:6.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
