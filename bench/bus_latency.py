"""Fills over the bus: the bot's publish to the backend's SQLite commit (issue 18).

Runs a real nats-server (services/nats/launch.py, JetStream, store on disk), the real backend
(``python -m backend`` with NATS_URL: its durable pull consumer commits each batch, then acks)
and a publisher that drives the bot's own BusDeliverer at a fixed rate
(bench/children/bus_publisher.py). Latency per fill = the ledger row's ``received_at`` (taken
just before its batch's transaction) minus the wall time the fill entered the bot's outbox.
CPU = each process's utime+stime over the run, as a share of one core.

    python bench/bus_latency.py                        # 1,000 fills/s for 30 s
    python bench/bus_latency.py --ramp 2000,4000,8000  # then: the largest sustained rate
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from _common import ROOT, cpu_seconds, free_port, pct

PY = sys.executable
SUSTAINED_P99 = 0.100   # seconds: a rate is "sustained" while p99 stays under this ...
SUSTAINED_SHARE = 0.95  # ... and the publisher made its fills on time (made/elapsed >= 95 %)


def wait(cond, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if value := cond():
                return value
        except (httpx.HTTPError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


class Pipeline:
    """nats-server and the backend, fresh, in a temporary directory."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.nats_port, self.monitor, self.http = free_port(), free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.nats_port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "LOG_LEVEL": "warning"}
        self.nats = subprocess.Popen(
            [PY, "launch.py", "-js", "-a", "127.0.0.1", "-p", str(self.nats_port), "-m", str(self.monitor)],
            cwd=ROOT / "services" / "nats", env={**env, "CHECKPOINT_DIR": str(tmp / "nats")},
            stdout=open(tmp / "nats.log", "wb"), stderr=subprocess.STDOUT)
        wait(lambda: httpx.get(f"http://127.0.0.1:{self.monitor}/healthz?js-enabled-only=true").status_code == 200,
             30, "nats")
        self.db = tmp / "backend" / "backend.sqlite3"
        self.backend = subprocess.Popen(
            [PY, "-m", "backend"], cwd=ROOT / "services" / "backend",
            env={**env, "CHECKPOINT_DIR": str(tmp / "backend"), "NATS_URL": self.url,
                 "PYTHON_PORT": str(self.http)},
            stdout=open(tmp / "backend.log", "wb"), stderr=subprocess.STDOUT)
        wait(lambda: httpx.get(f"http://127.0.0.1:{self.http}/health").status_code == 200, 60, "backend")

    def rows(self, tag: str) -> list[tuple[float, float]]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10) as db:
            return [(float(f), r) for f, r in db.execute(
                "SELECT filled_at, received_at FROM trades WHERE fill_id LIKE ?", (f"{tag}-%",))]

    def close(self) -> None:
        for proc in (self.backend, self.nats):
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run(pipe: Pipeline, rate: float, seconds: float) -> dict:
    tag = f"r{int(rate)}-{time.time_ns()}"
    before = {name: cpu_seconds(p.pid) for name, p in (("nats-server", pipe.nats), ("backend", pipe.backend))}
    started = time.monotonic()
    publisher = subprocess.Popen([PY, str(ROOT / "bench" / "children" / "bus_publisher.py"),
                                  pipe.url, str(rate), str(seconds), tag], stdout=subprocess.PIPE)
    cpu_pub = 0.0
    while publisher.poll() is None:   # the publisher's CPU, read while it lives
        try:
            cpu_pub = cpu_seconds(publisher.pid)
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.2)
    report = json.loads(publisher.stdout.read().decode().strip().splitlines()[-1])  # type: ignore[union-attr]
    wait(lambda: len(pipe.rows(tag)) >= report["made"], 120, "the backend to commit every fill")
    wall = time.monotonic() - started
    cpu = {name: cpu_seconds(p.pid) - before[name]
           for name, p in (("nats-server", pipe.nats), ("backend", pipe.backend))}
    cpu["publisher"] = cpu_pub
    latencies = sorted(r - f for f, r in pipe.rows(tag))
    return {"rate": rate, "seconds": seconds, "made": report["made"], "acked": report["acked"],
            "committed": len(latencies), "lost": report["made"] - len(latencies),
            "make_rate": report["made"] / report["make_seconds"],
            "p50_ms": pct(latencies, 50) * 1000, "p99_ms": pct(latencies, 99) * 1000,
            "max_ms": latencies[-1] * 1000,
            "cpu_pct": {k: round(100 * v / wall, 1) for k, v in cpu.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="fills per second (default 1000)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--ramp", default="", help="then these rates, comma-separated, 10 s each")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bus-bench-") as tmp:
        pipe = Pipeline(Path(tmp))
        try:
            results = [run(pipe, args.rate, args.seconds)]
            print(json.dumps(results[-1]), flush=True)
            for rate in [float(r) for r in args.ramp.split(",") if r]:
                results.append(run(pipe, rate, 10.0))
                print(json.dumps(results[-1]), flush=True)
        finally:
            pipe.close()
    sustained = [r["rate"] for r in results if r["lost"] == 0 and r["p99_ms"] <= SUSTAINED_P99 * 1000
                 and r["make_rate"] >= SUSTAINED_SHARE * r["rate"]]
    print(f"largest sustained rate (p99 <= {SUSTAINED_P99 * 1000:.0f} ms, no loss): "
          f"{max(sustained) if sustained else 'none'} fills/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
