"""Supervisor CPU with 100 services, each with a 1 s readiness probe, a 1 s liveness probe
(HTTP) and a heartbeat every 0.5 s.

    python bench/probes_cpu.py [--services 100] [--seconds 30] [--threads] [--http 1.1|1.0]

--http is the version the children's servers speak (bench/children/hb_http.py): 1.1, the
default, keeps connections alive as most servers do; 1.0 closes after each answer (the
bench before keep-alive probes, 2026-12-03).

--threads also splits the window's CPU by thread (/proc/PID/task), named by `py-spy dump`
when py-spy is installed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import Bench, cpu_over, free_port, rss_bytes

CHILD = Path(__file__).resolve().parent / "children" / "hb_http.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", action="store_true", help="split the CPU by thread")
    parser.add_argument("--http", choices=("1.1", "1.0"), default="1.1",
                        help="the HTTP version the children's servers speak")
    args = parser.parse_args()
    services = {}
    for i in range(args.services):
        port = free_port()
        url = f"http://127.0.0.1:{port}/health"
        services[f"s{i:03d}"] = {
            "command": [sys.executable, str(CHILD), str(port), "0.5", args.http],
            "readiness": {"http": {"url": url}, "period": "1s"},
            "liveness": {"http": {"url": url}, "period": "1s"},
            "heartbeat": {"timeout": "5s", "hard_timeout": "20s"},
        }
    bench = Bench(services)
    try:
        bench.start()
        bench.wait_children(args.services, timeout=180)
        time.sleep(10.0)  # all 100 interpreters finish starting before the window
        pid = bench.proc.pid
        names = thread_names(pid) if args.threads else {}
        before = thread_ticks(pid)
        print(f"load average {os.getloadavg()[0]:.2f}, servers speak HTTP/{args.http}")
        cpu = cpu_over(pid, args.seconds)
        after = thread_ticks(pid)
        print(f"{args.services} services, 2 HTTP probes/s and 2 heartbeats/s each: supervisor CPU "
              f"{100 * cpu:.1f} % of one core, RSS {rss_bytes(pid) / 1e6:.0f} MB")
        if args.threads:
            used = {tid: after[tid] - before.get(tid, 0) for tid in after}
            for tid in sorted(used, key=lambda t: -used[t]):
                if used[tid]:
                    share = 100 * used[tid] / os.sysconf("SC_CLK_TCK") / args.seconds
                    print(f"  {share:5.2f} %  {names.get(tid, tid)}")
        bench.stop(timeout=120)
    finally:
        bench.close()


def thread_ticks(pid: int) -> dict[int, int]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            out[int(tid)] = int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return out


def thread_names(pid: int) -> dict[int, str]:
    """Python 3.11 leaves OS thread names alone; py-spy reads the Thread names."""
    if shutil.which("py-spy") is None:
        return {}
    dump = subprocess.run(["py-spy", "dump", "--pid", str(pid), "--nonblocking"],
                          capture_output=True, text=True).stdout
    return {int(m.group(1)): m.group(2) for m in re.finditer(r'Thread (\d+) \(\w+\): "([^"]+)"', dump)}


if __name__ == "__main__":
    main()
