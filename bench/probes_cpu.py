"""Supervisor CPU with 100 services, each with a 1 s readiness probe, a 1 s liveness probe
(HTTP) and a heartbeat every 0.5 s.

    python bench/probes_cpu.py [--services 100] [--seconds 30]
"""

import argparse
import sys
import time
from pathlib import Path

from _common import Bench, cpu_over, free_port, rss_bytes

CHILD = Path(__file__).resolve().parent / "children" / "hb_http.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    services = {}
    for i in range(args.services):
        port = free_port()
        url = f"http://127.0.0.1:{port}/health"
        services[f"s{i:03d}"] = {
            "command": [sys.executable, str(CHILD), str(port), "0.5"],
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
        cpu = cpu_over(pid, args.seconds)
        print(f"{args.services} services, 2 HTTP probes/s and 2 heartbeats/s each: supervisor CPU "
              f"{100 * cpu:.1f} % of one core, RSS {rss_bytes(pid) / 1e6:.0f} MB")
        bench.stop(timeout=120)
    finally:
        bench.close()


if __name__ == "__main__":
    main()
